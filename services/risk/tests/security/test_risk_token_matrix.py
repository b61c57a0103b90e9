"""Every endpoint of the risk service refuses a missing or bad bearer token with a 401 problem
and changes nothing. The endpoints are read from the service's own OpenAPI document, so a new
one is covered the day it is added."""

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from risk_operations import (
    HTTP_METHODS,
    PROBLEM,
    PUBLIC,
    Operation,
    fill_path,
    protected_operations,
    query_for,
    valid_body,
)

from recovery.common.dev_issuer import KID, DevIssuer
from recovery.common.settings import DEV_ISSUER
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**overrides: Any) -> dict[str, Any]:
    """Claims of an admin of team-a who could otherwise do everything; None drops one."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "aud": "recovery-platform", "sub": "staff-1",
                              "iat": now, "exp": now + 600, "roles": ["admin", "clinician"],
                              "teams": ["team-a"], "scope": "user/*.cruds"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _signed(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    issuer.ensure_keys()
    return jwt.encode(claims, issuer._private_key, algorithm="RS256", headers={"kid": KID})


def _alg_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered(issuer: DevIssuer) -> str:
    header, _, signature = _signed(issuer, _claims()).split(".")
    payload = _b64(json.dumps(_claims(teams=["team-a", "team-b"])).encode())
    return f"{header}.{payload}.{signature}"


BAD_CREDENTIALS: dict[str, Callable[[DevIssuer], str | None]] = {
    "no token": lambda issuer: None,
    "expired": lambda issuer: "Bearer " + _signed(issuer, _claims(exp=int(time.time()) - 3600,
                                                                  iat=int(time.time()) - 7200)),
    "wrong audience": lambda issuer: "Bearer " + _signed(issuer, _claims(aud="another-api")),
    "wrong issuer": lambda issuer: "Bearer " + _signed(issuer, _claims(iss="https://idp.x")),
    "alg none": lambda issuer: "Bearer " + _alg_none(_claims()),
    "signed by another key": lambda issuer: "Bearer " + jwt.encode(
        _claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256", headers={"kid": KID}),
    "missing sub": lambda issuer: "Bearer " + _signed(issuer, _claims(sub=None)),
    "payload tampered after signing": lambda issuer: "Bearer " + _tampered(issuer),
    "not a JWT": lambda issuer: "Bearer not-a.jwt",
    "basic credentials": lambda issuer: "Basic " + _b64(b"staff-1:secret"),
}


@dataclass
class World:
    """A running risk service with one co-assessment a valid token may reach."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    assessment_id: str
    operations: list[Operation]

    def path(self, operation: Operation) -> str:
        return fill_path(operation.template, assessment_id=self.assessment_id, team_id="team-a")

    async def snapshot(self) -> tuple[str, str, int]:
        token = TokenFactory.header(self.tokens.clinician("staff-1", ["team-a"]))
        one = await self.client.get(f"/v1/risk-assessments/{self.assessment_id}",
                                    headers=token)
        listed = await self.client.get("/v1/risk-assessments",
                                       params={"limit": 200, "team_id": "team-a"}, headers=token)
        assert one.status_code == 200 and listed.status_code == 200
        return one.text, one.headers["etag"], len(listed.json()["items"])


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer,
                tokens: TokenFactory) -> AsyncIterator[World]:
    # Tokens are refused before the database is touched, so one backend is enough here.
    database = Path(tmp_path_factory.mktemp("risk-token-matrix")) / "risk.db"
    settings = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{database}",
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        staff = TokenFactory.header(tokens.clinician("staff-1", ["team-a"]))
        created = await client.post("/v1/risk-assessments", headers=staff, json={
            "service_user_id": "su-1", "team_id": "team-a",
            "areas": [{"area": "substances", "service_user_view": "Cutting down"}]})
        assert created.status_code == 201, created.text
        openapi = (await client.get("/openapi.json")).json()
        yield World(client, tokens, created.json()["id"], protected_operations(openapi))


def test_the_matrix_covers_every_risk_operation_the_service_documents(world: World) -> None:
    found = {str(operation) for operation in world.operations}
    assert found >= {
        "POST /v1/risk-assessments", "GET /v1/risk-assessments",
        "POST /v1/risk-assessments:batch-read", "GET /v1/risk-assessments/{assessment_id}",
        "PATCH /v1/risk-assessments/{assessment_id}",
        "POST /v1/risk-assessments/{assessment_id}/signatures",
        "POST /v1/risk-assessments/{assessment_id}/withdraw-agreement",
        "POST /v1/risk-assessments/{assessment_id}/entered-in-error",
        "POST /v1/risk-assessments/{assessment_id}/positive-risk-decisions",
        "GET /v1/risk-assessments/{assessment_id}/active",
        "GET /v1/risk-assessments/{assessment_id}/versions",
        "GET /v1/risk-assessments/{assessment_id}/versions/{version}",
        "GET /v1/teams/{team_id}/risk-reviews-due",
        "GET /fhir/RiskAssessment/{assessment_id}", "GET /fhir/Provenance",
        "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    unfilled = [str(op) for op in world.operations if "{" in world.path(op)]
    assert unfilled == [], "add a value for these path parameters to fill_path"


async def test_every_protected_operation_declares_bearer_security(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    undeclared = [str(op) for op in world.operations
                  if not openapi["paths"][op.template][op.method].get("security")]
    assert undeclared == []


async def test_a_valid_token_gets_past_authentication_on_every_read(world: World) -> None:
    token = TokenFactory.header(world.tokens.admin("admin-1", ["team-a"]))
    for operation in world.operations:
        if operation.method == "get":
            response = await world.client.get(
                world.path(operation), headers=token,
                params=query_for(operation, assessment_id=world.assessment_id))
            assert response.status_code != 401, f"{operation}: {response.text}"


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
async def test_a_bad_or_missing_token_is_401_on_every_endpoint_and_changes_nothing(
        world: World, dev_issuer: DevIssuer, credential: str) -> None:
    authorization = BAD_CREDENTIALS[credential](dev_issuer)
    before = await world.snapshot()
    wrong: list[str] = []
    for operation in world.operations:
        headers = {"If-Match": '"1"'}
        if authorization is not None:
            headers["Authorization"] = authorization
        response = await world.client.request(
            operation.method, world.path(operation), headers=headers,
            params=query_for(operation, assessment_id=world.assessment_id),
            json=valid_body(operation, service_user_id="su-1", team_id="team-a"))
        is_problem = response.headers.get("content-type") == PROBLEM
        if (response.status_code != 401 or not is_problem
                or not response.json()["type"].endswith("/unauthorized")
                or not response.headers.get("www-authenticate", "").startswith("Bearer ")):
            wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
    assert await world.snapshot() == before


async def test_a_score_without_a_token_is_401_not_a_hint_about_the_api(world: World) -> None:
    response = await world.client.post("/v1/risk-assessments", json={"risk_score": 9})
    assert response.status_code == 401


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    documented_public = {path for path, item in openapi["paths"].items()
                         for method, operation in item.items()
                         if method in HTTP_METHODS and not operation.get("security")}
    assert documented_public <= set(PUBLIC), "a route without bearer security was added"
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    assert world.assessment_id not in metadata.text and "su-1" not in metadata.text
