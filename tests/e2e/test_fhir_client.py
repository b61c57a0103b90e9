"""The gateway's FHIR base as an EHR integrator meets it: an independent client library
(``fhirclient``, over real HTTP) and a resource validator (``fhir.resources``) for every
resource and Bundle. Discovery, a person found by the EHR's identifier, searches paged to
the end through the gateway alone, versions, writes, errors, audit, and a subscription."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from fhir.resources.R4B import get_fhir_model_class
from fhirclient import client as fhir_client
from fhirclient.models.auditevent import AuditEvent as ClientAuditEvent
from fhirclient.models.bundle import Bundle as ClientBundle
from fhirclient.models.careplan import CarePlan as ClientCarePlan
from fhirclient.models.goal import Goal as ClientGoal
from fhirclient.models.patient import Patient as ClientPatient
from fhirclient.models.subscription import Subscription as ClientSubscription

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.common.testing.processes import NatsServer
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.testing import Platform, Receiver, receiving, running_platform, serving

pytestmark = pytest.mark.integration

PERSON, OTHER = "ehr-mrn-1001", "ehr-mrn-1002"
TEAM = "team-ehr"
T = TypeVar("T")


def valid(body: dict[str, Any]) -> dict[str, Any]:
    """The body, once ``fhir.resources`` has accepted it as the resource it says it is."""
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    for entry in body.get("entry") or []:
        if "resource" in entry:
            valid(entry["resource"])
    return body


@dataclass
class Ehr:
    """The platform behind a real HTTP port, and an EHR's client of its FHIR base."""

    platform: Platform
    base: str
    identifier_system: str
    #: The EHR's endpoint for subscription notifications.
    hooks: Receiver

    def client(self, token: str) -> fhir_client.FHIRClient:
        """A fhirclient that has read the CapabilityStatement (as every SMART client does
        first) and holds ``token`` as the access token it would have got from the IdP."""
        smart = fhir_client.FHIRClient(settings={"app_id": "ehr-tests", "api_base": self.base})
        smart.prepare()
        smart.server.auth.access_token = token
        return smart

    def get(self, token: str | None, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/fhir+json", **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        full = url if url.startswith("http") else f"{self.base}/{url}"
        return requests.get(full, headers=headers, timeout=10, **kwargs)

    def request(self, method: str, token: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}",
                   **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}/{url}", headers=headers, timeout=10,
                                **kwargs)


async def off_loop(call: Callable[[], T]) -> T:
    """A blocking client call, off the event loop that serves the platform."""
    return await asyncio.to_thread(call)


@pytest.fixture
async def ehr(dev_issuer: DevIssuer, tokens: TokenFactory, nats_server: NatsServer,
              tmp_path: Path) -> AsyncIterator[Ehr]:
    async with receiving() as hooks:
        gateway = GatewaySettings(environment="test",
                                  fhir_subscription_endpoints=[hooks.endpoint("")])
        async with running_platform(
                databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                jwks_file=dev_issuer.jwks_path, tokens=tokens, nats_url=nats_server.url,
                gateway=gateway) as platform:
            app = platform.gateway.app  # type: ignore[attr-defined]
            deadline = time.monotonic() + 10
            while not (app.state.feed.connected and app.state.fhir_subscriptions.ready):
                assert time.monotonic() < deadline, "the gateway did not connect to NATS"
                await asyncio.sleep(0.05)
            goals = platform.services["goals"].app  # type: ignore[attr-defined]
            async with serving(app) as address:
                yield Ehr(platform, f"http://{address}/fhir",
                          goals.state.kit.settings.fhir_patient_identifier_system, hooks)


async def goals_of(ehr: Ehr, person: str, *descriptions: str) -> list[dict[str, Any]]:
    own = ehr.platform.tokens.service_user(person)
    return [await ehr.platform.rest("goals", "POST", "/v1/goals", own, json={
        "service_user_id": person, "team_id": TEAM, "description": text})
        for text in descriptions]


async def test_a_smart_client_discovers_the_server_and_where_to_get_a_token(ehr: Ehr) -> None:
    smart = await off_loop(lambda: fhir_client.FHIRClient(
        settings={"app_id": "ehr-tests", "api_base": ehr.base}))
    await off_loop(smart.prepare)
    statement = smart.server.capabilityStatement
    valid(statement.as_json())
    assert {r.type for r in statement.rest[0].resource} >= {
        "Patient", "Goal", "CarePlan", "RiskAssessment", "AuditEvent", "Practitioner"}
    # fhirclient read the oauth-uris extension and set up SMART's OAuth 2.
    assert smart.server.auth.auth_type == "oauth2"
    smart_configuration = (await off_loop(lambda: ehr.get(
        None, ".well-known/smart-configuration"))).json()
    assert smart_configuration["token_endpoint"] == next(
        e.valueUri for e in statement.rest[0].security.extension[0].extension
        if e.url == "token")
    assert "client_credentials" in smart_configuration["grant_types_supported"]


