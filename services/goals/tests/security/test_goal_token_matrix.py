"""Every endpoint of the goals service refuses a missing or bad bearer token with a 401: a
problem document under /v1, an OperationOutcome under /fhir.

The endpoints are read from the service's own OpenAPI document, so a new one is covered the
day it is added; only the operational routes, the public FHIR CapabilityStatement and SMART
discovery are left out, each for a stated reason.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from conftest import FHIR_JSON
from goal_operations import (
    PUBLIC,
    Operation,
    fill_path,
    protected_operations,
    valid_body,
)

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.forged_tokens import bad_credentials
from recovery.common.testing.openapi_operations import (
    paths_without_security,
    undeclared_security,
    unfilled,
)
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.common.testing.token_matrix import (
    CREDENTIALS,
    Call,
    TokenMatrix,
    TokenMatrixContract,
)
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app

# --- the service and its operations -------------------------------------------------------


@dataclass
class World:
    """A running goals service with one goal (with a step) that a valid token may reach.

    ``operations`` are those under /v1, which the kit's matrix checks (problem documents);
    ``fhir_operations`` those under /fhir, whose refusals are OperationOutcomes."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    goal_id: str
    step_id: str
    operations: list[Operation]
    fhir_operations: list[Operation]

    def path(self, operation: Operation) -> str:
        return fill_path(operation.template, goal_id=self.goal_id, step_id=self.step_id,
                         team_id="team-a")

    def call(self, operation: Operation) -> Call:
        return Call(self.path(operation), headers={"If-Match": "*"},
                    json=valid_body(operation, service_user_id="su-1", team_id="team-a",
                                    goal_id=self.goal_id))

    @property
    def matrix(self) -> TokenMatrix:
        return TokenMatrix(self.client, self.operations, self.call)

    async def snapshot(self) -> tuple[str, str, int]:
        """What a refused change must leave alone: the goal, its ETag, how many goals exist."""
        token = self.tokens.admin("admin-1", ["team-a"])
        goal = await self.client.get(f"/v1/goals/{self.goal_id}",
                                     headers=TokenFactory.header(token))
        listed = await self.client.get("/v1/goals", params={"limit": 200, "team_id": "team-a"},
                                       headers=TokenFactory.header(token))
        assert goal.status_code == 200 and listed.status_code == 200
        return goal.text, goal.headers["etag"], len(listed.json()["items"])


@pytest.fixture(scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[World]:
    database_url = module_database_url(request, tmp_path_factory, "token_matrix")
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        staff = TokenFactory.header(tokens.clinician("staff-1", ["team-a"]))
        created = await client.post("/v1/goals", headers=staff, json={
            "service_user_id": "su-1", "team_id": "team-a", "description": "Learn to drive",
            "steps": [{"who": "staff", "what": "Find a driving school"}]})
        assert created.status_code == 201, created.text
        goal = created.json()
        openapi = (await client.get("/openapi.json")).json()
        operations = protected_operations(openapi)
        yield World(client, tokens, goal["id"], goal["steps"][0]["id"],
                    [op for op in operations if not op.template.startswith("/fhir/")],
                    [op for op in operations if op.template.startswith("/fhir/")])


def test_the_matrix_covers_every_goal_operation_the_service_documents(world: World) -> None:
    """Guards against a matrix that passes because it found nothing to test."""
    found = {str(operation) for operation in [*world.operations, *world.fhir_operations]}
    assert found >= {
        "POST /v1/goals", "GET /v1/goals", "POST /v1/goals:batch-read",
        "GET /v1/goals/{goal_id}", "PATCH /v1/goals/{goal_id}",
        "POST /v1/goals/{goal_id}/accept", "POST /v1/goals/{goal_id}/decline",
        "POST /v1/goals/{goal_id}/status", "POST /v1/goals/{goal_id}/steps",
        "PATCH /v1/goals/{goal_id}/steps/{step_id}", "GET /v1/goals/{goal_id}/reviews",
        "POST /v1/goals/{goal_id}/reviews", "GET /v1/goals/{goal_id}/versions",
        "GET /v1/teams/{team_id}/figures", "GET /fhir/Goal/{goal_id}", "GET /fhir/Goal",
        "GET /fhir/Goal/{goal_id}/_history", "GET /fhir/Goal/{goal_id}/_history/{version_id}",
        "POST /fhir/Goal", "PUT /fhir/Goal/{goal_id}", "GET /fhir/Patient",
        "GET /fhir/Patient/{person}", "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    assert unfilled([*world.operations, *world.fhir_operations], world.path) == [], \
        "add a value for these path parameters to World.path"


class TestGoalTokenMatrix(TokenMatrixContract):
    """The kit's token matrix, with forgeries in the claims of a caller who could otherwise
    do everything."""

    roles = ["admin"]
    teams = ["team-a"]


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert paths_without_security(openapi) <= set(PUBLIC), \
        "a route without bearer security was added"
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    assert world.goal_id not in metadata.text and "su-1" not in metadata.text


# --- the same under /fhir, where refusals are OperationOutcomes -----------------------------


def unauthorized_outcome(response: httpx.Response) -> bool:
    """A 401 as FHIR clients get it: an OperationOutcome (issue type login) with the Bearer
    challenge."""
    if response.status_code != 401 or response.headers.get("content-type") != FHIR_JSON:
        return False
    outcome = response.json()
    return (outcome.get("resourceType") == "OperationOutcome"
            and outcome["issue"][0]["code"] == "login"
            and response.headers.get("www-authenticate", "").startswith("Bearer "))


async def test_every_fhir_operation_declares_bearer_security(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert undeclared_security(openapi, world.fhir_operations) == []


async def test_a_valid_token_gets_past_authentication_on_every_fhir_read(world: World) -> None:
    token = TokenFactory.header(world.tokens.admin("admin-1", ["team-a"]))
    for operation in world.fhir_operations:
        if operation.method == "get":
            response = await world.client.get(world.path(operation), headers=token)
            assert response.status_code != 401, f"{operation}: {response.text}"


@pytest.mark.parametrize("credential", CREDENTIALS)
async def test_a_bad_or_missing_token_is_a_401_outcome_on_every_fhir_operation(
        world: World, dev_issuer: DevIssuer, credential: str) -> None:
    authorization = bad_credentials(roles=["admin"], teams=["team-a"])[credential](dev_issuer)
    before = await world.snapshot()
    wrong = []
    for operation in world.fhir_operations:
        call = world.call(operation)
        headers = {**call.headers, **({"Authorization": authorization} if authorization else {})}
        response = await world.client.request(operation.method, call.path, headers=headers,
                                              json=call.json)
        if not unauthorized_outcome(response):
            wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
        if authorization and authorization.split(" ", 1)[-1] in response.text:
            wrong.append(f"{operation} echoes the token")
    assert wrong == [], "\n".join(wrong)
    assert await world.snapshot() == before
