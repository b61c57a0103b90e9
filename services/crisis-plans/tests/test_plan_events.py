"""Crisis-plan events on a real NATS server: one per change, as documented, without plan text."""

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from plans_api import PLAN_CONTENT, SHARED_DECISION, PlansApi, unique

from recovery.common.dev_issuer import DevIssuer
from recovery.common.events.asyncapi import AsyncApiDocument
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.common.testing.processes import NatsServer
from recovery.common.timeutil import utcnow
from recovery.crisis_plans.events import PlanEvent
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app
from recovery.crisis_plans.service import announce_due_reviews

pytestmark = pytest.mark.integration

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
BREAK_GLASS_REASON = "Brought in by ambulance from the bridge"
PLAN_TEXT = [*PLAN_CONTENT["early_warning_signs"], *PLAN_CONTENT["triggers"], "Ana",
             "Haloperidol", "Loud arguments", BREAK_GLASS_REASON]


@dataclass
class Received:
    """Crisis-plan events seen on NATS, by plan id (the CloudEvent subject)."""

    by_plan: dict[str, list[Msg]] = field(default_factory=lambda: defaultdict(list))
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        self.by_plan[json.loads(msg.data)["subject"]].append(msg)
        self.arrived.set()

    async def wait_for(self, plan_id: str, count: int, within: float = 5.0) -> list[Msg]:
        deadline = time.monotonic() + within
        while len(self.by_plan[plan_id]) < count and time.monotonic() < deadline:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.1)
        return self.by_plan[plan_id]

    def types(self, plan_id: str) -> list[str]:
        return [json.loads(m.data)["type"] for m in self.by_plan[plan_id]]


@pytest.fixture
async def live(database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
               nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch,
               ) -> AsyncIterator[tuple[PlansApi, Received]]:
    # The tests run the review sweep themselves: the app's own sweep at start-up could
    # otherwise announce a plan drafted a moment after it began, before the test's round.
    monkeypatch.setenv("RECOVERY_CRISIS_REVIEW_SWEEP_SECONDS", "0")
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, nats_url=nats_server.url)
    received = Received()
    listener = await nats.connect(nats_server.url)
    await listener.subscribe("recovery.crisis-plans.>", cb=received.on_message)
    try:
        async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
            app = client.app  # type: ignore[attr-defined]
            await asyncio.wait_for(app.state.kit.bus.ready.wait(), 15)
            yield PlansApi(client, tokens), received
    finally:
        await listener.drain()


async def test_each_change_publishes_exactly_the_documented_events_without_plan_text(
        live: tuple[PlansApi, Received]) -> None:
    api, received = live
    contract = AsyncApiDocument.load(ASYNCAPI)
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)  # created, signed, signed + agreed
    edited = await api.edit(own, plan["id"], '"1"',
                            **{**PLAN_CONTENT, "triggers": ["Loud arguments"]})
    assert edited.status_code == 200
    stale = await api.edit(own, plan["id"], '"1"', **PLAN_CONTENT)
    assert stale.status_code == 412  # refused changes publish nothing
    responder = api.tokens.clinician("crisis-1", ["crisis-team"])
    glass = await api.client.post(f"/v1/people/{person}/crisis-plan:break-glass",
                                  json={"reason": BREAK_GLASS_REASON},
                                  headers=api.auth(responder))
    assert glass.status_code == 200, glass.text
    withdrawn = await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                      headers=api.auth(own, '"2"'))
    assert withdrawn.status_code == 200, withdrawn.text

    await received.wait_for(plan["id"], 7)
    await asyncio.sleep(0.5)  # anything extra would arrive now
    assert received.types(plan["id"]) == [
        PlanEvent.created, PlanEvent.version_signed, PlanEvent.version_signed,
        PlanEvent.agreed, PlanEvent.version_drafted, PlanEvent.break_glass,
        PlanEvent.agreement_withdrawn]
    events = [json.loads(m.data) for m in received.by_plan[plan["id"]]]
    for msg, event in zip(received.by_plan[plan["id"]], events, strict=True):
        contract.validate(event)
        assert event["source"] == "crisis-plans" and event["subject"] == plan["id"]
        assert event["type"] == msg.subject
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event["id"]
        for text in PLAN_TEXT:
            assert text not in msg.data.decode()
    assert [e["data"].get("party") for e in events[1:3]] == ["service_user", "care_coordinator"]
    assert events[3]["data"]["active_version"] == 1
    assert events[4]["data"]["version"] == 2 and events[4]["data"]["active_version"] == 1
    assert events[5]["data"]["changed_by"] == "crisis-1"
    assert events[5]["data"]["access_id"] == glass.json()["access_id"]
    assert events[6]["data"]["version"] == 1 and events[6]["data"]["status"] == "withdrawn"


