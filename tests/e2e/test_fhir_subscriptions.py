"""FHIR R4 topic-based subscriptions at the gateway (Subscriptions R5 Backport IG), end to end:
a real NATS server, the services and the gateway as in production, and a real HTTP receiver
(uvicorn on a free port) recording every notification it is sent. Changes are made through
the services' REST APIs; every Subscription, Bundle and Parameters is validated with
fhir.resources (R4B classes, whose Subscription, Bundle and Parameters match R4's)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.subscription import Subscription

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.common.testing.processes import NatsServer
from recovery.gateway.main import SERVICE, create_app
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.testing import Platform, Received, Receiver, receiving, running_platform

pytestmark = pytest.mark.integration

TOPICS = "https://recovery-platform.org/fhir/SubscriptionTopic"
PLAN_TOPIC = f"{TOPICS}/active-crisis-plan-changed"
GOAL_TOPIC = f"{TOPICS}/goal-changed"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PUBLIC = "https://fhir.recovery.test"
PLAN: dict[str, Any] = {
    "when_well": ["I garden and see my friends on Sundays"],
    "early_warning_signs": ["Not sleeping"],
    "participants": [{"role": "service_user"}, {"role": "care_coordinator", "id": "staff-1"}],
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as hooks:
        yield hooks


async def until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


@pytest.fixture
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory, own_nats_server: NatsServer,
                   receiver: Receiver, tmp_path: Path) -> AsyncIterator[Platform]:
    gateway = GatewaySettings(environment="test", public_url=PUBLIC,
                              fhir_subscription_endpoints=[f"http://{receiver.address}/hooks/"],
                              fhir_subscription_retry_seconds=[0.1, 0.2])
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                nats_url=own_nats_server.url, gateway=gateway) as p:
        subscriptions = p.gateway.app.state.fhir_subscriptions  # type: ignore[attr-defined]
        await until(lambda: subscriptions.ready, "FHIR subscriptions did not reach NATS")
        yield p


@asynccontextmanager
async def another_replica(p: Platform, nats: NatsServer, jwks: Path) -> AsyncIterator[FastAPI]:
    """A second gateway process's app on the same NATS and services, as a Deployment's
    second replica would be."""
    first: FastAPI = p.gateway.app  # type: ignore[attr-defined]
    app = create_app(make_settings(SERVICE, database_url="sqlite://", jwks_file=jwks,
                                   nats_url=nats.url),
                     first.state.gateway_settings,
                     {name: httpx.ASGITransport(app=client.app)  # type: ignore[attr-defined]
                      for name, client in p.services.items()})
    async with LifespanManager(app):
        await until(lambda: app.state.fhir_subscriptions.ready, "the replica is not ready")
        yield app


def subscription(topic: str, focus: str, person: str, endpoint: str, *,
                 content: str = "id-only", channel: str = "rest-hook",
                 heartbeat: int | None = None, headers: tuple[str, ...] = (),
                 timeout: int = 2) -> dict[str, Any]:
    """A Subscription as an EHR posts it."""
    extensions = [{"url": f"{BACKPORT}/backport-timeout", "valueUnsignedInt": timeout},
                  {"url": f"{BACKPORT}/backport-max-count", "valuePositiveInt": 10}]
    if heartbeat is not None:
        extensions.append({"url": f"{BACKPORT}/backport-heartbeat-period",
                           "valueUnsignedInt": heartbeat})
    body: dict[str, Any] = {
        "resourceType": "Subscription", "status": "requested",
        "reason": "Follow the person's records", "criteria": topic,
        "_criteria": {"extension": [{"url": f"{BACKPORT}/backport-filter-criteria",
                                     "valueString": f"{focus}?patient=Patient/{person}"}]},
        "channel": {"type": channel, "endpoint": endpoint, "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": f"{BACKPORT}/backport-payload-content",
                                                "valueCode": content}]},
                    "extension": extensions},
    }
    if headers:
        body["channel"]["header"] = list(headers)
    return body


async def fhir(p: Platform, method: str, path: str, token: str,
               body: dict[str, Any] | None = None) -> httpx.Response:
    return await p.gateway.request(method, f"/fhir/{path}", json=body,
                                   headers={"Authorization": f"Bearer {token}",
                                            "Content-Type": "application/fhir+json"})


def outcome(response: httpx.Response) -> tuple[str, str]:
    """A refusal under /fhir, an OperationOutcome: its problem type and what it says."""
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    OperationOutcome.model_validate(body)
    issue = body["issue"][0]
    return issue["details"]["coding"][0]["code"], issue["diagnostics"]


async def subscribed(p: Platform, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Subscribe; the Subscription as created (validated), active after its handshake."""
    response = await fhir(p, "POST", "Subscription", token, body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    Subscription.model_validate(created)
    assert response.headers["location"] == f"{PUBLIC}/fhir/Subscription/{created['id']}"
    assert created["status"] == "active", created
    return created


def valid_notification(received: Received, subscription_id: str, topic: str) -> None:
    """A history Bundle whose first entry is the subscription's status as R4 Parameters."""
    Bundle.model_validate(received.bundle)
    assert received.bundle["type"] == "history"
    status = received.bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    Parameters.model_validate(status)
    assert received.status["subscription"] == {
        "reference": f"{PUBLIC}/fhir/Subscription/{subscription_id}"}
    assert received.status["topic"] == topic
    assert received.headers["content-type"] == "application/fhir+json"


async def agreed_plan(p: Platform, person: str, team: str = "team-a") -> dict[str, Any]:
    """A crisis plan started by the care coordinator and signed by both: agreed."""
    own, staff = p.tokens.service_user(person), p.tokens.clinician("staff-1", [team])
    plan: dict[str, Any] = await p.rest("crisis-plans", "POST", "/v1/crisis-plans", staff,
                                        json={"service_user_id": person, "team_id": team,
                                              **PLAN})
    for signer in (own, staff):
        plan = await p.rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                            signer, json={"content_hash": plan["content_hash"]},
                            etag=f'"{plan["version"]}"')
    assert plan["status"] == "agreed"
    return plan


