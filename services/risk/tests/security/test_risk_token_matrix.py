"""Every endpoint of the risk service refuses a missing or bad bearer token with a 401 problem
and changes nothing. The endpoints are read from the service's own OpenAPI document, so a new
one is covered the day it is added."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from risk_operations import (
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
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app


@dataclass
class World:
    """A running risk service with one co-assessment a valid token may reach."""

    client: httpx.AsyncClient
    tokens: TokenFactory
    assessment_id: str
    operations: list[Operation]

    def path(self, operation: Operation) -> str:
        return fill_path(operation.template, assessment_id=self.assessment_id, team_id="team-a")

    @property
    def matrix(self) -> TokenMatrix:
        return FhirAwareMatrix(self.client, self.operations, lambda operation: Call(
            self.path(operation), headers={"If-Match": '"1"'},
            params=query_for(operation, assessment_id=self.assessment_id),
            json=valid_body(operation, service_user_id="su-1", team_id="team-a")))

    async def snapshot(self) -> tuple[str, str, int]:
        token = TokenFactory.header(self.tokens.clinician("staff-1", ["team-a"]))
        one = await self.client.get(f"/v1/risk-assessments/{self.assessment_id}",
                                    headers=token)
        listed = await self.client.get("/v1/risk-assessments",
                                       params={"limit": 200, "team_id": "team-a"}, headers=token)
        assert one.status_code == 200 and listed.status_code == 200
        return one.text, one.headers["etag"], len(listed.json()["items"])


@pytest.fixture(scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[World]:
    database_url = module_database_url(request, tmp_path_factory, "risk_token_matrix")
    settings = make_settings(SERVICE, database_url=database_url,
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
        "GET /fhir/Provenance/{provenance_id}",
        "GET /fhir/RiskAssessment", "GET /fhir/RiskAssessment/{assessment_id}/_history",
        "GET /fhir/RiskAssessment/{assessment_id}/_history/{version_id}",
        "GET /fhir/Patient", "GET /fhir/Patient/{person}",
        "GET /v1/audit-events", "GET /fhir/AuditEvent",
    }
    assert unfilled(world.operations, world.path) == [], \
        "add a value for these path parameters to fill_path"


class TestRiskTokenMatrix(TokenMatrixContract):
    """The kit's token matrix, with forgeries in the claims of a caller who could otherwise
    do everything."""

    roles = ["admin", "clinician"]
    teams = ["team-a"]


async def test_a_score_without_a_token_is_401_not_a_hint_about_the_api(world: World) -> None:
    response = await world.client.post("/v1/risk-assessments", json={"risk_score": 9})
    assert response.status_code == 401


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert paths_without_security(openapi) <= set(PUBLIC), \
        "a route without bearer security was added"
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    assert world.assessment_id not in metadata.text and "su-1" not in metadata.text