async def test_a_review_falling_due_is_announced_once(
        live: tuple[PlansApi, Received]) -> None:
    api, received = live
    today = utcnow().date()
    plan = await api.draft(api.tokens.clinician(), unique("su"),
                           **{**PLAN_CONTENT, "review_on": today.isoformat()})
    later = await api.draft(api.tokens.clinician(), unique("su"),
                            **{**PLAN_CONTENT,
                               "review_on": (today + timedelta(days=5)).isoformat()})
    sessions = api.client.app.state.kit.sessions  # type: ignore[attr-defined]
    assert await announce_due_reviews(sessions, today) >= 1
    assert await announce_due_reviews(sessions, today) == 0
    await received.wait_for(plan["id"], 2)
    await asyncio.sleep(0.3)
    assert received.types(plan["id"]) == [PlanEvent.created, PlanEvent.review_due]
    assert received.types(later["id"]) == [PlanEvent.created]
    AsyncApiDocument.load(ASYNCAPI).validate(json.loads(received.by_plan[plan["id"]][1].data))


async def test_a_plan_marked_in_error_is_announced_as_documented_with_no_active_version(
        live: tuple[PlansApi, Received]) -> None:
    api, received = live
    person = unique("su")
    staff = api.tokens.clinician("staff-3")
    plan = await api.agreed(staff, person, api.tokens.service_user(person))
    refused = await api.mark_in_error(api.tokens.service_user(person), plan["id"], '"1"')
    assert refused.status_code == 403  # publishes nothing
    marked = await api.mark_in_error(staff, plan["id"], '"1"', reason="wrong-person")
    assert marked.status_code == 200, marked.text
    await received.wait_for(plan["id"], 5)
    await asyncio.sleep(0.3)
    assert received.types(plan["id"])[3:] == [PlanEvent.agreed, PlanEvent.entered_in_error]
    msg = received.by_plan[plan["id"]][-1]
    event = json.loads(msg.data)
    AsyncApiDocument.load(ASYNCAPI).validate(event)
    assert event["type"] == msg.subject == "recovery.crisis-plans.plan.entered-in-error"
    assert event["data"]["status"] == "entered-in-error"
    assert event["data"]["entered_in_error_reason"] == "wrong-person"
    assert event["data"]["active_version"] is None and event["data"]["changed_by"] == "staff-3"
    for text in PLAN_TEXT:
        assert text not in msg.data.decode()


async def test_shared_decisions_and_their_reviews_are_announced_without_their_words(
        live: tuple[PlansApi, Received]) -> None:
    api, received = live
    person = unique("su")
    staff, own = api.tokens.clinician("staff-4"), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    path = f"/v1/crisis-plans/{plan['id']}/medication-decisions"
    words = {"question": "Should I try a lower dose of Sertraline?",
             "options_considered": [{"option": "Stay at 100mg"}, {"option": "Try 50mg"}],
             "what_matters_to_me": "Feeling less flat when I see my grandchildren",
             "clinician_information": "Lowering slowly over a month is usually comfortable",
             "decision_in_my_words": "I try 50mg through the spring",
             "one_thing_i_will_do": "Tell my sister how I feel each Sunday",
             "review_on": "2031-04-01"}
    first = await api.client.post(path, json=words, headers=api.auth(own))
    assert first.status_code == 201, first.text
    review = await api.client.post(path, headers=api.auth(staff), json={
        **words, "review_on": "2031-09-01", "revisits": first.json()["id"],
        "how_it_went_in_my_words": "Sundays with my sister kept me going"})
    assert review.status_code == 201, review.text
    refused = await api.client.post(path, headers=api.auth(own), json={
        **words, "revisits": first.json()["id"], "how_it_went_in_my_words": "Again"})
    assert refused.status_code == 409  # publishes nothing
    await received.wait_for(plan["id"], 3)
    await asyncio.sleep(0.3)
    assert received.types(plan["id"]) == [PlanEvent.created, PlanEvent.decision_recorded,
                                          PlanEvent.decision_recorded]
    contract = AsyncApiDocument.load(ASYNCAPI)
    recorded = [json.loads(m.data) for m in received.by_plan[plan["id"]][1:]]
    for event, made, revisits in ((recorded[0], first.json(), None),
                                  (recorded[1], review.json(), first.json()["id"])):
        contract.validate(event)
        assert event["data"]["decision_id"] == made["id"]
        assert event["data"]["revisits"] == revisits
        assert event["data"]["review_on"] == made["review_on"]
    raw = b"".join(m.data for m in received.by_plan[plan["id"]]).decode()
    for text in [*(v for v in words.values() if isinstance(v, str) and not v[0].isdigit()),
                 "Sundays with my sister", "Stay at 100mg"]:
        assert text not in raw


def test_every_crisis_plan_event_is_documented_and_nothing_else_is() -> None:
    documented = {t for t in AsyncApiDocument.load(ASYNCAPI).event_types
                  if t.startswith("recovery.crisis-plans.")}
    assert documented == {event.value for event in PlanEvent}


