"""Identity: every bad token is refused with 401 and a problem document; scopes, object-level
rules and the configuration that production refuses."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from recovery.common.auth import (
    Principal,
    Scope,
    TokenVerifier,
    Verb,
    can_reach_record,
    can_read_aggregates,
    can_read_audit_trail,
)
from recovery.common.dev_issuer import DevIssuer
from recovery.common.problems import Problem
from recovery.common.settings import Settings
from recovery.common.testing.forged_tokens import (
    alg_none,
    claims_of,
    forged_tokens,
    signed,
    signed_by_another_key,
)
from recovery.common.testing.plugin import TokenFactory

#: Every forged or broken token, in the claims of a clinician of team-a.
BAD_TOKENS = forged_tokens(roles=["clinician"], teams=["team-a"])


def _claims(**overrides: Any) -> dict[str, Any]:
    return claims_of(roles=["clinician"], teams=["team-a"], **overrides)


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer ")
    body = response.json()
    assert body["status"] == 401
    assert body["type"].endswith("/unauthorized")


async def test_a_request_without_a_token_is_refused_with_401(
        toy_sqlite: httpx.AsyncClient) -> None:
    response = await toy_sqlite.get("/v1/whoami")
    _assert_401(response)
    assert "error=" not in response.headers["www-authenticate"]  # RFC 6750: none was sent


async def test_a_basic_auth_header_is_not_a_bearer_token(toy_sqlite: httpx.AsyncClient) -> None:
    _assert_401(await toy_sqlite.get("/v1/whoami", headers={"Authorization": "Basic YTpi"}))


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_every_bad_token_is_refused_with_401(toy_sqlite: httpx.AsyncClient,
                                                   dev_issuer: DevIssuer, kind: str) -> None:
    token = BAD_TOKENS[kind](dev_issuer)
    response = await toy_sqlite.get("/v1/whoami", headers=TokenFactory.header(token))
    _assert_401(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token not in response.text


async def test_a_valid_token_is_accepted_and_its_claims_become_the_principal(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    token = tokens.clinician("staff-7", teams=["team-a", "team-b"])
    response = await toy_sqlite.get("/v1/whoami", headers=tokens.header(token))
    assert response.status_code == 200
    assert response.json() == {"sub": "staff-7", "roles": ["clinician"],
                               "teams": ["team-a", "team-b"], "patient": None}
    again = await toy_sqlite.get("/v1/whoami", headers=tokens.header(token))
    assert again.json()["sub"] == "staff-7"  # second time from the verifier's cache


def test_a_cached_token_is_forgotten_once_it_expires(dev_issuer: DevIssuer) -> None:
    verifier = TokenVerifier(Settings(environment="test", jwks_file=str(dev_issuer.jwks_path),
                                      jwt_leeway_seconds=0))
    # Whole seconds, as JWT times are: at least a second ahead, whatever the fraction now.
    expires = int(time.time()) + 2
    token = signed(dev_issuer, _claims(exp=expires))
    assert verifier.verify(token).sub == "staff-1"
    time.sleep(expires - time.time() + 0.1)
    assert verifier.cached(token) is None
    with pytest.raises(Problem) as refused:
        verifier.verify(token)
    assert refused.value.status == 401


def test_only_allowed_algorithms_are_accepted_even_when_none_is_configured(
        dev_issuer: DevIssuer) -> None:
    verifier = TokenVerifier(Settings(environment="test", jwks_file=str(dev_issuer.jwks_path),
                                      jwt_algorithms=["RS256", "none"]))
    with pytest.raises(Problem) as refused:
        verifier.verify(alg_none(_claims()))
    assert refused.value.status == 401


# --- JWKS from a URL -------------------------------------------------------------------------


@pytest.fixture
def jwks_url(dev_issuer: DevIssuer) -> Iterator[str]:
    """The issuer's JWKS served over HTTP on loopback, as an identity provider would."""
    body = dev_issuer.jwks_path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


def test_tokens_are_verified_against_a_jwks_fetched_from_a_url(
        jwks_url: str, tokens: TokenFactory) -> None:
    verifier = TokenVerifier(Settings(environment="test", jwks_url=jwks_url))
    assert verifier.fetches_keys
    assert verifier.verify(tokens.clinician("staff-9")).sub == "staff-9"
    with pytest.raises(Problem):
        verifier.verify(signed_by_another_key(_claims()))


