"""Training on a real NATS server: the events it publishes, as documented and without
feedback words; and the staff roster kept from workforce's events, idempotent, safe against
late and out-of-order deliveries, and caught up after the service was down."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from sqlmodel import col, func, select
from training_api import FOUNDATION, TrainingApi, unique

from recovery.common.dev_issuer import DevIssuer
from recovery.common.events import CloudEvent, ProcessedEvent
from recovery.common.events.asyncapi import AsyncApiDocument
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.common.testing.processes import NatsServer
from recovery.training.events import TrainingEvent, WorkforceEvent
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app
from recovery.training.main import handlers as training_handlers

pytestmark = pytest.mark.integration

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
WORDS = "The peer trainer's story gave me hope"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


def staff_event(verb: str, staff_id: str, team_id: str, version: int,
                **data: Any) -> CloudEvent:
    return CloudEvent(source="workforce", type=f"recovery.workforce.staff.{verb}",
                      subject=staff_id, data={
                          "staff_id": staff_id, "team_id": team_id,
                          "profession": "peer_support", "grade": "band-4",
                          "role_type": "peer_specialist", "effective_date": "2030-01-06",
                          "version": version, **data})


class Workforce:
    """Publishes staff events into the WORKFORCE stream as the workforce service does."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def publish(self, event: CloudEvent, msg_id: str | None = None) -> None:
        await self.js.publish(event.type, event.to_json(),
                              headers={"Nats-Msg-Id": msg_id or event.id})


@pytest.fixture
async def workforce(own_nats_server: NatsServer) -> AsyncIterator[Workforce]:
    connection = await nats.connect(own_nats_server.url)
    js = connection.jetstream()
    await js.add_stream(name="WORKFORCE", subjects=["recovery.workforce.>"])
    try:
        yield Workforce(js)
    finally:
        await connection.drain()


def live(database_url: str, dev_issuer: DevIssuer, nats_url: str) -> Any:
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, nats_url=nats_url,
                             consumer_backoff_seconds=[0.2])
    return running_service(create_app, settings, MIGRATIONS_DIR)


async def foundation_enrolments(api: TrainingApi, staff_id: str) -> list[dict[str, Any]]:
    page = await api.ok("GET", "/v1/enrolments", api.tokens.admin(),
                        params={"learner_id": staff_id, "course_id": FOUNDATION})
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_each_change_publishes_one_documented_event_without_feedback_words(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        nats_server: NatsServer) -> None:
    contract = AsyncApiDocument.load(ASYNCAPI)
    received: list[Msg] = []
    listener = await nats.connect(nats_server.url)

    async def keep(message: Msg) -> None:
        received.append(message)
    await listener.subscribe("recovery.training.>", cb=keep)
    try:
        async with live(database_url, dev_issuer, nats_server.url) as client:
            await asyncio.wait_for(client.app.state.kit.bus.ready.wait(), 15)
            api = TrainingApi(client, tokens)
            sub = unique("staff")
            learner = tokens.peer_specialist(sub)
            enrolment = await api.enrol(await api.run(await api.course()), learner)
            await api.complete(enrolment["id"])
            await api.ok("POST", f"/v1/enrolments/{enrolment['id']}/feedback", learner,
                         json={"rating": 5, "words": WORDS})
            refused = await api.send("POST", f"/v1/enrolments/{enrolment['id']}/feedback",
                                     learner, json={"rating": 1, "words": WORDS})
            assert refused.status_code == 409
            other = await api.enrol(await api.run(await api.course()),
                                    tokens.clinician(unique("staff")))
            await api.ok("POST", f"/v1/enrolments/{other['id']}/withdrawal", api.college)

            async def all_arrived() -> bool:
                return len(received) >= 5
            await eventually(all_arrived)
            await asyncio.sleep(0.3)  # nothing more follows
    finally:
        await listener.drain()
    events = [json.loads(m.data) for m in received]
    assert [e["type"] for e in events] == [
        "recovery.training.enrolment.created", "recovery.training.course.completed",
        "recovery.training.feedback.recorded", "recovery.training.enrolment.created",
        "recovery.training.enrolment.withdrawn"]
    for message, event in zip(received, events, strict=True):
        contract.validate(event)
        assert message.subject == event["type"] and event["source"] == "training"
        assert WORDS not in message.data.decode()
    feedback = events[2]["data"]
    assert (feedback["rating"], feedback["staff_id"], feedback["foundation"]) == (5, sub, False)
    assert events[1]["data"]["completed_on"] == "2030-03-02"


