"""Subscriptions over graphql-transport-ws, fed from a real NATS server: the person sees
their crisis plan agreed; another person is refused; staff of another team, who may
subscribe as staff, receive nothing about a person outside their teams; a team's readiness
follows a new member of staff; a subscription is held to the limits a query is."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.common.testing.processes import NatsServer
from recovery.gateway.testing import Platform, running_platform, serving

pytestmark = pytest.mark.integration

PERSON, OTHER = "person-sub-1", "person-sub-2"
PLAN: dict[str, Any] = {
    "when_well": ["I garden and see my friends on Sundays"],
    "early_warning_signs": ["Not sleeping"],
    "participants": [{"role": "service_user"}, {"role": "care_coordinator", "id": "staff-1"}],
}
PLAN_CHANGES = """subscription ($id: ID!) { crisisPlanChanged(serviceUserId: $id) {
  eventType plan { id serviceUserId version agreedAt } } }"""
READINESS_CHANGES = """subscription ($id: ID!) { teamReadinessChanged(teamId: $id) {
  eventType readiness { weakestFactor factors { name } } } }"""


class Subscriber:
    """One graphql-transport-ws connection carrying one subscription."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    async def next(self, within: float = 10.0) -> dict[str, Any]:
        """The next message other than keep-alive pings."""
        while True:
            message: dict[str, Any] = json.loads(
                await asyncio.wait_for(self.socket.recv(), within))
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def nothing_within(self, seconds: float) -> bool:
        try:
            message = await self.next(within=seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"expected nothing, got {message}")


@asynccontextmanager
async def subscribed(address: str, token: str, query: str,
                     variables: dict[str, Any]) -> AsyncIterator[Subscriber]:
    async with websockets.connect(f"ws://{address}/graphql",
                                  subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        subscriber = Subscriber(socket)
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {token}"}}))
        assert (await subscriber.next())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": query, "variables": variables}}))
        yield subscriber


@pytest.fixture
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory, nats_server: NatsServer,
                   tmp_path: Path) -> AsyncIterator[tuple[Platform, str]]:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                nats_url=nats_server.url) as p:
        app = p.gateway.app  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not app.state.feed.connected:
            assert time.monotonic() < deadline, "the gateway did not connect to NATS"
            await asyncio.sleep(0.05)
        async with serving(app) as address:
            yield p, address


async def test_the_person_receives_their_crisis_plan_agreed_and_outsiders_do_not(
        platform: tuple[Platform, str]) -> None:
    p, address = platform
    own, staff = p.tokens.service_user(PERSON), p.tokens.clinician("staff-1", ["team-a"])
    other_team = p.tokens.clinician("staff-9", ["team-b"])
    async with subscribed(address, own, PLAN_CHANGES, {"id": PERSON}) as person, \
            subscribed(address, other_team, PLAN_CHANGES, {"id": PERSON}) as outsider:
        await asyncio.sleep(0.2)  # both subscriptions registered with the feed
        plan = await p.rest("crisis-plans", "POST", "/v1/crisis-plans", staff,
                            json={"service_user_id": PERSON, "team_id": "team-a", **PLAN})
        for signer in (own, staff):
            await p.rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                         signer, json={"content_hash": plan["content_hash"]},
                         etag=f'"{plan["version"]}"')
        committed = time.monotonic()
        seen: list[str] = []
        while "recovery.crisis-plans.plan.agreed" not in seen:
            message = await person.next()
            assert message["type"] == "next", message
            change = message["payload"]["data"]["crisisPlanChanged"]
            assert change["plan"]["serviceUserId"] == PERSON
            seen.append(change["eventType"])
        assert change["plan"]["agreedAt"] is not None
        assert time.monotonic() - committed < 5
        assert await outsider.nothing_within(1.0)


