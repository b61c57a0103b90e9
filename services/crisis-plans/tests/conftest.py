"""Fixtures of the crisis-plans tests: a running service per backend and a small client."""

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import BACKENDS, TokenFactory, make_settings, running_service
from recovery.common.testing.processes import PostgresServer
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app

#: A plan with something personal in every section a crisis team reads first.
PLAN_CONTENT: dict[str, Any] = {
    "when_well": ["I cook for friends and walk the dog every morning"],
    "early_warning_signs": ["Sleeping less than four hours", "Stopping answering my sister"],
    "triggers": ["Anniversary of my dad's death in March"],
    "what_helps": ["Sitting in the garden with someone I trust"],
    "what_does_not_help": ["Being told to calm down"],
    "coping_strategies": ["Listening to my playlist", "Cold water on my face"],
    "helpful_contacts": [{"name": "Ana", "role": "sister", "how_to_reach": "mobile, evenings"}],
    "people_not_to_involve": [{"name": "My ex-partner", "reason": "It makes things worse"}],
    "professional_contacts": [{"name": "Crisis line", "role": "24-hour crisis line",
                               "how_to_reach": "the number on my fridge",
                               "available_24_hours": True}],
    "preferred_setting": "Home treatment",
    "declined_treatments": [{"treatment": "Haloperidol", "reason": "Severe stiffness before",
                             "acceptable_alternatives": ["Olanzapine"]}],
    "participants": [{"role": "service_user"}, {"role": "care_coordinator", "id": "staff-1"}],
    "copy_holders": [{"kind": "gp"}],
    "review_on": "2031-01-01",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class PlansApi:
    """An in-process client of the crisis-plans service with helpers in the domain's words."""

    client: httpx.AsyncClient
    tokens: TokenFactory

    @staticmethod
    def auth(token: str, etag: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if etag is not None:
            headers["If-Match"] = etag
        return headers

    async def draft(self, token: str, person: str, team: str = "team-a",
                    **content: Any) -> dict[str, Any]:
        body = {"service_user_id": person, "team_id": team, **(content or PLAN_CONTENT)}
        response = await self.client.post("/v1/crisis-plans", json=body,
                                          headers=self.auth(token))
        assert response.status_code == 201, response.text
        plan: dict[str, Any] = response.json()
        return plan

    async def sign(self, token: str, plan: dict[str, Any], **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/crisis-plans/{plan['id']}/signatures",
            json={"content_hash": plan["content_hash"], **body},
            headers=self.auth(token, f'"{plan["version"]}"'))

    async def agreed(self, staff: str, person: str, person_token: str,
                     team: str = "team-a") -> dict[str, Any]:
        plan = await self.draft(staff, person, team)
        assert (await self.sign(person_token, plan)).status_code == 201
        signed = await self.sign(staff, plan)
        assert signed.status_code == 201, signed.text
        result: dict[str, Any] = signed.json()
        assert result["status"] == "agreed"
        return result

    async def edit(self, token: str, plan_id: str, etag: str,
                   **content: Any) -> httpx.Response:
        return await self.client.put(f"/v1/crisis-plans/{plan_id}", json=content,
                                     headers=self.auth(token, etag))

    async def active(self, token: str, person: str) -> httpx.Response:
        return await self.client.get(f"/v1/people/{person}/crisis-plan",
                                     headers=self.auth(token))


@pytest.fixture(scope="module", params=BACKENDS)
def plans_database(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('plans') / 'crisis_plans.db'}"
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are required in CI (initdb, pg_ctl)")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine")
    return server.create_database("crisis_plans_" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
async def api(plans_database: str, dev_issuer: DevIssuer,
              tokens: TokenFactory) -> AsyncIterator[PlansApi]:
    settings = make_settings(SERVICE, database_url=plans_database,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield PlansApi(client, tokens)
