"""Every endpoint of the training service refuses a missing or bad bearer token with a 401
problem, and changes nothing.

The endpoints are read from the service's own OpenAPI document, so a new one is covered the
day it is added; only the operational routes are left out, each for a stated reason.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from training_operations import (
    PUBLIC,
    Operation,
    Records,
    protected_operations,
    valid_body,
)

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.openapi_operations import (
    paths_without_security,
    unfilled,
)
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.common.testing.token_matrix import Call, TokenMatrix, TokenMatrixContract
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app

# --- the service and its operations -------------------------------------------------------


@dataclass
class World:
    """A running training service with a course, a run, an educator and an enrolment."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    records: Records
    operations: list[Operation]

    @property
    def matrix(self) -> TokenMatrix:
        return TokenMatrix(self.client, self.operations, lambda operation: Call(
            self.records.fill(operation.template), headers={"If-Match": "*"},
            json=valid_body(operation, learner_id="staff-2")))

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


@pytest.fixture(scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[World]:
    database_url = module_database_url(request, tmp_path_factory, "token_matrix")
    settings = make_settings(SERVICE, database_url=database_url,
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
        "POST /v1/runs/{run_id}/delivery",
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
    assert unfilled(world.operations, lambda op: world.records.fill(op.template)) == [], \
        "add a value for these path parameters to Records.fill"


class TestTrainingTokenMatrix(TokenMatrixContract):
    """The kit's token matrix, with forgeries in the claims of a caller who could otherwise
    do everything."""

    roles = ["admin"]
    teams = ["team-a"]


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert paths_without_security(openapi) <= set(PUBLIC), \
        "a route without bearer security was added"
