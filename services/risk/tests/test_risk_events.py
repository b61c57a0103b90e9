"""Risk events on a real NATS server: one per change, as documented, with no clinical words
and no score; refused changes publish nothing."""

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from risk_api import RiskApi, area, unique

from recovery.common.dev_issuer import DevIssuer
from recovery.common.events.asyncapi import AsyncApiDocument
from recovery.common.kit import ServiceKit
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.common.testing.processes import NatsServer
from recovery.risk.events import RiskEvent
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app
from recovery.risk.service import raise_review_due_events

pytestmark = pytest.mark.integration

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
CLINICAL_WORDS = ["A drink at the weekend", "two admissions", "We see it differently",
                  "Walks the dog", "Sister nearby", "Travel alone", "Text sister",
                  "Go for a walk"]


@dataclass
class Received:
    """Risk events seen on NATS, by record id (the CloudEvent subject)."""

    by_record: dict[str, list[Msg]] = field(default_factory=lambda: defaultdict(list))
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        self.by_record[json.loads(msg.data)["subject"]].append(msg)
        self.arrived.set()

    async def wait_for(self, record_id: str, count: int, within: float = 5.0) -> list[Msg]:
        deadline = time.monotonic() + within
        while len(self.by_record[record_id]) < count and time.monotonic() < deadline:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.1)
        return self.by_record[record_id]

    def types(self, record_id: str) -> list[str]:
        return [json.loads(m.data)["type"] for m in self.by_record[record_id]]


@pytest.fixture
async def live(database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
               nats_server: NatsServer) -> AsyncIterator[tuple[RiskApi, Received]]:
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, nats_url=nats_server.url)
    received = Received()
    listener = await nats.connect(nats_server.url)
    await listener.subscribe("recovery.risk.>", cb=received.on_message)
    try:
        async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
            await asyncio.wait_for(client.app.state.kit.bus.ready.wait(),  # type: ignore[attr-defined]
                                   15)
            yield RiskApi(client, tokens), received
    finally:
        await listener.drain()


def kit_of(client: httpx.AsyncClient) -> ServiceKit:
    kit: ServiceKit = client.app.state.kit  # type: ignore[attr-defined]
    return kit


async def test_each_change_publishes_exactly_one_documented_event_without_clinical_words(
        live: tuple[RiskApi, Received]) -> None:
    api, received = live
    contract = AsyncApiDocument.load(ASYNCAPI)
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    mine = api.tokens.service_user(person)
    drafted = await api.draft(clinician, service_user_id=person, team_id=team,
                              review_date=(date.today() - timedelta(days=1)).isoformat(),
                              safety_plan={"i_will": [{"what": "Go for a walk"}]}, areas=[
        area("substances", person="A drink at the weekend is fine",
             clinician="It led to two admissions", agree=False,
             difference="We see it differently")])
    record = drafted["id"]
    assert (await api.sign(mine, drafted)).status_code == 201
    assert (await api.sign(clinician, drafted)).status_code == 201
    decided = await api.send(
        "POST", f"/v1/risk-assessments/{record}/positive-risk-decisions", clinician,
        etag='"1"', json={"goal_id": "goal-7", "decision": "Travel alone",
                          "safeguards": ["Text sister"], "review_date": "2031-01-01"})
    assert decided.status_code == 201, decided.text
    withdrawn = await api.send("POST", f"/v1/risk-assessments/{record}/withdraw-agreement",
                               mine, etag='"2"')
    assert withdrawn.status_code == 200, withdrawn.text
    assert await raise_review_due_events(kit_of(api.client)) >= 1
    assert await raise_review_due_events(kit_of(api.client)) == 0  # once per review date
    # Refused changes publish nothing.
    stale = await api.send("PATCH", f"/v1/risk-assessments/{record}", clinician, etag='"1"',
                           json={"review_date": "2031-01-01"})
    assert stale.status_code == 412
    scored = await api.send("PATCH", f"/v1/risk-assessments/{record}", clinician, etag='"2"',
                            json={"risk_level": "high"})
    assert scored.status_code == 422

    marked = await api.send("POST", f"/v1/risk-assessments/{record}/entered-in-error",
                            clinician, etag='"2"', json={"reason": "duplicate"})
    assert marked.status_code == 200, marked.text
    await received.wait_for(record, 8)
    await asyncio.sleep(0.5)  # anything extra would arrive now
    assert received.types(record) == [
        RiskEvent.drafted, RiskEvent.signed, RiskEvent.agreed_with_differences,
        RiskEvent.drafted, RiskEvent.decision_recorded, RiskEvent.agreement_withdrawn,
        RiskEvent.review_due, RiskEvent.entered_in_error]
    assert json.loads(received.by_record[record][-1].data)["data"][
        "entered_in_error_reason"] == "duplicate"
    for msg in received.by_record[record]:
        event = json.loads(msg.data)
        contract.validate(event)
        assert event["type"] == msg.subject and event["source"] == "risk"
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event["id"]
        for words in CLINICAL_WORDS:
            assert words not in msg.data.decode()
    agreed = json.loads(received.by_record[record][2].data)["data"]
    assert agreed["differing_areas"] == ["substances"] and agreed["active_version"] == 1
    assert agreed["party"] == "clinician"
    decision = json.loads(received.by_record[record][4].data)["data"]
    assert decision["goal_id"] == "goal-7" and decision["version"] == 2


def test_every_risk_event_is_documented_and_nothing_else_is() -> None:
    documented = {t for t in AsyncApiDocument.load(ASYNCAPI).event_types
                  if t.startswith("recovery.risk.")}
    assert documented == {event.value for event in RiskEvent}


def test_the_contract_refuses_a_score_in_an_event() -> None:
    contract = AsyncApiDocument.load(ASYNCAPI)
    event = {"specversion": "1.0", "id": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e11",
             "source": "risk", "type": "recovery.risk.assessment.agreed", "subject": "a-1",
             "time": "2030-01-01T00:00:00Z", "datacontenttype": "application/json",
             "data": {"assessment_id": "8c3c1e0e-5a4f-4f7e-9a55-1d2b9b0f5e11",
                      "service_user_id": "su-1", "team_id": "t", "status": "agreed",
                      "version": 1, "active_version": 1, "areas": [], "differing_areas": [],
                      "review_date": None, "changed_by": "c", "occurred_at":
                      "2030-01-01T00:00:00Z", "party": "clinician", "risk_level": "high"}}
    assert any("risk_level" in problem for problem in contract.errors(event))
    del event["data"]["risk_level"]  # type: ignore[attr-defined]
    assert contract.errors(event) == []
