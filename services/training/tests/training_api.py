"""A client of the training service whose helpers read like the domain (a module of its own
name, so tests import it whatever other conftest is loaded)."""

from dataclasses import dataclass
from typing import Any

import httpx

from recovery.common.testing.plugin import TokenFactory, unique
from recovery.common.testing.plugin import auth as bearer
from recovery.training.models import FOUNDATION_COURSE_ID

FOUNDATION = FOUNDATION_COURSE_ID


__all__ = ["FOUNDATION", "TrainingApi", "unique"]


@dataclass
class TrainingApi:
    """An in-process client of the training service."""

    client: httpx.AsyncClient
    tokens: TokenFactory

    auth = staticmethod(bearer)

    @property
    def college(self) -> str:
        return self.tokens.educator("educator-college", teams=[])

    async def send(self, method: str, path: str, token: str, *, json: Any = None,
                   etag: str | None = None, params: Any = None) -> httpx.Response:
        return await self.client.request(method, path, json=json, params=params,
                                         headers=self.auth(token, etag))

    async def ok(self, method: str, path: str, token: str, *, json: Any = None,
                 status: int = 200, **kw: Any) -> dict[str, Any]:
        response = await self.send(method, path, token, json=json, **kw)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    async def educator(self, *, lived_experience: bool, **body: Any) -> str:
        kind = "service_user_educator" if lived_experience else "professional"
        created = await self.ok("POST", "/v1/educators", self.college, status=201, json={
            "display_name": unique("Educator"), "kind": kind,
            "lived_experience": lived_experience, **body})
        return str(created["id"])

    async def course(self, **body: Any) -> str:
        created = await self.ok("POST", "/v1/courses", self.college, status=201, json={
            "title": unique("Course"), "learning_outcomes": ["Plan a recovery journey"],
            "audience": ["staff", "service_user", "carer"],
            "co_produced_with": ["Peer trainers"], **body})
        return str(created["id"])

    async def run(self, course_id: str, *, capacity: int = 10, **body: Any) -> str:
        lived = await self.educator(lived_experience=True)
        other = await self.educator(lived_experience=False)
        created = await self.ok("POST", f"/v1/courses/{course_id}/runs", self.college,
                                status=201, json={
                                    "starts_on": "2030-03-01", "ends_on": "2030-03-02",
                                    "online": True, "capacity": capacity,
                                    "facilitator_ids": [lived, other], **body})
        return str(created["id"])

    async def enrol(self, run_id: str, token: str | None = None, **body: Any) -> dict[str, Any]:
        return await self.ok("POST", f"/v1/runs/{run_id}/enrolments", token or self.college,
                             json=body, status=201)

    async def complete(self, enrolment_id: str, on: str = "2030-03-02") -> dict[str, Any]:
        await self.ok("POST", f"/v1/enrolments/{enrolment_id}/attendance", self.college,
                      json={"attended": True})
        return await self.ok("POST", f"/v1/enrolments/{enrolment_id}/completion",
                             self.college, json={"completed_on": on})