async def test_the_app_verifies_tokens_with_a_jwks_url(
        jwks_url: str, tmp_path: Path, tokens: TokenFactory) -> None:
    from kit_toy import MIGRATIONS_DIR, create_app

    from recovery.common.testing.plugin import running_service

    settings = Settings(service="toy", environment="test", events_enabled=False,
                        jwks_url=jwks_url,
                        database_url=f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}")
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        ok = await client.get("/v1/whoami", headers=tokens.header(tokens.clinician("s-3")))
        assert ok.status_code == 200
        _assert_401(await client.get("/v1/whoami",
                                     headers=tokens.header(signed_by_another_key(_claims()))))


# --- scopes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "context", "resource", "verbs"), [
    ("patient/Goal.rs", "patient", "Goal", "rs"),
    ("user/*.cruds", "user", "*", "cruds"),
    ("system/CarePlan.r", "system", "CarePlan", "r"),
    ("patient/Goal.read", "patient", "Goal", "rs"),
    ("user/Goal.write", "user", "Goal", "cud"),
    ("user/Goal.*", "user", "Goal", "cruds"),
    ("patient/Observation.rs?category=vital-signs", "patient", "Observation", "rs"),
])
def test_smart_scopes_parse_to_context_resource_and_verbs(
        text: str, context: str, resource: str, verbs: str) -> None:
    assert Scope.parse(text) == Scope(context, resource, frozenset(verbs))


@pytest.mark.parametrize("text", ["openid", "fhirUser", "launch/patient", "admin/Goal.rs",
                                  "user/Goal", "user/.rs", "user/Goal.xyz", "offline_access"])
def test_anything_else_is_not_a_resource_scope(text: str) -> None:
    assert Scope.parse(text) is None


def _principal(*roles: str, sub: str = "x", patient: str | None = None,
               teams: tuple[str, ...] = (), scope: str = "") -> Principal:
    return Principal.from_claims({"sub": sub, "roles": list(roles), "patient": patient,
                                  "teams": list(teams), "scope": scope})


def test_scopes_gate_each_verb_and_type() -> None:
    reader = _principal("clinician", scope="user/Goal.rs openid")
    assert reader.may("Goal", Verb.read) and reader.may("Goal", Verb.search)
    assert not reader.may("Goal", Verb.update)
    assert not reader.may("CarePlan", Verb.read)


def test_a_managers_development_token_changes_the_workforce_and_only_reads_care_records(
        dev_issuer: DevIssuer) -> None:
    token = dev_issuer.mint(role="manager", sub="manager-1", teams=["team-a"])
    verifier = TokenVerifier(Settings(environment="test", jwks_file=str(dev_issuer.jwks_path)))
    manager = verifier.verify(token)
    for workforce_type in ("CareTeam", "Practitioner", "Encounter"):
        assert manager.may(workforce_type, Verb.create) and manager.may(workforce_type, Verb.update)
    for care_record in ("Goal", "CarePlan", "RiskAssessment"):
        assert manager.may(care_record, Verb.read)
        assert not manager.may(care_record, Verb.create)
        assert not manager.may(care_record, Verb.update)


def _reach(principal: Principal, service_user: str, team: str | None,
           verb: Verb = Verb.read) -> bool:
    return can_reach_record(principal, "Goal", verb, service_user_id=service_user, team_id=team)


def test_a_service_user_reaches_only_their_own_records() -> None:
    person = _principal("service_user", sub="su-1", patient="su-1", scope="patient/*.cruds")
    assert _reach(person, "su-1", "team-a")
    assert not _reach(person, "su-2", "team-a")


def test_a_service_user_token_with_user_scopes_still_reaches_only_their_own() -> None:
    person = _principal("service_user", sub="su-1", scope="user/*.cruds")
    assert _reach(person, "su-1", None)
    assert not _reach(person, "su-2", None)


def test_staff_reach_records_of_their_teams_only() -> None:
    staff = _principal("clinician", teams=("team-a",), scope="user/*.cruds")
    assert _reach(staff, "su-1", "team-a")
    assert not _reach(staff, "su-1", "team-b")
    assert not _reach(staff, "su-1", None)


def test_a_patient_scope_is_bound_to_the_patient_claim() -> None:
    app_for_su1 = _principal("clinician", patient="su-1", teams=(), scope="patient/Goal.rs")
    assert _reach(app_for_su1, "su-1", "team-z")
    assert not _reach(app_for_su1, "su-2", "team-z")
    no_patient = _principal("clinician", teams=(), scope="patient/Goal.rs")
    assert not _reach(no_patient, "su-1", "team-z")