async def test_the_ehr_finds_its_patient_by_identifier_and_pages_their_goals_to_the_end(
        ehr: Ehr) -> None:
    made = await goals_of(ehr, PERSON, *(f"Goal number {n}" for n in range(7)))
    await goals_of(ehr, OTHER, "Someone else's goal")
    clinician = ehr.platform.tokens.clinician("staff-ehr", [TEAM])
    smart = await off_loop(lambda: ehr.client(clinician))

    patients = await off_loop(lambda: list(ClientPatient.where(
        {"identifier": f"{ehr.identifier_system}|{PERSON}"}).perform_resources_iter(
            smart.server)))
    assert [(p.id, p.identifier[0].system, p.identifier[0].value) for p in patients] == [
        (PERSON, ehr.identifier_system, PERSON)]

    pages = await off_loop(lambda: list(ClientGoal.where(
        {"patient": f"Patient/{patients[0].id}", "_count": "3"}).perform_iter(smart.server)))
    assert len(pages) == 3
    seen = [entry.resource.id for page in pages for entry in page.entry or []]
    assert sorted(seen) == sorted(goal["id"] for goal in made)
    for page in pages:
        valid(page.as_json())
        for link in page.link:
            assert link.url.startswith(ehr.base + "/Goal?"), link.url
        for entry in page.entry or []:
            assert entry.fullUrl == f"{ehr.base}/Goal/{entry.resource.id}"
            assert entry.resource.subject.identifier.value == PERSON
            assert entry.resource.text.status == "generated"


async def test_a_backend_service_syncs_changes_since_its_last_run(ehr: Ehr) -> None:
    """Incremental sync with a backend-services token (system/ scopes): everything changed
    since a time, across people, then only what changed after."""
    first = await goals_of(ehr, PERSON, "Walk the dog")
    await goals_of(ehr, OTHER, "Call my sister")
    partner = ehr.platform.tokens.system("partner-ehr", scope="system/Goal.rs system/Patient.rs")
    everything = valid((await off_loop(lambda: ehr.get(
        partner, "Goal", params={"_lastUpdated": "ge2000-01-01", "_total": "accurate"}))).json())
    assert everything["total"] == 2
    newest = max(e["resource"]["meta"]["lastUpdated"] for e in everything["entry"])
    await asyncio.sleep(0.01)
    later = await goals_of(ehr, PERSON, "Join a choir")
    since = valid((await off_loop(lambda: ehr.get(
        partner, "Goal", params={"_lastUpdated": f"gt{newest}"}))).json())
    assert [e["resource"]["id"] for e in since["entry"]] == [later[0]["id"]]
    counted = valid((await off_loop(lambda: ehr.get(
        partner, "Goal", params={"patient": PERSON, "_summary": "count"}))).json())
    assert (counted["total"], counted.get("entry", [])) == (2, [])
    assert first[0]["id"] not in {e["resource"]["id"] for e in since["entry"]}


async def test_every_error_is_an_operation_outcome(ehr: Ehr) -> None:
    clinician = ehr.platform.tokens.clinician("staff-ehr", [TEAM])
    goal = (await goals_of(ehr, PERSON, "Learn to swim"))[0]
    outsider = ehr.platform.tokens.clinician("staff-out", ["team-elsewhere"])
    cases = [
        (None, "Goal", {}, {}, 401),
        (outsider, f"Goal/{goal['id']}", {}, {}, 404),
        (clinician, "Goal/no-such-goal", {}, {}, 404),
        (clinician, "Observation/1", {}, {}, 404),
        (clinician, "Goal", {"_count": "many"}, {}, 400),
        (clinician, "Goal", {"lifecycle-status": "dreaming"}, {}, 400),
        (clinician, "Goal", {"colour": "blue"}, {"Prefer": "handling=strict"}, 400),
        (clinician, "Goal", {"_lastUpdated": "ne2026-01-01"}, {}, 400),
        (clinician, f"Goal/{goal['id']}", {}, {"Accept": "application/fhir+xml"}, 406),
        (clinician, f"Goal/{goal['id']}/_history/99", {}, {}, 404),
        (clinician, "Patient", {}, {}, 400),
    ]
    for token, path, params, headers, status in cases:
        answer = await asyncio.to_thread(ehr.get, token, path, params=params, headers=headers)
        what = f"{path} {params} {headers}"
        assert answer.status_code == status, f"{what}: {answer.status_code} {answer.text}"
        assert answer.headers["content-type"] == "application/fhir+json", what
        outcome = valid(answer.json())
        assert outcome["resourceType"] == "OperationOutcome", what
        assert outcome["issue"][0]["diagnostics"], what