async def proposed_goal(p: Platform, person: str, staff: str, team: str) -> dict[str, Any]:
    goal: dict[str, Any] = await p.rest("goals", "POST", "/v1/goals", staff, json={
        "service_user_id": person, "team_id": team, "description": "Walk to the allotment"})
    return goal


async def test_metadata_advertises_both_topics_and_the_subscription_resource(
        platform: Platform) -> None:
    statement = (await platform.gateway.get("/fhir/metadata")).json()
    CapabilityStatement.model_validate(statement)
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    topics = {e["valueCanonical"] for e in entry["extension"]
              if e["url"].endswith("/capabilitystatement-subscriptiontopic-canonical")}
    assert topics == {PLAN_TOPIC, GOAL_TOPIC}
    assert {i["code"] for i in entry["interaction"]} == {"create", "read", "delete",
                                                         "search-type"}
    assert [o["name"] for o in entry["operation"]] == ["status"]
    assert {"Goal", "CarePlan"} <= {r["type"] for r in statement["rest"][0]["resource"]}


async def test_a_subscription_is_requested_then_active_after_its_handshake(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-1"
    own = platform.tokens.service_user(person)
    created = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("handshake"),
        headers=("Authorization: Bearer receiver-secret",)))
    (handshake,) = receiver.of("handshake", "handshake")
    valid_notification(handshake, created["id"], GOAL_TOPIC)
    assert handshake.status["status"] == "requested"
    assert handshake.status["events-since-subscription-start"] == "0"
    assert len(handshake.bundle["entry"]) == 1
    assert handshake.headers["authorization"] == "Bearer receiver-secret"

    read = await fhir(platform, "GET", f"Subscription/{created['id']}", own)
    assert read.status_code == 200 and read.json()["status"] == "active"
    Subscription.model_validate(read.json())
    # As every read here: a narrative, and its version (requested, then active) as the ETag.
    assert read.json()["text"]["status"] == "generated"
    assert read.json()["meta"]["versionId"] == "2" and read.headers["etag"] == 'W/"2"'
    again = await platform.gateway.get(f"/fhir/Subscription/{created['id']}", headers={
        "Authorization": f"Bearer {own}", "If-None-Match": 'W/"2"'})
    assert again.status_code == 304
    status = await fhir(platform, "GET", f"Subscription/{created['id']}/$status", own)
    assert status.status_code == 200
    Bundle.model_validate(status.json())
    parameters = status.json()["entry"][0]["resource"]
    Parameters.model_validate(parameters)
    values = {p["name"]: p for p in parameters["parameter"]}
    assert values["type"]["valueCode"] == "query-status"
    assert values["status"]["valueCode"] == "active"
    assert values["events-since-subscription-start"]["valueString"] == "0"
    listed = await fhir(platform, "GET", "Subscription", own)
    Bundle.model_validate(listed.json())
    assert [e["resource"]["id"] for e in listed.json()["entry"]] == [created["id"]]


