"""Every endpoint of the workforce service refuses a missing or bad bearer token with a 401
problem and changes nothing. The endpoints are read from the service's own OpenAPI document,
so a new one is covered the day it is added."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from workforce_operations import (
    PUBLIC,
    Operation,
    fill_path,
    protected_operations,
    query_for,
    valid_body,
)

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.openapi_operations import paths_without_security, unfilled
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.common.testing.token_matrix import Call, TokenMatrix, TokenMatrixContract
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app


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

    @property
    def matrix(self) -> TokenMatrix:
        return TokenMatrix(self.client, self.operations, lambda operation: Call(
            self.path(operation), json=self.body(operation), params=query_for(operation),
            headers={"If-Match": "*"}))

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


@pytest.fixture(scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[World]:
    database_url = module_database_url(request, tmp_path_factory, "token_matrix")
    settings = make_settings(SERVICE, database_url=database_url,
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
    assert unfilled(world.operations, world.path) == [], \
        "add a value for these path parameters to World.path"


class TestWorkforceTokenMatrix(TokenMatrixContract):
    """The kit's token matrix, with forgeries in the claims of an admin of both teams, who
    could otherwise do everything."""

    roles = ["admin"]
    teams = ["team-a", "team-b"]


async def test_public_routes_answer_without_a_token_and_hold_no_records(world: World) -> None:
    openapi = (await world.client.get("/openapi.json")).json()
    assert paths_without_security(openapi) <= set(PUBLIC), \
        "a route without bearer security was added"
    metadata = await world.client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    assert world.staff_id not in metadata.text