async def test_a_lenient_search_drops_an_unknown_parameter_from_its_self_link(ehr: Ehr) -> None:
    await goals_of(ehr, PERSON, "Grow tomatoes")
    own = ehr.platform.tokens.service_user(PERSON)
    bundle = valid((await off_loop(lambda: ehr.get(
        own, "Goal", params={"patient": PERSON, "colour": "blue"}))).json())
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "colour" not in self_link and "patient=" in self_link
    assert bundle["total"] == 1


async def test_a_read_is_versioned_and_a_client_that_has_it_gets_304(ehr: Ehr) -> None:
    goal = (await goals_of(ehr, PERSON, "Run 5k"))[0]
    own = ehr.platform.tokens.service_user(PERSON)
    first = await off_loop(lambda: ehr.get(own, f"Goal/{goal['id']}"))
    assert first.headers["etag"] == f'W/"{first.json()["meta"]["versionId"]}"'
    again = await off_loop(lambda: ehr.get(own, f"Goal/{goal['id']}",
                                           headers={"If-None-Match": first.headers["etag"]}))
    assert again.status_code == 304 and not again.content
    smart = await off_loop(lambda: ehr.client(own))
    version = await off_loop(lambda: ClientGoal.read_from(
        f"Goal/{goal['id']}/_history/1", smart.server))
    assert (version.id, version.meta.versionId) == (goal["id"], "1")
    history = await off_loop(lambda: ClientBundle.read_from(
        f"Goal/{goal['id']}/_history", smart.server))
    valid(history.as_json())
    assert history.type == "history" and history.entry[-1].resource.meta.versionId == "1"


def proposal(person: str, text: str) -> dict[str, Any]:
    """A Goal as the EHR sends a clinician's proposal: the person by the EHR's identifier."""
    return {"resourceType": "Goal", "lifecycleStatus": "proposed",
            "description": {"text": text},
            "subject": {"reference": f"Patient/{person}"}}


async def test_a_clinician_proposes_a_goal_from_the_ehr_once_and_updates_it_safely(
        ehr: Ehr) -> None:
    await goals_of(ehr, PERSON, "Something to start the record")
    clinician = ehr.platform.tokens.clinician("staff-ehr", [TEAM], scope="user/*.cruds")
    smart = await off_loop(lambda: ehr.client(clinician))
    created = await off_loop(lambda: ClientGoal(proposal(PERSON, "Back to the allotment"))
                             .create(smart.server))
    valid(created)
    assert created["lifecycleStatus"] == "proposed"  # the person still accepts it
    assert created["expressedBy"]["reference"] == "Practitioner/staff-ehr"

    # Conditional create: the EHR's retry finds the goal rather than making a second.
    condition = {"If-None-Exist": f"patient={PERSON}&_id={created['id']}",
                 "Content-Type": "application/fhir+json"}
    again = await off_loop(lambda: ehr.request("POST", clinician, "Goal", headers=condition,
                                               json=proposal(PERSON, "Back to the allotment")))
    assert again.status_code == 200 and valid(again.json())["id"] == created["id"]
    fresh = await off_loop(lambda: ehr.request(
        "POST", clinician, "Goal", json=proposal(PERSON, "Learn to cook"),
        headers={**condition, "If-None-Exist": f"patient={PERSON}&_id=no-such-goal"}))
    assert fresh.status_code == 201
    assert fresh.headers["location"] == f"{ehr.base}/Goal/{fresh.json()['id']}/_history/1"

    # A retry under the same Idempotency-Key gets the first answer, through the gateway.
    keyed = {"Idempotency-Key": "ehr-order-77", "Content-Type": "application/fhir+json"}
    once, twice = [await off_loop(lambda: ehr.request(
        "POST", clinician, "Goal", json=proposal(PERSON, "Swim on Fridays"), headers=keyed))
        for _ in range(2)]
    assert (once.status_code, twice.status_code) == (201, 201)
    assert twice.headers["idempotent-replayed"] == "true"
    assert twice.json()["id"] == once.json()["id"]

    # An update names the version it changes: a stale one is refused and changes nothing.
    body = {**created, "description": {"text": "Back to the allotment on Saturdays"}}
    stale = await off_loop(lambda: ehr.request("PUT", clinician, f"Goal/{created['id']}",
                                               json=body, headers={"If-Match": 'W/"9"'}))
    assert stale.status_code == 412 and valid(stale.json())["resourceType"] == "OperationOutcome"
    blind = await off_loop(lambda: ehr.request("PUT", clinician, f"Goal/{created['id']}",
                                               json=body))
    assert blind.status_code == 428 and valid(blind.json())["resourceType"] == "OperationOutcome"
    updated = await off_loop(lambda: ehr.request("PUT", clinician, f"Goal/{created['id']}",
                                                 json=body, headers={"If-Match": 'W/"1"'}))
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'
    assert valid(updated.json())["description"]["text"] == "Back to the allotment on Saturdays"
    first = await off_loop(lambda: ClientGoal.read_from(f"Goal/{created['id']}/_history/1",
                                                        smart.server))
    assert first.description.text == "Back to the allotment"


