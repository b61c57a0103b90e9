"""Every endpoint of the crisis-plans service refuses a missing or bad bearer token with a 401
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
from plan_operations import (
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
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a crisis-team clinician and admin of team-a who could otherwise do
    everything; None drops one."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "aud": "recovery-platform", "sub": "staff-1",
                              "iat": now, "exp": now + 600, "roles": ["admin", "clinician"],
                              "teams": ["team-a", "crisis-team"], "scope": "user/*.cruds"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _signed(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    issuer.ensure_keys()
    return jwt.encode(claims, issuer._private_key, algorithm="RS256", headers={"kid": KID})


def _alg_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered(issuer: DevIssuer) -> str:
    """A genuine token whose payload was swapped for one naming more teams."""
    header, _, signature = _signed(issuer, _claims(teams=["team-b"])).split(".")
    return f"{header}.{_b64(json.dumps(_claims()).encode())}.{signature}"


BAD_CREDENTIALS: dict[str, Callable[[DevIssuer], str | None]] = {
    "no token": lambda issuer: None,
    "expired": lambda issuer: "Bearer " + _signed(issuer, _claims(
        exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
    "wrong audience": lambda issuer: "Bearer " + _signed(issuer, _claims(aud="another-api")),
    "wrong issuer": lambda issuer: "Bearer " + _signed(issuer,
                                                       _claims(iss="https://idp.example")),
    "alg none": lambda issuer: "Bearer " + _alg_none(_claims()),
    "signed by another key": lambda issuer: "Bearer " + jwt.encode(
        _claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256", headers={"kid": KID}),
    "missing exp": lambda issuer: "Bearer " + _signed(issuer, _claims(exp=None)),
    "missing sub": lambda issuer: "Bearer " + _signed(issuer, _claims(sub=None)),
    "payload tampered after signing": lambda issuer: "Bearer " + _tampered(issuer),
    "not a JWT": lambda issuer: "Bearer not-a.jwt",
    "basic credentials": lambda issuer: "Basic " + _b64(b"staff-1:secret"),
}


@dataclass
class World:
    """A running service with one agreed plan that a valid token may reach."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    plan: dict[str, Any]
    operations: list[Operation]

    def path(self, operation: Operation) -> str:
        return fill_path(operation.template, plan_id=self.plan["id"], service_user_id="su-1",
                         team_id="team-a")

    async def snapshot(self) -> tuple[str, str, int, int]:
        """The plan and its ETag, how many versions and decisions it has."""
        headers = TokenFactory.header(self.tokens.clinician("staff-1", ["team-a"]))
        base = f"/v1/crisis-plans/{self.plan['id']}"
        plan = await self.client.get(base, headers=headers)
        versions = await self.client.get(f"{base}/versions", headers=headers)
        decisions = await self.client.get(f"{base}/medication-decisions", headers=headers)
        return plan.text, plan.headers["etag"], len(versions.json()), len(decisions.json())


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer,
                tokens: TokenFactory) -> AsyncIterator[World]:
    # Tokens are refused before the database is touched, so one backend is enough here.
    database = Path(tmp_path_factory.mktemp("token-matrix")) / "crisis_plans.db"
    settings = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{database}",
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        staff = tokens.clinician("staff-1", ["team-a"])
        created = await client.post("/v1/crisis-plans", headers=TokenFactory.header(staff),
                                    json={"service_user_id": "su-1", "team_id": "team-a",
                                          "triggers": ["Crowded trains"]})
        assert created.status_code == 201, created.text
        plan = created.json()
        for token in (tokens.service_user("su-1"), staff):
            signed = await client.post(
                f"/v1/crisis-plans/{plan['id']}/signatures",
                json={"content_hash": plan["content_hash"]},
                headers={**TokenFactory.header(token), "If-Match": '"1"'})
            assert signed.status_code == 201, signed.text
        openapi = (await client.get("/openapi.json")).json()
        yield World(client, tokens, signed.json(), protected_operations(openapi))


def test_the_matrix_covers_every_operation_the_service_documents(world: World) -> None:
    """Guards against a matrix that passes because it found nothing to test."""
    assert {str(op) for op in world.operations} >= {
        "POST /v1/crisis-plans", "POST /v1/crisis-plans:batch-read",
        "GET /v1/crisis-plans/{plan_id}", "PUT /v1/crisis-plans/{plan_id}",
        "POST /v1/crisis-plans/{plan_id}/signatures",
        "POST /v1/crisis-plans/{plan_id}/withdraw-agreement",
        "GET /v1/crisis-plans/{plan_id}/versions",
        "POST /v1/crisis-plans/{plan_id}/medication-decisions",
        "GET /v1/crisis-plans/{plan_id}/medication-decisions",
        "GET /v1/people/{service_user_id}/crisis-plan",
        "POST /v1/people/{service_user_id}/crisis-plan:break-glass",
        "GET /v1/teams/{team_id}/crisis-plans",
        "GET /v1/teams/{team_id}/crisis-plans:overdue-review",
        "GET /fhir/CarePlan/{plan_id}", "GET /fhir/Provenance",
        "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    assert [str(op) for op in world.operations if "{" in world.path(op)] == []


async def test_every_protected_operation_declares_bearer_security(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert [str(op) for op in world.operations
            if not openapi["paths"][op.template][op.method].get("security")] == []


async def test_a_valid_token_gets_past_authentication_on_every_read(
        world: World, tokens: TokenFactory) -> None:
    """The control: the same reads with a good token are not refused as unauthenticated."""
    token = tokens.admin("admin-1", ["team-a"])
    for operation in world.operations:
        if operation.method == "get":
            response = await world.client.get(
                world.path(operation), headers=TokenFactory.header(token),
                params=query_for(operation, plan_id=world.plan["id"]))
            assert response.status_code != 401, f"{operation}: {response.text}"


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
async def test_a_bad_or_missing_token_is_401_on_every_endpoint_and_changes_nothing(
        world: World, dev_issuer: DevIssuer, credential: str) -> None:
    authorization = BAD_CREDENTIALS[credential](dev_issuer)
    before = await world.snapshot()
    wrong: list[str] = []
    for operation in world.operations:
        headers = {"If-Match": f'"{world.plan["version"]}"'}
        if authorization is not None:
            headers["Authorization"] = authorization
        body = valid_body(operation, service_user_id="su-1", team_id="team-a",
                          content_hash=world.plan["content_hash"])
        response = await world.client.request(
            operation.method, world.path(operation), headers=headers, json=body,
            params=query_for(operation, plan_id=world.plan["id"]))
        problem = response.json() if response.headers.get("content-type") == PROBLEM else {}
        if (response.status_code != 401 or problem.get("status") != 401
                or not str(problem.get("type", "")).endswith("/unauthorized")
                or not response.headers.get("www-authenticate", "").startswith("Bearer ")):
            wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
        if authorization is not None:
            assert authorization.split(" ", 1)[1] not in response.text
    assert wrong == [], "\n".join(wrong)
    assert await world.snapshot() == before


async def test_only_the_operational_routes_answer_without_a_token(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    public = {path for path, item in openapi["paths"].items()
              for method, operation in item.items()
              if method in HTTP_METHODS and not operation.get("security")}
    assert public <= set(PUBLIC)
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert world.plan["id"] not in metadata.text and "su-1" not in metadata.text