async def test_another_person_cannot_subscribe_to_someone_elses_plan(
        platform: tuple[Platform, str]) -> None:
    p, address = platform
    async with subscribed(address, p.tokens.service_user(OTHER), PLAN_CHANGES,
                          {"id": PERSON}) as refused:
        message = await refused.next()
        assert message["type"] in {"error", "next"}
        errors = message["payload"] if message["type"] == "error" else \
            message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_subscription_is_held_to_the_same_limits_as_a_query(
        platform: tuple[Platform, str]) -> None:
    p, address = platform
    aliases = " ".join(f"a{i}: eventType" for i in range(31))  # the limit is 30
    async with subscribed(address, p.tokens.service_user(PERSON),
                          "subscription ($id: ID!) { crisisPlanChanged(serviceUserId: $id) { "
                          + aliases + " } }", {"id": PERSON}) as refused:
        message = await refused.next()
        assert message["type"] == "error"
        assert "aliases" in message["payload"][0]["message"].lower()


async def test_a_team_manager_sees_readiness_follow_a_new_member_of_staff(
        platform: tuple[Platform, str]) -> None:
    p, address = platform
    admin = p.tokens.admin("admin-1", ["team-a"])
    await p.rest("workforce", "POST", "/v1/teams", admin, json={"id": "team-a",
                                                               "name": "Team A"})
    manager = p.tokens.manager("manager-1", ["team-a"])
    async with subscribed(address, manager, READINESS_CHANGES, {"id": "team-a"}) as team, \
            subscribed(address, p.tokens.manager("manager-9", ["team-b"]), READINESS_CHANGES,
                       {"id": "team-a"}) as refused:
        message = await refused.next()
        errors = message["payload"] if message["type"] == "error" else \
            message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
        await asyncio.sleep(0.2)
        await p.rest("workforce", "POST", "/v1/staff", admin, json={
            "id": "peer-sub-1", "team_id": "team-a", "display_name": "Sam",
            "profession": "peer_support", "grade": "band-4", "role_type": "peer_specialist",
            "fte": 1.0, "start_date": (date.today() - timedelta(days=3)).isoformat()})
        message = await team.next()
        assert message["type"] == "next", message
        change = message["payload"]["data"]["teamReadinessChanged"]
        assert change["eventType"] == "recovery.workforce.staff.joined"
        assert change["readiness"]["weakestFactor"]


GOAL_CHANGES = """subscription ($id: ID!) { goalChanged(serviceUserId: $id) {
  eventType goal { localId serviceUserId lifecycleStatus } } }"""
RISK_CHANGES = """subscription ($id: ID!) { riskAssessmentChanged(serviceUserId: $id) {
  eventType assessment { localId serviceUserId status } } }"""


async def test_goal_and_risk_changes_reach_the_person_and_not_another_team(
        platform: tuple[Platform, str]) -> None:
    p, address = platform
    own, staff = p.tokens.service_user(PERSON), p.tokens.clinician("staff-1", ["team-a"])
    other_team = p.tokens.clinician("staff-9", ["team-b"])
    async with subscribed(address, own, GOAL_CHANGES, {"id": PERSON}) as goals, \
            subscribed(address, own, RISK_CHANGES, {"id": PERSON}) as risk, \
            subscribed(address, other_team, GOAL_CHANGES, {"id": PERSON}) as outsider:
        await asyncio.sleep(0.2)
        goal = await p.rest("goals", "POST", "/v1/goals", staff, json={
            "service_user_id": PERSON, "team_id": "team-a",
            "description": "Volunteer at the allotment"})
        message = await goals.next()
        assert message["type"] == "next", message
        change = message["payload"]["data"]["goalChanged"]
        assert change["goal"] == {"localId": goal["id"], "serviceUserId": PERSON,
                                  "lifecycleStatus": "PROPOSED"}
        assessment = await p.rest("risk", "POST", "/v1/risk-assessments", staff, json={
            "service_user_id": PERSON, "team_id": "team-a", "areas": [{
                "area": "safety_of_self", "service_user_view": "I know my signs",
                "clinician_view": "Steadier", "views_agree": True}]})
        message = await risk.next()
        assert message["type"] == "next", message
        assert message["payload"]["data"]["riskAssessmentChanged"]["assessment"]["localId"] == \
            assessment["id"]
        assert await outsider.nothing_within(1.0)
