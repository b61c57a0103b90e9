"""Every endpoint of the training service refuses a missing or bad bearer token with a 401
problem, and changes nothing.

The endpoints are read from the service's own OpenAPI document, so a new one is covered the
day it is added; only the operational routes are left out, each for a stated reason.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from training_operations import (
    HTTP_METHODS,
    PROBLEM,
    PUBLIC,
    Operation,
    Records,
    protected_operations,
    valid_body,
)

from recovery.common.dev_issuer import KID, DevIssuer
from recovery.common.settings import DEV_ISSUER
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app

# --- forged and broken tokens -------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**overrides: Any) -> dict[str, Any]:
    """Claims of an admin of team-a who could otherwise do everything; None drops one."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "aud": "recovery-platform", "sub": "staff-1",
                              "iat": now, "exp": now + 600, "roles": ["admin"],
                              "teams": ["team-a"], "scope": "user/*.cruds"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _signed(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    issuer.ensure_keys()
    return jwt.encode(claims, issuer._private_key, algorithm="RS256", headers={"kid": KID})


def _alg_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _signed_by_another_key(claims: dict[str, Any]) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": KID})


def _hmac_with_the_public_key(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    """Algorithm confusion: HS256 keyed with the issuer's public key, which anyone has."""
    issuer.ensure_keys()
    public_pem = issuer._private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (_b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
                     + "." + _b64(json.dumps(claims).encode()))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _tampered(issuer: DevIssuer) -> str:
    """A genuine token whose payload was swapped for one naming more teams."""
    header, _, signature = _signed(issuer, _claims()).split(".")
    payload = _b64(json.dumps(_claims(teams=["team-a", "team-b", "team-c"])).encode())
    return f"{header}.{payload}.{signature}"


#: How to send each bad credential: the Authorization header value, or None for no header.
BAD_CREDENTIALS: dict[str, Callable[[DevIssuer], str | None]] = {
    "no token": lambda issuer: None,
    "expired": lambda issuer: "Bearer " + _signed(issuer, _claims(exp=int(time.time()) - 3600,
                                                                  iat=int(time.time()) - 7200)),
    "wrong audience": lambda issuer: "Bearer " + _signed(issuer, _claims(aud="another-api")),
    "wrong issuer": lambda issuer: "Bearer " + _signed(issuer,
                                                       _claims(iss="https://idp.example")),
    "alg none": lambda issuer: "Bearer " + _alg_none(_claims()),
    "signed by another key": lambda issuer: "Bearer " + _signed_by_another_key(_claims()),
    "missing exp": lambda issuer: "Bearer " + _signed(issuer, _claims(exp=None)),
    "missing sub": lambda issuer: "Bearer " + _signed(issuer, _claims(sub=None)),
    "not valid yet": lambda issuer: "Bearer " + _signed(issuer, _claims(
        nbf=int(time.time()) + 3600)),
    "exp that is not a time": lambda issuer: "Bearer " + _signed(issuer, _claims(
        exp="tomorrow")),
    "unknown key id": lambda issuer: "Bearer " + jwt.encode(
        _claims(), issuer._private_key, algorithm="RS256", headers={"kid": "stranger-1"}),
    "HS256 keyed with the public key": lambda issuer: "Bearer " + _hmac_with_the_public_key(
        issuer, _claims()),
    "payload tampered after signing": lambda issuer: "Bearer " + _tampered(issuer),
    "not a JWT": lambda issuer: "Bearer not-a.jwt",
    "basic credentials": lambda issuer: "Basic " + _b64(b"staff-1:secret"),
}


# --- the service and its operations -------------------------------------------------------


@dataclass
class World:
    """A running training service with a course, a run, an educator and an enrolment."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    records: Records
    operations: list[Operation]

    async def snapshot(self) -> list[str]:
        """What a refused change must leave alone, as an admin reads it."""
        token = TokenFactory.header(self.tokens.admin("admin-1", ["team-a"]))
        paths = ["/v1/courses?limit=200", f"/v1/courses/{self.records.course_id}/runs",
                 f"/v1/educators/{self.records.educator_id}", "/v1/enrolments?limit=200"]
        bodies = []
        for path in paths:
            response = await self.client.get(path, headers=token)
            assert response.status_code == 200, response.text
            bodies.append(response.text)
        return bodies


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer,
                tokens: TokenFactory) -> AsyncIterator[World]:
    # Tokens are refused before the database is touched, so one backend is enough here.
    database = Path(tmp_path_factory.mktemp("token-matrix")) / "training.db"
    settings = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{database}",
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        college = TokenFactory.header(tokens.educator("college", []))
        educators = []
        for lived in (True, False):
            created = await client.post("/v1/educators", headers=college, json={
                "display_name": "Educator", "kind": "professional",
                "lived_experience": lived})
            assert created.status_code == 201, created.text
            educators.append(created.json()["id"])
        course = (await client.post("/v1/courses", headers=college, json={
            "title": "Recovery and me", "learning_outcomes": ["Hope"], "audience": ["staff"],
            "co_produced_with": ["Peers"]})).json()
        run = (await client.post(f"/v1/courses/{course['id']}/runs", headers=college, json={
            "starts_on": "2030-01-01", "ends_on": "2030-01-02", "online": True,
            "capacity": 5, "facilitator_ids": educators})).json()
        enrolment = (await client.post(f"/v1/runs/{run['id']}/enrolments", headers=college,
                                       json={"learner_id": "staff-1",
                                             "team_id": "team-a"})).json()
        openapi = (await client.get("/openapi.json")).json()
        yield World(client, tokens, Records(course["id"], run["id"], educators[0],
                                            enrolment["id"], "staff-1", "team-a"),
                    protected_operations(openapi))


def test_the_matrix_covers_every_training_operation_the_service_documents(world: World) -> None:
    """Guards against a matrix that passes because it found nothing to test."""
    found = {str(operation) for operation in world.operations}
    assert found >= {
        "GET /v1/courses", "POST /v1/courses", "GET /v1/courses/{course_id}",
        "PATCH /v1/courses/{course_id}", "GET /v1/courses/{course_id}/runs",
        "POST /v1/courses/{course_id}/runs", "GET /v1/runs/{run_id}",
        "POST /v1/educators", "GET /v1/educators", "GET /v1/educators/{educator_id}",
        "POST /v1/educators/{educator_id}/training",
        "POST /v1/educators/{educator_id}/supervision",
        "POST /v1/educators/{educator_id}/support", "POST /v1/runs/{run_id}/enrolments",
        "GET /v1/enrolments", "GET /v1/enrolments/{enrolment_id}",
        "POST /v1/enrolments/{enrolment_id}/attendance",
        "POST /v1/enrolments/{enrolment_id}/completion",
        "POST /v1/enrolments/{enrolment_id}/withdrawal",
        "POST /v1/enrolments/{enrolment_id}/feedback", "GET /v1/staff/{staff_id}",
        "GET /v1/figures/foundation-coverage", "GET /v1/teams/{team_id}/foundation-coverage",
        "GET /v1/figures/quality", "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    unfilled = [str(op) for op in world.operations if "{" in world.records.fill(op.template)]
    assert unfilled == [], "add a value for these path parameters to Records.fill"


async def test_every_protected_operation_declares_bearer_security(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    undeclared = [str(op) for op in world.operations
                  if not openapi["paths"][op.template][op.method].get("security")]
    assert undeclared == []


async def test_a_valid_token_gets_past_authentication_on_every_operation(
        world: World, tokens: TokenFactory) -> None:
    """The control: the same requests with a good token are not refused as unauthenticated."""
    token = tokens.admin("admin-1", ["team-a"])
    for operation in world.operations:
        if operation.method != "get":
            continue  # reads only, so the records stay as the bad-token tests expect them
        response = await world.client.request(
            operation.method, world.records.fill(operation.template),
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
        body = valid_body(operation, learner_id="staff-2")
        response = await world.client.request(operation.method,
                                              world.records.fill(operation.template),
                                              headers=headers, json=body)
        problem = _problem_or_none(response)
        if (response.status_code != 401 or problem is None or problem.get("status") != 401
                or not str(problem.get("type", "")).endswith("/unauthorized")
                or not response.headers.get("www-authenticate", "").startswith("Bearer ")):
            wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
        if authorization is not None:
            token = authorization.split(" ", 1)[1]
            assert token not in response.text, f"{operation} echoes the token"
    assert wrong == [], "\n".join(wrong)
    assert await world.snapshot() == before


def _problem_or_none(response: httpx.Response) -> dict[str, Any] | None:
    if response.headers.get("content-type", "") != PROBLEM:
        return None
    body: dict[str, Any] = response.json()
    return body


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    documented_public = {path for path, item in openapi["paths"].items()
                         for method, operation in item.items()
                         if method in HTTP_METHODS and not operation.get("security")}
    assert documented_public <= set(PUBLIC), "a route without bearer security was added"