async def test_who_read_a_record_is_found_by_the_record_read(ehr: Ehr) -> None:
    goal = (await goals_of(ehr, PERSON, "Visit my brother"))[0]
    reader = ehr.platform.tokens.clinician("staff-reader", [TEAM])
    smart = await off_loop(lambda: ehr.client(reader))
    for _ in range(3):
        await off_loop(lambda: ClientGoal.read(goal["id"], smart.server))
    auditor = ehr.platform.tokens.system("audit-system", scope="system/AuditEvent.rs")
    auditing = await off_loop(lambda: ehr.client(auditor))
    pages = await off_loop(lambda: list(ClientAuditEvent.where(
        {"entity": f"Goal/{goal['id']}", "agent": "staff-reader", "_count": "2"}
    ).perform_iter(auditing.server)))
    events = [entry.resource for page in pages for entry in page.entry or []]
    assert len(events) == 3 and len(pages) == 2
    for page in pages:
        valid(page.as_json())
    for event in events:
        assert event.outcome == "0"
        assert {e.what.reference for e in event.entity if e.what.reference} == {
            f"Goal/{goal['id']}", f"Patient/{PERSON}"}


BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PLAN_TOPIC = "https://recovery-platform.org/fhir/SubscriptionTopic/active-crisis-plan-changed"


async def test_a_subscription_tells_the_ehr_when_the_crisis_plan_is_agreed(ehr: Ehr) -> None:
    """The EHR subscribes (fhirclient's Subscription, a backend service's token), the plan is
    agreed through the REST API, and the EHR's endpoint is told which plan to read."""
    partner = ehr.platform.tokens.system("partner-ehr", scope="system/CarePlan.rs")
    smart = await off_loop(lambda: ehr.client(partner))
    hooks = ehr.hooks
    # fhirclient's models drop primitive extensions (``_criteria``, ``_payload``), which
    # the backport's filter and payload content are: the JSON goes through its server.
    asked = {
        "resourceType": "Subscription", "status": "requested",
        "reason": "The ED's view of crisis plans", "criteria": PLAN_TOPIC,
        "_criteria": {"extension": [{"url": f"{BACKPORT}/backport-filter-criteria",
                                     "valueString": f"CarePlan?patient=Patient/{PERSON}"}]},
        "channel": {"type": "rest-hook", "endpoint": hooks.endpoint("ed"),
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{
                        "url": f"{BACKPORT}/backport-payload-content",
                        "valueCode": "id-only"}]}}}
    answer = await off_loop(lambda: smart.server.post_json("Subscription", asked))
    created = valid(answer.json())
    assert created["status"] == "active"
    again = await off_loop(lambda: ClientSubscription.read(created["id"], smart.server))
    assert (again.status, again.criteria) == ("active", PLAN_TOPIC)
    assert [r.kind for r in hooks.of("ed")] == ["handshake"]

    own, staff = (ehr.platform.tokens.service_user(PERSON),
                  ehr.platform.tokens.clinician("staff-ehr", [TEAM]))
    plan = await ehr.platform.rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
        "service_user_id": PERSON, "team_id": TEAM,
        "when_well": ["I walk by the river"], "early_warning_signs": ["Not eating"],
        "participants": [{"role": "service_user"},
                         {"role": "care_coordinator", "id": "staff-ehr"}]})
    for signer in (own, staff):
        plan = await ehr.platform.rest(
            "crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures", signer,
            json={"content_hash": plan["content_hash"]}, etag=f'"{plan["version"]}"')
    [notified] = await hooks.wait_for("ed", 1)
    valid(notified.bundle)
    focus = f"{ehr.base}/CarePlan/{plan['id']}"
    assert notified.event["focus"] == {"reference": focus}
    assert notified.bundle["entry"][1]["fullUrl"] == focus
    assert "resource" not in notified.bundle["entry"][1]  # id-only
    # The EHR reads what it was told of, with its own token.
    read = await off_loop(lambda: ClientCarePlan.read(plan["id"], smart.server))
    assert read.status == "active"
