"""Every endpoint of the workforce service refuses a missing or bad bearer token with a 401
problem and changes nothing. The endpoints are read from the service's own OpenAPI document,
so a new one is covered the day it is added."""

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
from workforce_operations import (
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
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**overrides: Any) -> dict[str, Any]:
    """Claims of an admin of team-a who could otherwise do everything; None drops one."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "aud": "recovery-platform", "sub": "staff-1",
                              "iat": now, "exp": now + 600, "roles": ["admin"],
                              "teams": ["team-a", "team-b"], "scope": "user/*.cruds"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _signed(issuer: DevIssuer, claims: dict[str, Any], kid: str = KID) -> str:
    issuer.ensure_keys()
    return jwt.encode(claims, issuer._private_key, algorithm="RS256", headers={"kid": kid})


def _alg_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered(issuer: DevIssuer) -> str:
    header, _, signature = _signed(issuer, _claims()).split(".")
    payload = _b64(json.dumps(_claims(teams=["team-a", "team-b", "team-c"])).encode())
    return f"{header}.{payload}.{signature}"


BAD_CREDENTIALS: dict[str, Callable[[DevIssuer], str | None]] = {
    "no token": lambda issuer: None,
    "expired": lambda issuer: "Bearer " + _signed(issuer, _claims(exp=int(time.time()) - 3600,
                                                                  iat=int(time.time()) - 7200)),
    "wrong audience": lambda issuer: "Bearer " + _signed(issuer, _claims(aud="another-api")),
    "wrong issuer": lambda issuer: "Bearer " + _signed(issuer,
                                                       _claims(iss="https://idp.example")),
    "alg none": lambda issuer: "Bearer " + _alg_none(_claims()),
    "signed by another key": lambda issuer: "Bearer " + jwt.encode(
        _claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256", headers={"kid": KID}),
    "missing exp": lambda issuer: "Bearer " + _signed(issuer, _claims(exp=None)),
    "missing sub": lambda issuer: "Bearer " + _signed(issuer, _claims(sub=None)),
    "unknown key id": lambda issuer: "Bearer " + _signed(issuer, _claims(), kid="stranger"),
    "payload tampered after signing": lambda issuer: "Bearer " + _tampered(issuer),
    "not a JWT": lambda issuer: "Bearer not-a.jwt",
    "basic credentials": lambda issuer: "Basic " + _b64(b"staff-1:secret"),
}


@dataclass
class World:
    """A running workforce service with a team and a member of staff a valid token reaches."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    staff_id: str
    supervisor_id: str
    operations: list[Operation]

    def path(self, operation: Operation) -> str:
        return fill_path(operation.template, team_id="team-a", staff_id=self.staff_id)

    def body(self, operation: Operation) -> Any:
        return valid_body(operation, team_id="team-a", staff_id=self.staff_id,
                          other_team="team-b", supervisor_id=self.supervisor_id,
                          new_team="team-c")

    async def snapshot(self) -> tuple[str, ...]:
        headers = TokenFactory.header(self.tokens("admin", "admin-1", teams=["team-a"]))
        texts = []
        for path in ("/v1/teams/team-a", f"/v1/staff/{self.staff_id}",
                     "/v1/teams/team-a/staff?include_left=true",
                     "/v1/teams/team-a/peer-share", "/v1/teams/team-a/readiness",
                     "/v1/teams/team-a/recruitment-panels",
                     f"/v1/staff/{self.staff_id}/supervision-sessions",
                     f"/v1/staff/{self.staff_id}/appraisals",
                     f"/v1/staff/{self.staff_id}/lived-experience"):
            response = await self.client.get(path, headers=headers)
            assert response.status_code == 200, f"{path}: {response.text}"
            texts.append(response.text)
        return tuple(texts)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer,
                tokens: TokenFactory) -> AsyncIterator[World]:
    # Tokens are refused before the database is touched, so one backend is enough here.
    database = Path(tmp_path_factory.mktemp("token-matrix")) / "workforce.db"
    settings = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{database}",
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        manager = TokenFactory.header(tokens("manager", "m-1", teams=["team-a", "team-b"],
                                             scope="user/*.cruds"))
        ids = []
        for team in ("team-a", "team-b"):
            assert (await client.post("/v1/teams", headers=manager,
                                      json={"id": team, "name": team})).status_code == 201
        for _ in range(2):
            created = await client.post("/v1/staff", headers=manager, json={
                "team_id": "team-a", "display_name": "Jo", "profession": "nursing",
                "grade": "band-5", "role_type": "professional", "fte": 1,
                "start_date": "2024-01-01"})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        openapi = (await client.get("/openapi.json")).json()
        yield World(client, tokens, ids[0], ids[1], protected_operations(openapi))