async def test_agreeing_and_withdrawing_a_crisis_plan_notify_the_person_by_id_only(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-2"
    own = platform.tokens.service_user(person)
    created = await subscribed(platform, own, subscription(
        PLAN_TOPIC, "CarePlan", person, receiver.endpoint("plan")))
    plan = await agreed_plan(platform, person)
    (agreed,) = await receiver.wait_for("plan", 1)
    valid_notification(agreed, created["id"], PLAN_TOPIC)
    focus = f"{PUBLIC}/fhir/CarePlan/{plan['id']}"
    assert agreed.event["event-number"] == "1"
    assert agreed.event["focus"] == {"reference": focus}
    assert agreed.status["events-since-subscription-start"] == "1"
    # id-only: the focus's URL in an entry of its own, never the plan itself.
    assert agreed.bundle["entry"][1]["fullUrl"] == focus
    assert "resource" not in agreed.bundle["entry"][1]
    assert "I garden" not in json.dumps(agreed.bundle)

    await platform.rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/"
                        "withdraw-agreement", own, etag=f'"{plan["version"]}"')
    withdrawn = (await receiver.wait_for("plan", 2))[1]
    valid_notification(withdrawn, created["id"], PLAN_TOPIC)
    assert withdrawn.event["event-number"] == "2"
    assert withdrawn.event["focus"] == {"reference": focus}


async def test_changes_of_one_goal_arrive_in_order_numbered_one_after_another(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-3"
    own, staff = platform.tokens.service_user(person), platform.tokens.clinician(
        "staff-1", ["team-a"])
    created = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("goal")))
    goal = await proposed_goal(platform, person, staff, "team-a")
    goal = await platform.rest("goals", "POST", f"/v1/goals/{goal['id']}/accept", own,
                               etag=f'"{goal["version"]}"')
    goal = await platform.rest("goals", "PATCH", f"/v1/goals/{goal['id']}", own,
                               json={"description": "Walk to the allotment twice a week"},
                               etag=f'"{goal["version"]}"')
    await platform.rest("goals", "POST", f"/v1/goals/{goal['id']}/status", own,
                        json={"status": "on-hold"}, etag=f'"{goal["version"]}"')
    notifications = await receiver.wait_for("goal", 4)
    for received in notifications:
        valid_notification(received, created["id"], GOAL_TOPIC)
        assert received.event["focus"] == {"reference": f"{PUBLIC}/fhir/Goal/{goal['id']}"}
    assert [r.event["event-number"] for r in notifications] == ["1", "2", "3", "4"]
    times = [r.event["timestamp"] for r in notifications]
    assert times == sorted(times)
    # The first made the goal (a POST in the history Bundle), the others changed it.
    assert [r.bundle["entry"][1]["request"]["method"] for r in notifications] == [
        "POST", "PUT", "PUT", "PUT"]


async def test_a_receiver_that_fails_then_recovers_still_gets_the_notification(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-4"
    own = platform.tokens.service_user(person)
    created = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("flaky")))
    receiver.fail("flaky", times=2)
    goal = await proposed_goal(platform, person, platform.tokens.clinician(), "team-a")
    (received,) = await receiver.wait_for("flaky", 1)
    assert receiver.attempts["/hooks/flaky"] == 1 + 3  # the handshake, two failures, then it
    assert received.event["focus"] == {"reference": f"{PUBLIC}/fhir/Goal/{goal['id']}"}
    assert received.event["event-number"] == "1"
    read = await fhir(platform, "GET", f"Subscription/{created['id']}", own)
    assert read.json()["status"] == "active"


