"""Fixtures of the goals tests: a running goals service per backend and a small client."""

from dataclasses import dataclass
from typing import Any

import httpx
from fhir.resources.R4B.operationoutcome import OperationOutcome

from recovery.common.problems import ISSUE_TYPES
from recovery.common.testing.plugin import TokenFactory, service_api_fixture, unique
from recovery.common.testing.plugin import auth as bearer
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app

__all__ = ["FHIR_JSON", "GoalsApi", "assert_outcome", "unique"]

FHIR_JSON = "application/fhir+json"


def assert_outcome(response: httpx.Response, status: int, what: str = "") -> dict[str, Any]:
    """An error under /fhir: a valid FHIR OperationOutcome, in FHIR's media type, whose first
    issue has FHIR's issue type for the status."""
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == FHIR_JSON, what
    outcome: dict[str, Any] = response.json()
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["code"] == ISSUE_TYPES[status], f"{what}: {outcome}"
    return outcome


@dataclass
class GoalsApi:
    """An in-process client of the goals service with helpers that read like the domain."""

    client: httpx.AsyncClient
    tokens: TokenFactory

    auth = staticmethod(bearer)

    async def create(self, token: str, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/goals", json=body, headers=self.auth(token))
        assert response.status_code == 201, response.text
        goal: dict[str, Any] = response.json()
        return goal

    async def read(self, token: str, goal_id: str) -> httpx.Response:
        return await self.client.get(f"/v1/goals/{goal_id}", headers=self.auth(token))

    async def send(self, method: str, path: str, token: str, *, etag: str | None,
                   json: Any = None) -> httpx.Response:
        return await self.client.request(method, path, json=json,
                                         headers=self.auth(token, etag))

    async def proposed_then_accepted(self, staff: str, person: str, person_token: str,
                                     **body: Any) -> dict[str, Any]:
        goal = await self.create(staff, service_user_id=person, **body)
        accepted = await self.send("POST", f"/v1/goals/{goal['id']}/accept", person_token,
                                   etag='"1"')
        assert accepted.status_code == 200, accepted.text
        result: dict[str, Any] = accepted.json()
        return result


api = service_api_fixture("goals", SERVICE, create_app, MIGRATIONS_DIR, GoalsApi)
