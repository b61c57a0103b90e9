"""Goal events on a real NATS server: one per change, as documented, without goal text."""

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from conftest import GoalsApi, unique
from nats.aio.msg import Msg

from recovery.common.dev_issuer import DevIssuer
from recovery.common.events.asyncapi import AsyncApiDocument
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.common.testing.processes import NatsServer
from recovery.goals.events import GoalEvent
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app

pytestmark = pytest.mark.integration

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
GOAL_TEXT = ["Ride my bike to work", "I miss the fresh air", "stubborn", "Breathe slowly",
             "Rode twice this week", "Not now", "Sleep well"]


@dataclass
class Received:
    """Goal events seen on NATS, by goal id (the CloudEvent subject)."""

    by_goal: dict[str, list[Msg]] = field(default_factory=lambda: defaultdict(list))
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        self.by_goal[json.loads(msg.data)["subject"]].append(msg)
        self.arrived.set()

    async def wait_for(self, goal_id: str, count: int, within: float = 5.0) -> list[Msg]:
        deadline = time.monotonic() + within
        while len(self.by_goal[goal_id]) < count and time.monotonic() < deadline:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.1)
        return self.by_goal[goal_id]

    def types(self, goal_id: str) -> list[str]:
        return [json.loads(m.data)["type"] for m in self.by_goal[goal_id]]


async def wait_connected(client: httpx.AsyncClient) -> None:
    await asyncio.wait_for(client.app.state.kit.bus.ready.wait(), 15)  # type: ignore[attr-defined]


@pytest.fixture
async def live(database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
               nats_server: NatsServer) -> AsyncIterator[tuple[GoalsApi, Received]]:
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, nats_url=nats_server.url)
    received = Received()
    listener = await nats.connect(nats_server.url)
    await listener.subscribe("recovery.goals.goal.>", cb=received.on_message)
    try:
        async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
            await wait_connected(client)
            yield GoalsApi(client, tokens), received
    finally:
        await listener.drain()


async def test_each_change_publishes_exactly_one_documented_event_without_goal_text(
        live: tuple[GoalsApi, Received]) -> None:
    api, received = live
    contract = AsyncApiDocument.load(ASYNCAPI)
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()

    life = await api.create(own, service_user_id=person, team_id="team-a",
                            description=GOAL_TEXT[0], why_it_matters=GOAL_TEXT[1],
                            strengths=[GOAL_TEXT[2]], life_area="work_and_education")
    goal_id = life["id"]
    path = f"/v1/goals/{goal_id}"
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", path, {"target_date": "2030-01-01"}),
        ("POST", f"{path}/steps", {"who": "service_user", "what": "Pump the tyres"}),
        ("POST", f"{path}/reviews", {"achievement_status": "improving", "rating": 6,
                                     "own_words": GOAL_TEXT[4]}),
        ("POST", f"{path}/status", {"status": "on-hold"}),
        ("POST", f"{path}/status", {"status": "active"}),
        ("POST", f"{path}/status", {"status": "completed", "achievement_status": "achieved"}),
    ]
    for version, (method, route, body) in enumerate(changes, start=1):
        response = await api.send(method, route, own, etag=f'"{version}"', json=body)
        assert response.status_code in (200, 201), response.text
    # Refused changes publish nothing.
    stale = await api.send("PATCH", path, own, etag='"1"', json={"target_date": "2031-01-01"})
    assert stale.status_code == 412

    proposal = await api.create(staff, service_user_id=person, team_id="team-a",
                                description=GOAL_TEXT[3], kind="therapeutic",
                                serves_goal_ids=[goal_id])
    accepted = await api.send("POST", f"/v1/goals/{proposal['id']}/accept", own, etag='"1"')
    assert accepted.status_code == 200
    other = await api.create(staff, service_user_id=person, team_id="team-a",
                             description=GOAL_TEXT[6])
    declined = await api.send("POST", f"/v1/goals/{other['id']}/decline", own, etag='"1"',
                              json={"reason": GOAL_TEXT[5]})
    assert declined.status_code == 200

    await received.wait_for(goal_id, 7)
    await received.wait_for(proposal["id"], 2)
    await received.wait_for(other["id"], 2)
    await asyncio.sleep(0.5)  # anything extra would arrive now
    assert received.types(goal_id) == [
        "recovery.goals.goal.created", "recovery.goals.goal.updated",
        "recovery.goals.goal.updated", "recovery.goals.goal.reviewed",
        "recovery.goals.goal.status-changed", "recovery.goals.goal.status-changed",
        "recovery.goals.goal.completed"]
    assert received.types(proposal["id"]) == ["recovery.goals.goal.proposed",
                                              "recovery.goals.goal.accepted"]
    assert received.types(other["id"]) == ["recovery.goals.goal.proposed",
                                           "recovery.goals.goal.declined"]

    for goal in (goal_id, proposal["id"], other["id"]):
        for number, msg in enumerate(received.by_goal[goal], start=1):
            event = json.loads(msg.data)
            contract.validate(event)
            assert event["specversion"] == "1.0"
            assert event["type"] == msg.subject
            assert event["source"] == "goals"
            assert event["subject"] == goal
            assert event["data"]["version"] == number
            assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event["id"]
            for text in GOAL_TEXT:
                assert text not in msg.data.decode()
    declined_event = json.loads(received.by_goal[other["id"]][1].data)
    assert declined_event["data"]["previous_status"] == "proposed"
    assert declined_event["data"]["lifecycle_status"] == "rejected"