async def test_a_receiver_that_keeps_failing_is_put_in_error_and_the_others_go_on(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-5"
    own = platform.tokens.service_user(person)
    broken = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("broken")))
    working = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("working")))
    receiver.fail("broken")
    staff = platform.tokens.clinician()
    await proposed_goal(platform, person, staff, "team-a")
    await receiver.wait_for("working", 1)
    deadline = time.monotonic() + 5
    while (read := (await fhir(platform, "GET", f"Subscription/{broken['id']}", own)).json()
           )["status"] != "error":
        assert time.monotonic() < deadline, read
        await asyncio.sleep(0.05)
    Subscription.model_validate(read)
    assert "HTTP 500" in read["error"]
    assert read["meta"]["versionId"] == "3"  # requested, active, error
    assert receiver.attempts["/hooks/broken"] == 1 + 3  # the handshake and three attempts
    await proposed_goal(platform, person, staff, "team-a")
    second = (await receiver.wait_for("working", 2))[1]
    assert second.event["event-number"] == "2"
    assert receiver.attempts["/hooks/broken"] == 4  # nothing more is sent to it
    assert working["id"] != broken["id"]

    receiver.fail("refused")
    response = await fhir(platform, "POST", "Subscription", own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("refused")))
    assert response.status_code == 201
    assert response.json()["status"] == "error"
    assert "handshake" in response.json()["error"]


async def test_a_heartbeat_is_sent_when_nothing_else_was(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-6"
    own = platform.tokens.service_user(person)
    created = await subscribed(platform, own, subscription(
        PLAN_TOPIC, "CarePlan", person, receiver.endpoint("beat"), heartbeat=1))
    Subscription.model_validate(created)
    (heartbeat,) = await receiver.wait_for("beat", 1, kind="heartbeat", within=4)
    valid_notification(heartbeat, created["id"], PLAN_TOPIC)
    assert heartbeat.status["status"] == "active"
    assert heartbeat.status["events-since-subscription-start"] == "0"
    assert len(heartbeat.bundle["entry"]) == 1
    await receiver.wait_for("beat", 2, kind="heartbeat", within=4)


async def test_a_person_cannot_subscribe_for_another_person(platform: Platform,
                                                            receiver: Receiver) -> None:
    person, other = "person-subs-7", "person-subs-8"
    await agreed_plan(platform, person)
    answers = [await fhir(platform, "POST", "Subscription", platform.tokens.service_user(other),
                          subscription(PLAN_TOPIC, "CarePlan", someone,
                                       receiver.endpoint("nosy")))
               for someone in (person, "person-with-nothing")]
    assert [a.status_code for a in answers] == [403, 403]
    # The same answer whether or not the other person has records.
    assert outcome(answers[0]) == outcome(answers[1])
    assert receiver.attempts["/hooks/nosy"] == 0


async def test_staff_are_refused_outside_their_teams_and_hear_only_of_their_teams_records(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-9"
    own = platform.tokens.service_user(person)
    team_a = platform.tokens.clinician("staff-1", ["team-a"])
    team_b = platform.tokens.clinician("staff-9", ["team-b"])
    await agreed_plan(platform, person, team="team-a")
    refused = [await fhir(platform, "POST", "Subscription", team_b, subscription(
        PLAN_TOPIC, "CarePlan", someone, receiver.endpoint("team-b-plan")))
        for someone in (person, "person-with-nothing")]
    assert [r.status_code for r in refused] == [403, 403]
    assert outcome(refused[0]) == outcome(refused[1])
    await subscribed(platform, team_a, subscription(
        PLAN_TOPIC, "CarePlan", person, receiver.endpoint("team-a-plan")))

    # Team B reads the goal it proposed, so it may subscribe to the person's goals ...
    ours = await proposed_goal(platform, person, team_b, "team-b")
    await subscribed(platform, team_b, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("team-b-goals")))
    await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("own-goals")))
    # ... but hears nothing of a goal team A keeps with the person.
    theirs = await proposed_goal(platform, person, team_a, "team-a")
    await platform.rest("goals", "POST", f"/v1/goals/{ours['id']}/accept", own,
                        etag=f'"{ours["version"]}"')
    person_heard = await receiver.wait_for("own-goals", 2)
    assert [r.event["focus"]["reference"].rsplit("/", 1)[1] for r in person_heard] == [
        theirs["id"], ours["id"]]
    (team_b_heard,) = await receiver.wait_for("team-b-goals", 1)
    assert team_b_heard.event["focus"] == {"reference": f"{PUBLIC}/fhir/Goal/{ours['id']}"}
    assert team_b_heard.event["event-number"] == "1"
    assert receiver.attempts["/hooks/team-b-plan"] == 0


