"""An in-process client of the workforce service with helpers that read like the domain
(a module of its own name, so it imports whichever other conftest is loaded)."""

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from recovery.common.events import CloudEvent
from recovery.common.testing.openapi_operations import PROBLEM
from recovery.common.testing.plugin import TokenFactory, auth, unique
from recovery.workforce.events import on_training_event

__all__ = ["MANAGE", "PROBLEM", "WorkforceApi", "auth", "problem_of", "training_event",
           "unique"]

#: Managers set teams up and add staff: a write scope (the dev issuer's default is read-only).
MANAGE = "user/*.cruds"


def problem_of(response: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if kind is not None:
        assert body["type"].endswith("/" + kind), body["type"]
    return body


def training_event(kind: str, *, staff_id: str, team_id: str, version: int,
                   enrolment_id: str | None = None, foundation: bool = True,
                   completed_on: str | None = None, rating: int | None = None,
                   learner_kind: str = "staff") -> CloudEvent:
    """A CloudEvent as the training service publishes it."""
    status = "completed" if completed_on else "enrolled"
    data: dict[str, Any] = {
        "enrolment_id": enrolment_id or str(uuid.uuid5(uuid.NAMESPACE_URL, staff_id)),
        "staff_id": staff_id if learner_kind == "staff" else None, "learner_id": staff_id,
        "learner_kind": learner_kind, "team_id": team_id,
        "course_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "foundation")),
        "run_id": None, "foundation": foundation, "status": status,
        "completed_on": completed_on, "rating": rating, "version": version,
        "occurred_at": "2030-01-01T00:00:00+00:00"}
    return CloudEvent(source="training", type=f"recovery.training.{kind}",
                      subject=data["enrolment_id"], data=data)


@dataclass
class WorkforceApi:
    client: httpx.AsyncClient
    tokens: TokenFactory

    def manager(self, team: str, *more: str) -> str:
        return self.tokens("manager", f"manager-{team}", teams=[team, *more], scope=MANAGE)

    def admin(self, team: str, *more: str) -> str:
        return self.tokens("admin", f"admin-{team}", teams=[team, *more])

    async def team(self, team: str | None = None, name: str = "Early intervention") -> str:
        team = team or unique("team")
        response = await self.client.post("/v1/teams", json={"id": team, "name": name},
                                          headers=auth(self.manager(team)))
        assert response.status_code == 201, response.text
        return team

    async def staff(self, team: str, *, role_type: str = "professional",
                    profession: str = "nursing", grade: str = "band-6", fte: float = 1.0,
                    start_date: str = "2024-01-01", staff_id: str | None = None
                    ) -> dict[str, Any]:
        body: dict[str, Any] = {"team_id": team, "display_name": "Sam Jones",
                                "profession": profession, "grade": grade,
                                "role_type": role_type, "fte": fte, "start_date": start_date}
        if staff_id:
            body["id"] = staff_id
        response = await self.client.post("/v1/staff", json=body,
                                          headers=auth(self.manager(team)))
        assert response.status_code == 201, response.text
        staff: dict[str, Any] = response.json()
        return staff

    async def contact(self, team: str, staff_id: str, minutes: int, *,
                      mode: str = "individual", person: str = "su-1",
                      on: date | None = None) -> httpx.Response:
        token = self.tokens.clinician("staff-logger", [team])
        return await self.client.post("/v1/care-contacts", headers=auth(token), json={
            "staff_id": staff_id, "service_user_id": person, "minutes": minutes,
            "mode": mode, "occurred_on": (on or date.today()).isoformat()})

    async def get(self, path: str, token: str, **params: Any) -> dict[str, Any]:
        response = await self.client.get(path, headers=auth(token), params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def training(self, event: CloudEvent) -> None:
        """Hand a training event to the service's own consumer handler, in a transaction of
        its own (as the consumer runner does)."""
        kit = self.client.app.state.kit  # type: ignore[attr-defined]
        async with kit.sessions() as session:
            await on_training_event(session, event)
            await session.commit()