def test_system_callers_reach_what_their_system_scopes_allow() -> None:
    partner = _principal("system", scope="system/Goal.rs")
    assert _reach(partner, "su-1", "team-a")
    assert not _reach(partner, "su-1", "team-a", Verb.update)
    not_a_system = _principal("clinician", scope="system/Goal.rs")
    assert not _reach(not_a_system, "su-1", "team-a")


def test_without_a_scope_for_the_verb_nobody_reaches_a_record() -> None:
    staff = _principal("clinician", teams=("team-a",), scope="user/Goal.rs")
    assert not _reach(staff, "su-1", "team-a", Verb.update)


def test_team_figures_are_for_managers_and_admins_of_that_team() -> None:
    assert can_read_aggregates(_principal("manager", teams=("team-a",)), "team-a")
    assert can_read_aggregates(_principal("admin", teams=("team-a",)), "team-a")
    assert not can_read_aggregates(_principal("manager", teams=("team-a",)), "team-b")
    assert not can_read_aggregates(_principal("clinician", teams=("team-a",)), "team-a")
    assert not can_read_aggregates(_principal("service_user", sub="su-1"), "team-a")


def test_the_audit_trail_is_for_admins_and_systems_with_an_audit_scope() -> None:
    assert can_read_audit_trail(_principal("admin", scope="user/*.cruds"), Verb.search)
    assert not can_read_audit_trail(_principal("manager", scope="user/*.cruds"), Verb.search)
    assert can_read_audit_trail(_principal("system", scope="system/AuditEvent.rs"), Verb.search)
    assert not can_read_audit_trail(_principal("system", scope="system/*.rs"), Verb.search)


# --- configuration ------------------------------------------------------------------------------


def test_production_refuses_the_development_issuer() -> None:
    with pytest.raises(ValidationError, match="development token issuer"):
        Settings(environment="production", jwks_url="https://idp.example/jwks")


@pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "none"], ["RS256", "HS512"]])
def test_production_refuses_symmetric_and_none_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError, match="asymmetric"):
        Settings(environment="production", jwt_issuer="https://idp.example",
                 jwks_url="https://idp.example/jwks", jwt_algorithms=algorithms)


def test_production_needs_a_jwks_to_verify_against() -> None:
    with pytest.raises(ValidationError, match="JWKS"):
        Settings(environment="production", jwt_issuer="https://idp.example")


def test_production_accepts_a_real_issuer_with_asymmetric_algorithms() -> None:
    settings = Settings(environment="production", jwt_issuer="https://idp.example",
                        jwks_url="https://idp.example/jwks",
                        database_url="postgresql+asyncpg://app@db/app")
    assert settings.jwt_algorithms == ["RS256", "ES256"]


def test_the_development_issuer_refuses_to_run_in_production(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from recovery.common import dev_issuer

    monkeypatch.setenv("RECOVERY_ENVIRONMENT", "production")
    monkeypatch.setattr("sys.argv", ["dev_issuer", "--role", "clinician"])
    with pytest.raises(SystemExit, match="not available in production"):
        dev_issuer.main()


# --- the development issuer's command line -------------------------------------------------------


def _issue(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
    result = subprocess.run([sys.executable, "-m", "recovery.common.dev_issuer", *args],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                            check=True)
    return result.stdout


def test_the_token_command_prints_one_verifiable_token_and_nothing_else(tmp_path: Path) -> None:
    out = _issue(tmp_path, "--role", "clinician", "--sub", "staff-1", "--teams", "team-a,team-b")
    assert out.count("\n") == 1 and out.count(".") == 2
    jwks = tmp_path / "var" / "dev-issuer" / "jwks.json"
    verifier = TokenVerifier(Settings(environment="development", jwks_file=str(jwks)))
    principal = verifier.verify(out.strip())
    assert principal.sub == "staff-1" and principal.roles == {"clinician"}
    assert principal.teams == {"team-a", "team-b"}
    assert principal.may("Goal", Verb.update)  # a clinician's default scopes

    person = verifier.verify(_issue(tmp_path, "--role", "service_user", "--sub", "su-1").strip())
    assert person.patient == "su-1" and person.own_person() == "su-1"
    assert {s.context for s in person.scopes} == {"patient"}
