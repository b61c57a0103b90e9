"""Fixtures of the goals tests: a running goals service per backend and a small client."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
    unique,
)
from recovery.common.testing.plugin import auth as bearer

__all__ = ["GoalsApi", "unique"]
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app


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


@pytest.fixture(scope="module", params=BACKENDS)
def goals_database(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend (the plugin's ``database_url``, module-wide,
    so a module's API tests share one migrated service)."""
    return module_database_url(request, tmp_path_factory, "goals")


@pytest.fixture(scope="module")
async def api(goals_database: str, dev_issuer: DevIssuer,
              tokens: TokenFactory) -> AsyncIterator[GoalsApi]:
    settings = make_settings(SERVICE, database_url=goals_database,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield GoalsApi(client, tokens)
