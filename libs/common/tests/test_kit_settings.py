"""Settings come only from RECOVERY_* environment variables and work locally with none set."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from recovery.common.settings import DEV_ISSUER, Environment, Settings


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