async def test_goals_proposed_and_updated_through_fhir_publish_the_documented_events(
        live: tuple[GoalsApi, Received]) -> None:
    api, received = live
    contract = AsyncApiDocument.load(ASYNCAPI)
    person, staff = unique("su"), api.tokens.clinician("staff-1", ["team-a"])
    created = await api.client.post("/fhir/Goal", headers=api.auth(staff), json={
        "resourceType": "Goal", "lifecycleStatus": "active",
        "description": {"text": GOAL_TEXT[0]}, "subject": {"reference": f"Patient/{person}"}})
    assert created.status_code == 201, created.text
    goal = created.json()
    changed = {**goal, "description": {"text": GOAL_TEXT[3]},
               "target": [{"dueDate": "2031-03-01"}]}
    updated = await api.client.put(f"/fhir/Goal/{goal['id']}", json=changed,
                                   headers=api.auth(staff, 'W/"1"'))
    assert updated.status_code == 200, updated.text
    messages = await received.wait_for(goal["id"], 2)
    await asyncio.sleep(0.5)  # anything extra would arrive now
    assert received.types(goal["id"]) == ["recovery.goals.goal.proposed",
                                          "recovery.goals.goal.updated"]
    events = [json.loads(msg.data) for msg in messages]
    for number, event in enumerate(events, start=1):
        contract.validate(event)
        assert (event["source"], event["subject"]) == ("goals", goal["id"])
        assert event["data"]["version"] == number and event["data"]["changed_by"] == "staff-1"
        assert GOAL_TEXT[0] not in json.dumps(event) and GOAL_TEXT[3] not in json.dumps(event)
    assert events[0]["data"]["lifecycle_status"] == "proposed"
    assert events[1]["data"]["changed_fields"] == ["description", "target_date"]


async def test_a_new_goal_is_on_nats_within_a_second(live: tuple[GoalsApi, Received]) -> None:
    api, received = live
    goal = await api.create(api.tokens.clinician(), service_user_id=unique("su"),
                            team_id="team-a", description="Visit my brother")
    started = time.monotonic()  # from the moment the change is committed and answered
    (msg,) = await received.wait_for(goal["id"], 1, within=1.0)
    assert time.monotonic() - started < 1.0
    assert json.loads(msg.data)["type"] == "recovery.goals.goal.proposed"


def test_every_goal_event_is_documented_and_nothing_else_is() -> None:
    # The document covers every service; the goals part is what its subjects start with.
    documented = {event_type for event_type in AsyncApiDocument.load(ASYNCAPI).event_types
                  if event_type.startswith("recovery.goals.")}
    assert documented == {event.value for event in GoalEvent}


def test_the_contract_check_rejects_goal_text_in_an_event() -> None:
    contract = AsyncApiDocument.load(ASYNCAPI)
    event = {"specversion": "1.0", "id": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e11",
             "source": "goals", "type": "recovery.goals.goal.created", "subject": "g-1",
             "time": "2030-01-01T00:00:00Z", "datacontenttype": "application/json",
             "data": {"goal_id": "g-1", "service_user_id": "su-1", "team_id": "team-a",
                      "kind": "life", "life_area": None, "serves_goal_ids": [],
                      "expressed_by": "service_user", "lifecycle_status": "active",
                      "achievement_status": "in-progress", "target_date": None,
                      "last_reviewed_on": None, "version": 1, "changed_by": "su-1",
                      "occurred_at": "2030-01-01T00:00:00Z"}}
    assert contract.errors(event) == []
    leaking = {**event, "data": {**event["data"], "description": "Swim again"}}
    assert contract.errors(leaking)
    undocumented = {**event, "type": "recovery.goals.goal.deleted"}
    assert contract.errors(undocumented)


@pytest.mark.slow
async def test_goals_written_while_nats_is_down_are_published_once_it_is_back(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        tmp_path: Path) -> None:
    server = NatsServer(store_dir=tmp_path / "nats")
    server.start()
    try:
        settings = make_settings(SERVICE, database_url=database_url,
                                 jwks_file=dev_issuer.jwks_path, nats_url=server.url,
                                 outbox_poll_seconds=0.2)
        async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
            await wait_connected(client)
            api = GoalsApi(client, tokens)
            staff = tokens.clinician()
            before = await api.create(staff, service_user_id=unique("su"), team_id="team-a",
                                      description="Before the outage")
            await asyncio.sleep(0.5)
            server.stop()
            during = [(await api.create(staff, service_user_id=unique("su"),
                                        team_id="team-a", description="During"))["id"]
                      for _ in range(5)]
            await asyncio.sleep(1.0)
            server.start()

            reader = await nats.connect(server.url)
            try:
                js = reader.jetstream()
                subscription = await js.pull_subscribe("recovery.goals.>", stream="GOALS")
                seen: dict[str, int] = defaultdict(int)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not all(seen[g] for g in during):
                    try:
                        batch = await subscription.fetch(50, timeout=1)
                    except nats.errors.TimeoutError:
                        continue
                    for msg in batch:
                        seen[json.loads(msg.data)["subject"]] += 1
                        await msg.ack()
                await asyncio.sleep(1.0)  # a republished batch would show up now
                try:
                    for msg in await subscription.fetch(50, timeout=1):
                        seen[json.loads(msg.data)["subject"]] += 1
                except nats.errors.TimeoutError:
                    pass
            finally:
                await reader.close()
            assert {g: seen[g] for g in during} == dict.fromkeys(during, 1)
            assert seen[before["id"]] == 1
    finally:
        server.stop()
