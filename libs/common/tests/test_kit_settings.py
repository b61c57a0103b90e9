"""Settings come only from RECOVERY_* environment variables and work locally with none set."""

import json
import os
from pathlib import Path

import pytest
from kit_toy import create_app, toy_settings
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from recovery.common.dev_issuer import DevIssuer
from recovery.common.observability import configure_logging
from recovery.common.settings import (
    DEV_ISSUER,
    Environment,
    Settings,
    report_unknown_variables,
    unknown_variables,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RECOVERY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_every_service_runs_locally_with_no_configuration(tmp_path: Path) -> None:
    settings = Settings(service="crisis-plans")
    assert settings.environment is Environment.development
    assert settings.port == 8002
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'crisis_plans.db'}"
    assert settings.jwt_issuer == DEV_ISSUER
    assert settings.jwks_file == str(tmp_path / "var" / "dev-issuer" / "jwks.json")
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.stream_name == "CRISIS_PLANS"
    assert settings.subject_prefix == "recovery.crisis-plans"


@pytest.mark.parametrize(("service", "port"), [("gateway", 8000), ("goals", 8001),
                                                ("risk", 8003), ("training", 8004),
                                                ("workforce", 8005)])
def test_each_service_has_its_contract_port(service: str, port: int) -> None:
    assert Settings(service=service).port == port


def test_the_environment_overrides_every_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SERVICE", "goals")
    monkeypatch.setenv("RECOVERY_PORT", "9100")
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql+asyncpg://u@db/goals")
    monkeypatch.setenv("RECOVERY_JWT_ALGORITHMS", '["ES256"]')
    monkeypatch.setenv("RECOVERY_EVENTS_ENABLED", "false")
    settings = Settings()
    assert (settings.service, settings.port) == ("goals", 9100)
    assert settings.database_url == "postgresql+asyncpg://u@db/goals"
    assert settings.jwt_algorithms == ["ES256"]
    assert settings.events_enabled is False


def test_the_database_password_comes_from_a_mounted_file_and_is_quoted_into_the_url(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    password = "p@ss:w/rd%?#"
    (tmp_path / "password").write_text(password + "\n")
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql+asyncpg://app@goals-db-rw:5432/app")
    monkeypatch.setenv("RECOVERY_DATABASE_PASSWORD_FILE", str(tmp_path / "password"))
    url = make_url(Settings(service="goals").database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app", password, "goals-db-rw", 5432, "app")
    assert password not in os.environ.get("RECOVERY_DATABASE_URL", "")


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_password_file_stops_the_service_with_a_clear_message(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "password").write_text(content)
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql+asyncpg://app@db/app")
    monkeypatch.setenv("RECOVERY_DATABASE_PASSWORD_FILE", str(tmp_path / "password"))
    with pytest.raises(ValidationError, match="database password file"):
        Settings(service="goals")


# --- production ---------------------------------------------------------------------------


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """A production environment as deploy/k8s gives it, the database URL aside."""
    monkeypatch.setenv("RECOVERY_ENVIRONMENT", "production")
    monkeypatch.setenv("RECOVERY_JWT_ISSUER", "https://idp.example")
    monkeypatch.setenv("RECOVERY_JWKS_URL", "https://idp.example/jwks")


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("database_url", [
    None, "", "sqlite+aiosqlite:///var/goals.db", "mysql+aiomysql://app:s3cret@db/app",
    "s3cret is no URL"])
def test_production_refuses_to_start_without_a_postgresql_url(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str | None) -> None:
    if database_url is not None:
        monkeypatch.setenv("RECOVERY_DATABASE_URL", database_url)
    with pytest.raises(ValidationError, match="RECOVERY_DATABASE_URL") as refused:
        Settings(service="goals")
    assert "PostgreSQL" in str(refused.value)
    assert "s3cret" not in str(refused.value)  # the URL may hold a password


@pytest.mark.usefixtures("production")
def test_production_runs_on_the_postgresql_url_it_is_given(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("secret")
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql+asyncpg://app@goals-db-rw/app")
    monkeypatch.setenv("RECOVERY_DATABASE_PASSWORD_FILE", str(tmp_path / "password"))
    url = make_url(Settings(service="goals").database_url)
    assert (url.drivername, url.password, url.host) == ("postgresql+asyncpg", "secret",
                                                         "goals-db-rw")


@pytest.mark.usefixtures("production")
def test_the_gateway_owns_no_database_and_needs_no_url_in_production() -> None:
    assert Settings(service="gateway").database_url == ""


# --- unknown variables ----------------------------------------------------------------------


def test_a_recovery_variable_no_part_reads_is_unknown() -> None:
    environ = {"RECOVERY_ENV": "production", "recovery_databse_url": "postgresql://u:p@db/x",
               "RECOVERY_PORT": "9100", "RECOVERY_LOG_LEVEL": "DEBUG", "PATH": "/usr/bin",
               "UVICORN_APP": "recovery.goals.main:create_app"}
    assert unknown_variables(environ) == ["RECOVERY_ENV", "recovery_databse_url"]


def test_every_variable_of_the_settings_and_of_the_other_parts_is_known() -> None:
    names = [f"RECOVERY_{name.upper()}" for name in Settings.model_fields]
    names += ["RECOVERY_GOALS_URL", "RECOVERY_MAX_DEPTH", "RECOVERY_WORKFORCE_BILLING_HCPCS",
              "RECOVERY_CRISIS_TEAMS"]
    assert unknown_variables(dict.fromkeys(names, "")) == []


def logged(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_unknown_variables_are_named_in_a_warning_without_their_values(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("goals")
    report_unknown_variables({"RECOVERY_ENV": "production", "RECOVERY_JWT_SECRET": "s3cret",
                              "RECOVERY_SERVICE": "goals"})
    output = capsys.readouterr().out
    (line,) = logged(output)
    assert (line["level"], line["event"]) == ("warning", "unknown_settings_ignored")
    assert line["variables"] == ["RECOVERY_ENV", "RECOVERY_JWT_SECRET"]
    assert "s3cret" not in output and "production" not in output


def test_known_variables_alone_are_not_reported(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("goals")
    report_unknown_variables({"RECOVERY_SERVICE": "goals", "LANG": "C.UTF-8"})
    assert logged(capsys.readouterr().out) == []


def test_a_service_reports_unknown_variables_when_its_app_is_built(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, dev_issuer: DevIssuer) -> None:
    monkeypatch.setenv("RECOVERY_ENV", "production")
    create_app(toy_settings(f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}", dev_issuer))
    warnings = [line for line in logged(capsys.readouterr().out)
                if line["event"] == "unknown_settings_ignored"]
    assert [line["variables"] for line in warnings] == [["RECOVERY_ENV"]]