async def test_a_partner_system_subscribes_within_its_scopes(platform: Platform,
                                                            receiver: Receiver) -> None:
    person = "person-subs-10"
    goals_only = platform.tokens.system("partner-1", scope="system/Goal.rs")
    created = await subscribed(platform, goals_only, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("partner")))
    goal = await proposed_goal(platform, person, platform.tokens.clinician(), "team-a")
    (received,) = await receiver.wait_for("partner", 1)
    valid_notification(received, created["id"], GOAL_TOPIC)
    assert received.event["focus"] == {"reference": f"{PUBLIC}/fhir/Goal/{goal['id']}"}
    refused = await fhir(platform, "POST", "Subscription", goals_only, subscription(
        PLAN_TOPIC, "CarePlan", person, receiver.endpoint("partner-plans")))
    assert refused.status_code == 403
    assert outcome(refused)[0] == "insufficient-scope"


async def test_full_resource_other_channels_and_unlisted_endpoints_are_refused_with_a_400(
        platform: Platform, receiver: Receiver) -> None:
    person = "person-subs-11"
    own = platform.tokens.service_user(person)
    asks = {
        "full-resource": subscription(GOAL_TOPIC, "Goal", person, receiver.endpoint("x"),
                                      content="full-resource"),
        "websocket": subscription(GOAL_TOPIC, "Goal", person, receiver.endpoint("x"),
                                  channel="websocket"),
        "elsewhere": subscription(GOAL_TOPIC, "Goal", person,
                                  f"http://{receiver.address}/other/x"),
        "unknown topic": subscription(f"{TOPICS}/unknown", "Goal", person,
                                      receiver.endpoint("x")),
        "another focus": subscription(GOAL_TOPIC, "CarePlan", person, receiver.endpoint("x")),
    }
    answers = {name: await fhir(platform, "POST", "Subscription", own, body)
               for name, body in asks.items()}
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(asks, 400)
    said = {name: outcome(a) for name, a in answers.items()}
    assert said["full-resource"][0] == "unsupported-payload-content"
    assert "Only id-only notifications are offered" in said["full-resource"][1]
    assert said["websocket"][0] == "unsupported-channel"
    assert "rest-hook" in said["websocket"][1]
    assert said["elsewhere"][0] == "endpoint-not-allowed"
    assert said["unknown topic"][0] == "unknown-topic"
    assert said["another focus"][0] == "invalid-filter"
    assert receiver.attempts == {}
    anonymous = await platform.gateway.post("/fhir/Subscription", json=asks["websocket"])
    assert anonymous.status_code == 401


async def test_deleting_a_subscription_stops_its_notifications(platform: Platform,
                                                               receiver: Receiver) -> None:
    person = "person-subs-12"
    own = platform.tokens.service_user(person)
    gone = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("gone")))
    kept = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("kept")))
    other = await fhir(platform, "DELETE", f"Subscription/{gone['id']}",
                       platform.tokens.service_user("person-subs-13"))
    assert other.status_code == 404  # another's reads as missing
    deleted = await fhir(platform, "DELETE", f"Subscription/{gone['id']}", own)
    assert deleted.status_code == 204
    assert (await fhir(platform, "GET", f"Subscription/{gone['id']}", own)).status_code == 404
    listed = (await fhir(platform, "GET", "Subscription", own)).json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [kept["id"]]
    await proposed_goal(platform, person, platform.tokens.clinician(), "team-a")
    await receiver.wait_for("kept", 1)  # the event has been handled
    assert receiver.of("gone", "event-notification") == []