def test_the_contract_check_rejects_plan_text_in_an_event() -> None:
    contract = AsyncApiDocument.load(ASYNCAPI)
    event: dict[str, Any] = {
             "specversion": "1.0", "id": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e11",
             "source": "crisis-plans", "type": "recovery.crisis-plans.plan.agreed",
             "subject": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e12",
             "time": "2030-01-01T00:00:00Z", "datacontenttype": "application/json",
             "data": {"plan_id": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e12",
                      "service_user_id": "su-1", "team_id": "team-a", "status": "agreed",
                      "version": 1, "newest_version": 1, "active_version": 1,
                      "review_on": None, "not_individualised": False, "changed_by": "su-1",
                      "occurred_at": "2030-01-01T00:00:00Z"}}
    assert contract.errors(event) == []
    leaking = {**event, "data": {**event["data"], "reason": "Found on the bridge"}}
    assert contract.errors(leaking)
    assert contract.errors({**event, "type": "recovery.crisis-plans.plan.deleted"})


async def test_an_agreed_plan_is_on_nats_within_a_second(
        live: tuple[PlansApi, Received]) -> None:
    api, received = live
    person = unique("su")
    plan = await api.agreed(api.tokens.clinician(), person, api.tokens.service_user(person))
    started = time.monotonic()
    await received.wait_for(plan["id"], 4, within=1.0)
    assert time.monotonic() - started < 1.0
    assert received.types(plan["id"])[-1] == PlanEvent.agreed


async def test_break_glass_event_and_audit_hold_no_reason(
        live: tuple[PlansApi, Received], tokens: TokenFactory) -> None:
    api, received = live
    person = unique("su")
    plan = await api.agreed(api.tokens.clinician(), person, api.tokens.service_user(person))
    response = await api.client.post(
        f"/v1/people/{person}/crisis-plan:break-glass", json={"reason": BREAK_GLASS_REASON},
        headers=api.auth(tokens.clinician("crisis-2", ["crisis-team"])))
    assert response.status_code == 200
    msgs = await received.wait_for(plan["id"], 5)
    assert received.types(plan["id"])[-1] == PlanEvent.break_glass
    assert BREAK_GLASS_REASON not in msgs[-1].data.decode()


async def test_nothing_but_the_plan_is_published_to_the_stream(
        live: tuple[PlansApi, Received], nats_server: NatsServer) -> None:
    api, _ = live
    await api.draft(api.tokens.clinician(), unique("su"))
    reader = await nats.connect(nats_server.url)
    try:
        info = await reader.jetstream().stream_info("CRISIS_PLANS")
        assert info.config.subjects is not None
        assert any(s.startswith("recovery.crisis-plans.") for s in info.config.subjects)
    finally:
        await reader.close()



async def test_a_shared_decision_falling_due_for_review_is_announced_once(
        live: tuple[PlansApi, Received]) -> None:
    api, received = live
    today = utcnow().date()
    staff = api.tokens.clinician()
    later = {**PLAN_CONTENT, "review_on": (today + timedelta(days=90)).isoformat()}
    plan, mistaken = await api.draft(staff, unique("su"), **later), await api.draft(
        staff, unique("su"), **later)

    async def decision(on: dict[str, Any], review_on: Any, **extra: Any) -> dict[str, Any]:
        made = await api.client.post(
            f"/v1/crisis-plans/{on['id']}/medication-decisions", headers=api.auth(staff),
            json={**SHARED_DECISION, "review_on": review_on.isoformat(), **extra})
        assert made.status_code == 201, made.text
        body: dict[str, Any] = made.json()
        return body

    due = await decision(plan, today - timedelta(days=3))
    revisited = await decision(plan, today - timedelta(days=20))
    await decision(plan, today + timedelta(days=30), revisits=revisited["id"],
                   how_it_went_in_my_words="Steadier than I feared")
    await decision(mistaken, today - timedelta(days=1))
    assert (await api.mark_in_error(staff, mistaken["id"], '"1"')).status_code == 200
    sessions = api.client.app.state.kit.sessions  # type: ignore[attr-defined]
    assert await announce_due_reviews(sessions, today) == 1  # not the revisited one
    assert await announce_due_reviews(sessions, today) == 0
    await received.wait_for(plan["id"], 5)
    await asyncio.sleep(0.3)
    assert received.types(plan["id"]) == [PlanEvent.created, *[PlanEvent.decision_recorded] * 3,
                                          PlanEvent.decision_review_due]
    assert PlanEvent.decision_review_due not in received.types(mistaken["id"])
    announced = json.loads(received.by_plan[plan["id"]][-1].data)
    AsyncApiDocument.load(ASYNCAPI).validate(announced)
    assert announced["data"]["decision_id"] == due["id"]
    assert announced["data"]["review_on"] == due["review_on"]
