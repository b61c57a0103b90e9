"""Workforce events on a real NATS server: staff joined, moved and left as documented and
without names or lived experience; training's events consumed once each, in any order, and
caught up after the service was down."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from sqlmodel import col, func, select
from workforce_api import WorkforceApi, auth, training_event, unique

from recovery.common.dev_issuer import DevIssuer
from recovery.common.events import CloudEvent, ProcessedEvent
from recovery.common.events.asyncapi import AsyncApiDocument
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.common.testing.processes import NatsServer
from recovery.workforce.events import StaffEvent
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app

pytestmark = pytest.mark.integration

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
NAME = "Ada Lovelace-Byron"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def workforce(database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
                    server: NatsServer) -> AsyncIterator[WorkforceApi]:
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, nats_url=server.url,
                             consumer_backoff_seconds=[0.2])
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        await asyncio.wait_for(client.app.state.kit.bus.ready.wait(), 15)  # type: ignore[attr-defined]
        yield WorkforceApi(client, tokens)


async def publish_as_training(server: NatsServer, *events: CloudEvent,
                              msg_ids: list[str] | None = None) -> None:
    """Publish as the training service does: its stream, Nats-Msg-Id = event id."""
    connection = await nats.connect(server.url)
    try:
        js = connection.jetstream()
        with contextlib.suppress(Exception):
            await js.add_stream(name="TRAINING", subjects=["recovery.training.>"])
        for index, event in enumerate(events):
            msg_id = msg_ids[index] if msg_ids else event.id
            await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": msg_id})
    finally:
        await connection.close()


async def coverage(api: WorkforceApi, team: str) -> tuple[int, int]:
    readiness = await api.get(f"/v1/teams/{team}/readiness", api.manager(team))
    records = readiness["factors"][0]["records"]
    return records["completed_foundation"], records["staff_in_post"]


async def test_staff_changes_publish_one_documented_event_each_without_names_or_declarations(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        own_nats_server: NatsServer) -> None:
    contract = AsyncApiDocument.load(ASYNCAPI)
    received: list[Msg] = []
    listener = await nats.connect(own_nats_server.url)

    async def on_message(msg: Msg) -> None:
        received.append(msg)

    await listener.subscribe("recovery.workforce.>", cb=on_message)
    try:
        async with workforce(database_url, dev_issuer, tokens, own_nats_server) as api:
            team_a, team_b = await api.team("team-a"), await api.team("team-b")
            manager = api.manager(team_a, team_b)
            staff_id = unique("staff")
            created = await api.client.post("/v1/staff", headers=auth(manager), json={
                "id": staff_id, "team_id": team_a, "display_name": NAME,
                "profession": "peer_support", "grade": "band-4",
                "role_type": "peer_specialist", "fte": 0.6, "start_date": "2025-03-01"})
            assert created.status_code == 201, created.text
            own = tokens.peer_specialist(staff_id, [team_a])
            declared = await api.client.put(f"/v1/staff/{staff_id}/lived-experience",
                                            json={"declared": True}, headers=auth(own))
            assert declared.status_code == 200
            moved = await api.client.post(f"/v1/staff/{staff_id}/move",
                                          headers=auth(manager, '"1"'),
                                          json={"team_id": team_b,
                                                "effective_date": "2026-01-05"})
            assert moved.status_code == 200, moved.text
            stale = await api.client.post(f"/v1/staff/{staff_id}/leave",
                                          headers=auth(manager, '"1"'),
                                          json={"end_date": "2026-02-01"})
            assert stale.status_code == 412  # refused changes publish nothing
            left = await api.client.post(f"/v1/staff/{staff_id}/leave",
                                         headers=auth(manager, '"2"'),
                                         json={"end_date": "2026-02-01"})
            assert left.status_code == 200, left.text

            async def all_three() -> bool:
                return len(received) >= 3

            await eventually(all_three)
            await asyncio.sleep(0.5)  # anything extra would arrive now
    finally:
        await listener.drain()
    events = [json.loads(msg.data) for msg in received]
    assert [e["type"] for e in events] == [StaffEvent.joined, StaffEvent.moved, StaffEvent.left]
    for msg, event in zip(received, events, strict=True):
        contract.validate(event)
        assert event["source"] == "workforce" and event["subject"] == staff_id
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event["id"]
        assert NAME not in msg.data.decode()
        assert "lived" not in msg.data.decode() and "declared" not in msg.data.decode()
    joined, moved_event, left_event = (e["data"] for e in events)
    assert joined == {"staff_id": staff_id, "team_id": "team-a", "profession": "peer_support",
                      "grade": "band-4", "role_type": "peer_specialist",
                      "effective_date": "2025-03-01", "version": 1}
    assert moved_event["previous_team_id"] == "team-a" and moved_event["team_id"] == "team-b"
    assert moved_event["effective_date"] == "2026-01-05" and moved_event["version"] == 2
    assert left_event["team_id"] == "team-b" and left_event["version"] == 3
    assert left_event["effective_date"] == "2026-02-01"


def test_every_workforce_event_is_documented_and_nothing_else_is() -> None:
    documented = {event_type for event_type in AsyncApiDocument.load(ASYNCAPI).event_types
                  if event_type.startswith("recovery.workforce.")}
    assert documented == {event.value for event in StaffEvent}


def test_the_contract_check_rejects_a_name_or_declaration_in_a_staff_event() -> None:
    contract = AsyncApiDocument.load(ASYNCAPI)
    event: dict[str, Any] = {
        "specversion": "1.0", "id": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e11",
        "source": "workforce", "type": "recovery.workforce.staff.joined", "subject": "s-1",
        "time": "2030-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": {"staff_id": "s-1", "team_id": "team-a", "profession": "nursing",
                 "grade": "band-5", "role_type": "professional",
                 "effective_date": "2030-01-01", "version": 1}}
    assert contract.errors(event) == []
    for leak in ({"display_name": NAME}, {"lived_experience": True}):
        assert contract.errors({**event, "data": {**event["data"], **leak}})


async def test_training_events_on_nats_move_coverage_once_in_any_order(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        own_nats_server: NatsServer) -> None:
    async with workforce(database_url, dev_issuer, tokens, own_nats_server) as api:
        team = await api.team()
        person, other = await api.staff(team), await api.staff(team)
        done = date.today().isoformat()
        completed = training_event("course.completed", staff_id=person["id"], team_id=team,
                                   version=2, completed_on=done)
        rated = training_event("feedback.recorded", staff_id=person["id"], team_id=team,
                               version=3, rating=4)
        enrolled = training_event("enrolment.created", staff_id=person["id"], team_id=team,
                                  version=1)
        contract = AsyncApiDocument.load(ASYNCAPI)
        for event in (completed, rated, enrolled):
            contract.validate(event.model_dump(mode="json"))  # as training publishes them
        # Out of order, and the completion again under another message id (past JetStream's
        # duplicate window, as a replay would be).
        await publish_as_training(own_nats_server, rated, completed, enrolled)
        await publish_as_training(own_nats_server, completed, msg_ids=["replayed-1"])

        async def covered() -> bool:
            return await coverage(api, team) == (1, 2)

        await eventually(covered)
        kit = api.client.app.state.kit  # type: ignore[attr-defined]

        async def all_handled() -> bool:
            async with kit.sessions() as session:
                count = (await session.exec(select(func.count()).where(
                    col(ProcessedEvent.consumer) == "workforce-training-facts"))).one()
            return int(count) == 3

        await eventually(all_handled)
        training = (await api.get(f"/v1/teams/{team}/readiness",
                                  api.manager(team)))["factors"][0]
        assert training["records"]["mean_rating"] == 4.0
        assert training["records"]["feedback_ratings"] == 1
        assert other["id"] not in json.dumps(training)


async def test_a_workforce_service_that_was_down_catches_up_on_training_events(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        own_nats_server: NatsServer) -> None:
    async with workforce(database_url, dev_issuer, tokens, own_nats_server) as api:
        team = await api.team()
        person = await api.staff(team)
        # Let the durable consumer come into being before the service goes down.
        await publish_as_training(own_nats_server, training_event(
            "enrolment.created", staff_id=person["id"], team_id=team, version=1))

        async def consumed() -> bool:
            kit = api.client.app.state.kit  # type: ignore[attr-defined]
            async with kit.sessions() as session:
                count = (await session.exec(select(func.count()).select_from(
                    ProcessedEvent))).one()
            return int(count) == 1

        await eventually(consumed)
    await publish_as_training(own_nats_server, training_event(
        "course.completed", staff_id=person["id"], team_id=team, version=2,
        completed_on=date.today().isoformat()))
    async with workforce(database_url, dev_issuer, tokens, own_nats_server) as api:
        async def covered() -> bool:
            return await coverage(api, team) == (1, 1)

        await eventually(covered)