def test_the_matrix_covers_every_workforce_operation_the_service_documents(
        world: World) -> None:
    found = {str(operation) for operation in world.operations}
    assert found >= {
        "POST /v1/teams", "GET /v1/teams/{team_id}", "PUT /v1/teams/{team_id}/recovery-lead",
        "GET /v1/teams/{team_id}/staff", "POST /v1/staff", "GET /v1/staff/{staff_id}",
        "PATCH /v1/staff/{staff_id}",
        "POST /v1/staff/{staff_id}/move", "POST /v1/staff/{staff_id}/leave",
        "PUT /v1/staff/{staff_id}/lived-experience",
        "GET /v1/staff/{staff_id}/lived-experience", "POST /v1/care-contacts",
        "GET /v1/teams/{team_id}/peer-share", "GET /v1/peer-share",
        "GET /v1/teams/{team_id}/peer-support-billing", "GET /v1/teams/{team_id}/skill-mix",
        "GET /v1/teams/{team_id}/readiness", "POST /v1/supervision-sessions",
        "GET /v1/staff/{staff_id}/supervision-sessions", "POST /v1/appraisals",
        "GET /v1/staff/{staff_id}/appraisals", "POST /v1/recruitment-panels",
        "GET /v1/teams/{team_id}/recruitment-panels", "GET /v1/climate-survey",
        "POST /v1/teams/{team_id}/climate-survey-responses",
        "GET /fhir/Practitioner/{staff_id}", "GET /fhir/PractitionerRole/{staff_id}",
        "GET /fhir/CareTeam/{team_id}", "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    unfilled = [str(op) for op in world.operations if "{" in world.path(op)]
    assert unfilled == [], "add a value for these path parameters to World.path"


async def test_every_protected_operation_declares_bearer_security(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    undeclared = [str(op) for op in world.operations
                  if not openapi["paths"][op.template][op.method].get("security")]
    assert undeclared == []


async def test_a_valid_token_gets_past_authentication_on_every_read(world: World) -> None:
    """The control: the same requests with a good token are not refused as unauthenticated."""
    token = world.tokens("admin", "admin-1", teams=["team-a"])
    for operation in world.operations:
        if operation.method == "get":
            response = await world.client.get(world.path(operation), params=query_for(operation),
                                              headers=TokenFactory.header(token))
            assert response.status_code != 401, f"{operation}: {response.text}"


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
async def test_a_bad_or_missing_token_is_401_on_every_endpoint_and_changes_nothing(
        world: World, dev_issuer: DevIssuer, credential: str) -> None:
    authorization = BAD_CREDENTIALS[credential](dev_issuer)
    before = await world.snapshot()
    wrong: list[str] = []
    for operation in world.operations:
        headers = {"If-Match": "*"}
        if authorization is not None:
            headers["Authorization"] = authorization
        response = await world.client.request(operation.method, world.path(operation),
                                              headers=headers, json=world.body(operation),
                                              params=query_for(operation))
        problem = (response.json() if response.headers.get("content-type") == PROBLEM
                   else None)
        if (response.status_code != 401 or problem is None or problem.get("status") != 401
                or not str(problem.get("type", "")).endswith("/unauthorized")
                or not response.headers.get("www-authenticate", "").startswith("Bearer ")):
            wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
        if authorization is not None:
            assert authorization.split(" ", 1)[1] not in response.text
    assert wrong == [], "\n".join(wrong)
    assert await world.snapshot() == before


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    documented_public = {path for path, item in openapi["paths"].items()
                         for method, operation in item.items()
                         if method in HTTP_METHODS and not operation.get("security")}
    assert documented_public <= set(PUBLIC), "a route without bearer security was added"
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    assert world.staff_id not in metadata.text
