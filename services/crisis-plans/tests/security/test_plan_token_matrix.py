"""Every endpoint of the crisis-plans service refuses a missing or bad bearer token with a 401
problem and changes nothing. The endpoints are read from the service's own OpenAPI document,
so a new one is covered the day it is added."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from plan_operations import (
    PUBLIC,
    FhirAwareMatrix,
    Operation,
    fill_path,
    protected_operations,
    query_for,
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
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app


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

    @property
    def matrix(self) -> TokenMatrix:
        return FhirAwareMatrix(self.client, self.operations, lambda operation: Call(
            self.path(operation), headers={"If-Match": f'"{self.plan["version"]}"'},
            params=query_for(operation, plan_id=self.plan["id"]),
            json=valid_body(operation, service_user_id="su-1", team_id="team-a",
                            content_hash=self.plan["content_hash"])))

    async def snapshot(self) -> tuple[str, str, int, int]:
        """The plan and its ETag, how many versions and decisions it has."""
        headers = TokenFactory.header(self.tokens.clinician("staff-1", ["team-a"]))
        base = f"/v1/crisis-plans/{self.plan['id']}"
        plan = await self.client.get(base, headers=headers)
        versions = await self.client.get(f"{base}/versions", headers=headers)
        decisions = await self.client.get(f"{base}/medication-decisions", headers=headers)
        return (plan.text, plan.headers["etag"], len(versions.json()["items"]),
                len(decisions.json()["items"]))


@pytest.fixture(scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[World]:
    database_url = module_database_url(request, tmp_path_factory, "token_matrix")
    settings = make_settings(SERVICE, database_url=database_url,
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
        "POST /v1/crisis-plans/{plan_id}/entered-in-error",
        "GET /v1/crisis-plans/{plan_id}/versions",
        "POST /v1/crisis-plans/{plan_id}/medication-decisions",
        "GET /v1/crisis-plans/{plan_id}/medication-decisions",
        "GET /v1/people/{service_user_id}/crisis-plan",
        "GET /v1/people/{service_user_id}/crisis-plans",
        "POST /v1/people/{service_user_id}/crisis-plan:break-glass",
        "GET /v1/teams/{team_id}/crisis-plans",
        "GET /v1/teams/{team_id}/crisis-plans:overdue-review",
        "GET /v1/teams/{team_id}/medication-decisions:review-due",
        "GET /fhir/CarePlan/{plan_id}", "GET /fhir/Provenance", "GET /fhir/CarePlan",
        "GET /fhir/Provenance/{provenance_id}",
        "GET /fhir/CarePlan/{plan_id}/_history",
        "GET /fhir/CarePlan/{plan_id}/_history/{version_id}",
        "GET /fhir/Patient", "GET /fhir/Patient/{person}",
        "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    assert unfilled(world.operations, world.path) == []


class TestPlanTokenMatrix(TokenMatrixContract):
    """The kit's token matrix, with forgeries in the claims of a caller who could otherwise
    do everything."""

    roles = ["admin", "clinician"]
    teams = ["team-a", "crisis-team"]


async def test_only_the_operational_routes_answer_without_a_token(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert paths_without_security(openapi) <= set(PUBLIC)
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert world.plan["id"] not in metadata.text and "su-1" not in metadata.text