async def test_a_subscription_is_read_only_by_its_owner(platform: Platform,
                                                        receiver: Receiver) -> None:
    person = "person-subs-14"
    created = await subscribed(platform, platform.tokens.service_user(person), subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("mine")))
    staff = platform.tokens.clinician()
    for path in (f"Subscription/{created['id']}", f"Subscription/{created['id']}/$status",
                 "Subscription/no-such-subscription"):
        assert (await fhir(platform, "GET", path, staff)).status_code == 404
    listed = (await fhir(platform, "GET", "Subscription", staff)).json()
    assert listed["entry"] == []


async def test_replicas_share_the_work_each_event_sent_once_and_no_number_reused(
        platform: Platform, receiver: Receiver, own_nats_server: NatsServer,
        dev_issuer: DevIssuer) -> None:
    person = "person-subs-15"
    own, staff = platform.tokens.service_user(person), platform.tokens.clinician()
    async with another_replica(platform, own_nats_server, dev_issuer.jwks_path):
        created = await subscribed(platform, own, subscription(
            GOAL_TOPIC, "Goal", person, receiver.endpoint("shared"), heartbeat=1))
        goals = [await proposed_goal(platform, person, staff, "team-a") for _ in range(3)]
        notifications = await receiver.wait_for("shared", 3)
        await receiver.wait_for("shared", 2, kind="heartbeat", within=5)
    for received in notifications:
        valid_notification(received, created["id"], GOAL_TOPIC)
    assert [r.event["event-number"] for r in notifications] == ["1", "2", "3"]
    assert [r.event["focus"]["reference"].rsplit("/", 1)[1] for r in notifications] == [
        g["id"] for g in goals]
    assert len(receiver.of("shared", "event-notification")) == 3  # none sent twice
    # One heartbeat a period between both replicas, each claimed in the bucket first.
    beats = [datetime.fromisoformat(r.bundle["timestamp"].replace("Z", "+00:00"))
             for r in receiver.of("shared", "heartbeat")]
    assert all(later - earlier > timedelta(seconds=0.5)
               for earlier, later in pairwise(beats)), beats


async def test_an_event_left_by_a_stopping_replica_is_sent_again_under_its_number(
        platform: Platform, receiver: Receiver, own_nats_server: NatsServer,
        dev_issuer: DevIssuer) -> None:
    person = "person-subs-16"
    own, staff = platform.tokens.service_user(person), platform.tokens.clinician()
    # A timeout long enough that the held POST is never tried again by its own replica.
    created = await subscribed(platform, own, subscription(
        GOAL_TOPIC, "Goal", person, receiver.endpoint("again"), timeout=30))
    # Only the second replica takes events while this one's notifier rests.
    first = platform.gateway.app.state.fhir_subscriptions  # type: ignore[attr-defined]
    await first.notifier.stop()
    gate = receiver.hold("again")
    async with another_replica(platform, own_nats_server, dev_issuer.jwks_path):
        goal = await proposed_goal(platform, person, staff, "team-a")
        await receiver.wait_for("again", 1)  # it reached the endpoint, unanswered
        first.notifier.start()
    # The replica stopped before the endpoint answered: the event was never acknowledged.
    (original, again) = await receiver.wait_for("again", 2)
    gate.set()
    for received in (original, again):
        valid_notification(received, created["id"], GOAL_TOPIC)
        assert received.event["event-number"] == "1"
        assert received.event["focus"] == {"reference": f"{PUBLIC}/fhir/Goal/{goal['id']}"}
    await proposed_goal(platform, person, staff, "team-a")
    await until(lambda: any(r.event["event-number"] == "2" for r in receiver.of(
        "again", "event-notification")), "the next event was not numbered 2")