async def test_a_new_member_of_staff_is_enrolled_in_the_foundation_course_within_seconds(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        own_nats_server: NatsServer, workforce: Workforce) -> None:
    async with live(database_url, dev_issuer, own_nats_server.url) as client:
        api = TrainingApi(client, tokens)
        sub = unique("peer")
        joined = staff_event("joined", sub, "team-a", 1)
        await workforce.publish(joined)

        async def enrolled() -> bool:
            return len(await foundation_enrolments(api, sub)) == 1
        await eventually(enrolled)
        # The same event again (redelivered past JetStream's dedupe), and an older one: nothing.
        await workforce.publish(joined, msg_id=unique("again"))
        await workforce.publish(staff_event("moved", sub, "team-b", 2,
                                            previous_team_id="team-a"))
        await workforce.publish(staff_event("joined", sub, "team-c", 1))

        async def moved() -> bool:
            items = await foundation_enrolments(api, sub)
            return bool(items) and items[0]["team_id"] == "team-b"
        await eventually(moved)
        await asyncio.sleep(0.5)
        items = await foundation_enrolments(api, sub)
        assert len(items) == 1 and items[0]["team_id"] == "team-b"
        assert items[0]["automatic"] is True
        member = await api.ok("GET", f"/v1/staff/{sub}", tokens.admin())
        assert member["team_id"] == "team-b" and member["role_type"] == "peer_specialist"


async def test_a_consumer_that_was_down_catches_up_and_a_leaver_is_withdrawn(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
        own_nats_server: NatsServer, workforce: Workforce) -> None:
    first, second = unique("staff"), unique("staff")
    async with live(database_url, dev_issuer, own_nats_server.url) as client:
        api = TrainingApi(client, tokens)
        await workforce.publish(staff_event("joined", first, "team-a", 1))

        async def enrolled() -> bool:
            return len(await foundation_enrolments(api, first)) == 1
        await eventually(enrolled)
    # While training is down, workforce carries on.
    await workforce.publish(staff_event("joined", second, "team-a", 1))
    await workforce.publish(staff_event("left", first, "team-a", 3))
    # Out of order: the move before the leaving arrives after it, and changes nothing.
    await workforce.publish(staff_event("moved", first, "team-b", 2, previous_team_id="team-a"))
    async with live(database_url, dev_issuer, own_nats_server.url) as client:
        api = TrainingApi(client, tokens)

        async def caught_up() -> bool:
            mine = await foundation_enrolments(api, first)
            return (len(await foundation_enrolments(api, second)) == 1
                    and mine[0]["status"] == "withdrawn")
        await eventually(caught_up)
        kit = client.app.state.kit

        async def all_handled() -> bool:  # the late move too, not merely not yet seen
            async with kit.sessions() as session:
                count = (await session.exec(select(func.count()).where(
                    col(ProcessedEvent.consumer) == "training-staff-roster"))).one()
            return int(count) == 4
        await eventually(all_handled)
        member = await api.ok("GET", f"/v1/staff/{first}", tokens.admin())
        assert member["active"] is False and member["team_id"] == "team-a"
        [mine] = await foundation_enrolments(api, first)
        assert (mine["status"], mine["team_id"]) == ("withdrawn", "team-a")


def test_the_training_part_of_the_asyncapi_document_is_exactly_what_the_service_publishes(
) -> None:
    documented = {event_type for event_type in AsyncApiDocument.load(ASYNCAPI).event_types
                  if event_type.startswith("recovery.training.")}
    assert documented == {event.value for event in TrainingEvent}


def test_the_roster_consumer_listens_to_every_staff_event_workforce_documents() -> None:
    documented = {event_type for event_type in AsyncApiDocument.load(ASYNCAPI).event_types
                  if event_type.startswith("recovery.workforce.staff.")}
    [handler] = training_handlers()
    assert set(handler.subjects) == documented == {event.value for event in WorkforceEvent}
    assert handler.stream == "WORKFORCE"
