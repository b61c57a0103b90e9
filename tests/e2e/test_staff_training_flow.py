"""Workforce and training together on a real NATS server, both services in process with
their lifespans, relays and consumers, on each database: a member of staff joins team-a and
is enrolled in the foundation course; completing it moves team-a's training factor and
readiness in workforce (which then names another factor as the weakest); moving to team-b
moves both teams' coverage in both services."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    running_in_ci,
    running_service,
)
from recovery.common.testing.processes import NatsServer, PostgresServer
from recovery.training import main as training
from recovery.training.models import FOUNDATION_COURSE_ID
from recovery.workforce import main as workforce

pytestmark = pytest.mark.integration


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A database of its own for each service, on one backend."""
    if request.param == "sqlite":
        return {name: f"sqlite+aiosqlite:///{tmp_path / name}.db"
                for name in ("workforce", "training")}
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        if running_in_ci():
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are required in CI")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine")
    return {name: server.create_database(f"{name}_{uuid.uuid4().hex[:10]}")
            for name in ("workforce", "training")}


@dataclass
class Platform:
    workforce: httpx.AsyncClient
    training: httpx.AsyncClient
    tokens: TokenFactory

    async def call(self, client: httpx.AsyncClient, method: str, path: str, token: str, *,
                   json: Any = None, etag: str | None = None, status: int = 200
                   ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-Match"] = etag
        response = await client.request(method, path, json=json, headers=headers)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def platform(databases: dict[str, str], dev_issuer: DevIssuer, tokens: TokenFactory,
                   own_nats_server: NatsServer) -> AsyncIterator[Platform]:
    async with AsyncExitStack() as stack:
        clients = {}
        for name, module in (("workforce", workforce), ("training", training)):
            settings = make_settings(module.SERVICE, database_url=databases[name],
                                     jwks_file=dev_issuer.jwks_path,
                                     nats_url=own_nats_server.url)
            clients[name] = await stack.enter_async_context(
                running_service(module.create_app, settings, module.MIGRATIONS_DIR))
        yield Platform(clients["workforce"], clients["training"], tokens)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Within seconds, as events travel through NATS between the services."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "did not happen within the time allowed"
        await asyncio.sleep(0.1)


def days_ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


async def test_staff_join_train_and_move_and_both_services_follow(platform: Platform) -> None:
    p, t = platform, platform.tokens
    manager = t("manager", "manager-1", teams=["team-a", "team-b"], scope="user/*.cruds")
    college = t.educator("educator-college", teams=[])
    for team in ("team-a", "team-b"):
        await p.call(p.workforce, "POST", "/v1/teams", manager, status=201,
                     json={"id": team, "name": team.title()})
    staff_id = f"peer-{uuid.uuid4().hex[:8]}"
    await p.call(p.workforce, "POST", "/v1/staff", manager, status=201, json={
        "id": staff_id, "team_id": "team-a", "display_name": "Sam", "profession":
        "peer_support", "grade": "band-4", "role_type": "peer_specialist", "fte": 1.0,
        "start_date": days_ago(60)})

    # Staff joined (workforce) -> enrolled in the foundation course (training).
    async def foundation() -> list[dict[str, Any]]:
        page = await p.call(p.training, "GET", f"/v1/enrolments?learner_id={staff_id}",
                            t.admin("admin-1", []))
        return [e for e in page["items"] if e["course_id"] == FOUNDATION_COURSE_ID]

    async def enrolled() -> bool:
        return len(await foundation()) == 1
    await eventually(enrolled)
    enrolment = (await foundation())[0]
    assert enrolment["team_id"] == "team-a" and enrolment["automatic"] is True

    async def readiness(team: str) -> dict[str, Any]:
        figures = await p.call(p.workforce, "GET", f"/v1/teams/{team}/readiness", manager)
        assert figures["weakest_factor"] in {f["name"] for f in figures["factors"]}
        return figures

    async def training_factor(team: str) -> dict[str, Any]:
        factor: dict[str, Any] = next(f for f in (await readiness(team))["factors"]
                                      if f["name"] == "training")
        return factor

    # team-a's other factors are in place: good recovery-focused supervision, the peer
    # specialist as recovery lead, a climate survey; only training holds the team back.
    await p.call(p.workforce, "POST", "/v1/supervision-sessions", manager, status=201, json={
        "staff_id": staff_id, "supervisor_id": "supervisor-1", "held_on": days_ago(5),
        "recovery_focused": True, "quality": 5})
    await p.call(p.workforce, "PUT", "/v1/teams/team-a/recovery-lead", manager,
                 json={"staff_id": staff_id})
    for _ in range(3):
        await p.call(p.workforce, "POST", "/v1/teams/team-a/climate-survey-responses", manager,
                     status=201, json={"responded_on": days_ago(2), "answers": [4] * 5})
    before = await training_factor("team-a")
    assert before["records"]["completed_foundation"] == 0 and before["score"] == 0.0
    ready_before = await readiness("team-a")
    assert (ready_before["weakest_factor"], ready_before["score"]) == ("training", 0.0)

    # A run without an educator with lived experience is refused; a co-delivered one is not.
    educators = [(await p.call(p.training, "POST", "/v1/educators", college, status=201, json={
        "display_name": name, "kind": kind, "lived_experience": lived}))["id"]
        for name, kind, lived in (("Ali", "professional", False),
                                  ("Bo", "professional", False),
                                  ("Cy", "service_user_educator", True))]
    run_body = {"starts_on": days_ago(10), "ends_on": days_ago(9), "place": "Room 1",
                "capacity": 12}
    refused = await p.training.post(
        f"/v1/courses/{FOUNDATION_COURSE_ID}/runs", headers={"Authorization": f"Bearer {college}"},
        json={**run_body, "facilitator_ids": educators[:2]})
    assert refused.status_code == 422 and "lived experience" in refused.json()["detail"]
    run = await p.call(p.training, "POST", f"/v1/courses/{FOUNDATION_COURSE_ID}/runs",
                       college, status=201, json={**run_body,
                                                  "facilitator_ids": educators[1:]})

    # The peer specialist takes a place, attends and completes.
    placed = await p.call(p.training, "POST", f"/v1/runs/{run['id']}/enrolments",
                          t.peer_specialist(staff_id, ["team-a"]), status=201, json={})
    assert placed["id"] == enrolment["id"]
    await p.call(p.training, "POST", f"/v1/enrolments/{enrolment['id']}/attendance", college,
                 json={"attended": True})
    await p.call(p.training, "POST", f"/v1/enrolments/{enrolment['id']}/completion", college,
                 json={"completed_on": days_ago(9)})

    async def team_a_trained() -> bool:
        return (await training_factor("team-a"))["records"]["completed_foundation"] == 1
    await eventually(team_a_trained)
    after = await training_factor("team-a")
    assert after["score"] == 1.0 > before["score"]
    # Readiness moves with it and names the factor that now limits the team: the climate
    # (answers of 4 of 5); the lead, trained now, no longer holds leadership back.
    ready_after = await readiness("team-a")
    assert (ready_after["weakest_factor"], ready_after["score"]) == ("culture", 0.75)
    assert ready_after["level"] == "ready"
    leadership = next(f for f in ready_after["factors"] if f["name"] == "leadership")
    assert leadership["score"] == 1.0 and leadership["records"]["lead_trained"] is True
    coverage_a = await p.call(p.training, "GET", "/v1/teams/team-a/foundation-coverage",
                              manager)
    assert (coverage_a["staff"], coverage_a["completed"]) == (1, 1)

    # Moving to team-b: both teams' coverage follow, in both services.
    await p.call(p.workforce, "POST", f"/v1/staff/{staff_id}/move", manager, etag='"1"',
                 json={"team_id": "team-b", "effective_date": days_ago(1)})

    async def moved_in_training() -> bool:
        roster = await p.call(p.training, "GET", f"/v1/staff/{staff_id}", manager)
        return bool(roster["team_id"] == "team-b")
    await eventually(moved_in_training)
    coverage_a = await p.call(p.training, "GET", "/v1/teams/team-a/foundation-coverage",
                              manager)
    coverage_b = await p.call(p.training, "GET", "/v1/teams/team-b/foundation-coverage",
                              manager)
    assert (coverage_a["staff"], coverage_a["completed"]) == (0, 0)
    assert (coverage_b["staff"], coverage_b["completed"], coverage_b["coverage"]) == (1, 1, 1.0)
    factor_a, factor_b = await training_factor("team-a"), await training_factor("team-b")
    assert factor_a["records"]["completed_foundation"] == 0
    assert factor_a["records"]["staff_in_post"] == 0
    assert factor_b["records"]["completed_foundation"] == 1
    assert factor_b["records"]["staff_in_post"] == 1
