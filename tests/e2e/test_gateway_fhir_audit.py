"""The audit trail at the gateway's FHIR base: every read of a record is found by the FHIR
reference of that record, searches by person, date or actor merge every service's trail newest
first and page to the end through the gateway alone, and only audit readers get any of it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from recovery.common import fhir
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.gateway.settings import UPSTREAMS, GatewaySettings
from recovery.gateway.testing import Platform, running_platform

PERSON, OTHER = "person-audit-1", "person-audit-2"
GATEWAY_BASE = "http://gateway/fhir"
READS = 3


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory,
                   tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens) as p:
        yield p


def _auditor(platform: Platform) -> dict[str, str]:
    return _bearer(platform.tokens.system("audit-system", scope="system/AuditEvent.rs"))


def _valid(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle and every AuditEvent in it, validated as FHIR R4; links at the gateway."""
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    for link in bundle["link"]:
        assert link["url"].startswith(f"{GATEWAY_BASE}/AuditEvent?"), link
    for entry in bundle["entry"]:
        AuditEvent.model_validate(entry["resource"])
        assert entry["fullUrl"] == f"{GATEWAY_BASE}/AuditEvent/{entry['resource']['id']}"
    return bundle


async def _search(platform: Platform, headers: dict[str, str] | None = None,
                  **params: Any) -> dict[str, Any]:
    response = await platform.gateway.get("/fhir/AuditEvent", params=params,
                                          headers=headers or _auditor(platform))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == fhir.FHIR_JSON
    return _valid(response.json())


async def _every_page(platform: Platform, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every entry of a search, following each next link through the gateway; and how many
    pages that took."""
    bundle = await _search(platform, **params)
    resources = [entry["resource"] for entry in bundle["entry"]]
    pages = 1
    while following := next((link["url"] for link in bundle["link"]
                             if link["relation"] == "next"), None):
        response = await platform.gateway.get(following, headers=_auditor(platform))
        assert response.status_code == 200, response.text
        bundle = _valid(response.json())
        resources += [entry["resource"] for entry in bundle["entry"]]
        pages += 1
    return resources, pages


def _record(resource: dict[str, Any]) -> str | None:
    return next((e["what"].get("reference") for e in resource.get("entity", [])
                 if e["type"]["code"] == "2"), None)


async def _plan(platform: Platform, person: str = PERSON) -> str:
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    plan = await platform.rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
        "service_user_id": person, "team_id": "team-a", "when_well": ["I paint"],
        "participants": [{"role": "service_user"},
                         {"role": "care_coordinator", "id": "staff-1"}]})
    plan_id: str = plan["id"]
    return plan_id


async def _goal(platform: Platform, person: str = PERSON) -> str:
    goal = await platform.rest("goals", "POST", "/v1/goals", platform.tokens.service_user(person),
                               json={"service_user_id": person, "team_id": "team-a",
                                     "description": "Swim twice a week"})
    goal_id: str = goal["id"]
    return goal_id


async def _read(platform: Platform, path: str, token: str) -> None:
    response = await platform.gateway.get(path, headers=_bearer(token))
    assert response.status_code == 200, response.text


async def test_every_read_of_a_crisis_plan_is_found_by_its_care_plan_reference(
        platform: Platform) -> None:
    plan_id = await _plan(platform)
    reader = platform.tokens.clinician("staff-2", ["team-a"])
    for _ in range(READS):
        await _read(platform, f"/fhir/CarePlan/{plan_id}", reader)
    before = dict(platform.upstreams.calls)

    bundle = await _search(platform, entity=f"CarePlan/{plan_id}")
    asked = {s for s in UPSTREAMS if platform.upstreams.calls[s] != before.get(s, 0)}
    assert asked == {"crisis-plans"}  # the owner of CarePlan only
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert {_record(r) for r in resources} == {f"CarePlan/{plan_id}"}
    reads = [r for r in resources
             if r["agent"][0]["who"]["identifier"]["value"] == "staff-2"]
    assert len(reads) == READS and all(r["action"] == "R" for r in reads)
    assert {r["source"]["site"] for r in resources} == {"crisis-plans"}
    person = next(e["what"] for e in reads[0]["entity"] if e["type"]["code"] == "1")
    assert person["reference"] == f"Patient/{PERSON}"
    assert person["identifier"]["value"] == PERSON

    by_reader = await _search(platform, entity=f"CarePlan/{plan_id}",
                              agent="Practitioner/staff-2")
    assert sorted(e["resource"]["id"] for e in by_reader["entry"]) \
        == sorted(r["id"] for r in reads)
    assert by_reader["total"] == READS


async def test_searches_by_patient_date_and_agent_merge_every_services_trail(
        platform: Platform) -> None:
    plan_id = await _plan(platform)
    goal_id = await _goal(platform)
    await _goal(platform, OTHER)
    reader = platform.tokens.clinician("staff-3", ["team-a"])
    await _read(platform, f"/fhir/CarePlan/{plan_id}", reader)
    await _read(platform, f"/fhir/Goal/{goal_id}", reader)

    about, _ = await _every_page(platform, patient=f"Patient/{PERSON}")
    assert {r["source"]["site"] for r in about} == {"goals", "crisis-plans"}
    assert {f"CarePlan/{plan_id}", f"Goal/{goal_id}"} <= {_record(r) for r in about}
    assert all(any(e["what"].get("reference") == f"Patient/{PERSON}" for e in r["entity"])
               for r in about)
    times = [r["recorded"] for r in about]
    assert times == sorted(times, reverse=True)  # newest first across services

    by_agent, _ = await _every_page(platform, agent="staff-3")
    assert sorted(_record(r) or "" for r in by_agent) \
        == sorted([f"CarePlan/{plan_id}", f"Goal/{goal_id}"])

    today = datetime.now(UTC).date()
    around_today, _ = await _every_page(platform, patient=PERSON, date=[
        f"ge{today - timedelta(days=1)}", f"lt{today + timedelta(days=2)}"])
    assert {r["id"] for r in around_today} == {r["id"] for r in about}
    assert (await _search(platform, date="lt2000-01-01"))["entry"] == []


async def test_paging_through_the_gateway_alone_visits_every_entry_once(
        platform: Platform) -> None:
    plan_id = await _plan(platform)
    goal_id = await _goal(platform)
    reader = platform.tokens.clinician("staff-4", ["team-a"])
    for _ in range(4):  # interleaved across two services
        await _read(platform, f"/fhir/CarePlan/{plan_id}", reader)
        await _read(platform, f"/fhir/Goal/{goal_id}", reader)

    counted = await _search(platform, agent="staff-4", _summary="count")
    assert counted["total"] == 8 and counted["entry"] == []
    seen, pages = await _every_page(platform, agent="staff-4", _count="3")
    assert pages == 3
    assert len(seen) == 8 and len({r["id"] for r in seen}) == 8
    keys = [(r["recorded"], r["id"]) for r in seen]
    assert keys == sorted(keys, reverse=True)
    first = await _search(platform, agent="staff-4", _count="3", _total="accurate")
    assert first["total"] == 8 and len(first["entry"]) == 3
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert parse_qs(urlsplit(following).query)["agent"] == ["staff-4"]


async def test_paging_a_date_search_ends_while_reading_the_trail_adds_to_it(
        platform: Platform) -> None:
    """Each page read records an entry in every service; paging goes on from a position, so
    those newer entries neither repeat an entry nor keep the paging from ending."""
    await _plan(platform)
    await _goal(platform)
    about, _ = await _every_page(platform, patient=PERSON)
    since = f"ge{datetime.now(UTC).date() - timedelta(days=1)}"
    before = (await _search(platform, date=since, _summary="count"))["total"]
    seen, pages = await _every_page(platform, date=since, _count="2")
    assert len(seen) == len({r["id"] for r in seen})
    assert {r["id"] for r in about} <= {r["id"] for r in seen}
    assert len(seen) >= before and pages >= before / 2


async def test_an_audit_event_is_read_by_id_from_whichever_service_holds_it(
        platform: Platform) -> None:
    await _goal(platform)
    [entry] = (await _search(platform, patient=PERSON, _count="1"))["entry"]
    event_id = entry["resource"]["id"]
    response = await platform.gateway.get(f"/fhir/AuditEvent/{event_id}",
                                          headers=_auditor(platform))
    assert response.status_code == 200, response.text
    event = AuditEvent.model_validate(response.json())
    assert event.id == event_id and event.text.status == "generated"
    missing = await platform.gateway.get("/fhir/AuditEvent/0b0e7c1e-0000-4000-8000-000000000000",
                                         headers=_auditor(platform))
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    # An id is one segment at every service, whatever the caller encoded in it.
    odd = await platform.gateway.get(f"/fhir/AuditEvent/{event_id}%3F_count%3D1",
                                     headers=_auditor(platform))
    assert odd.status_code == 404
    nested = await platform.gateway.get(f"/fhir/AuditEvent/{event_id}/_history",
                                        headers=_auditor(platform))
    assert nested.status_code == 404


async def test_an_unknown_parameter_is_dropped_or_a_400_under_strict_handling(
        platform: Platform) -> None:
    await _goal(platform)
    lenient = await _search(platform, patient=PERSON, colour="blue")
    assert lenient["entry"]
    assert all("colour" not in link["url"] for link in lenient["link"])
    strict = await platform.gateway.get(
        "/fhir/AuditEvent", params={"patient": PERSON, "colour": "blue"},
        headers={**_auditor(platform), "Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.headers["content-type"] == fhir.FHIR_JSON
    assert strict.json()["resourceType"] == "OperationOutcome"


async def test_only_json_is_offered(platform: Platform) -> None:
    xml = {**_auditor(platform), "Accept": "application/fhir+xml"}
    for path in ("/fhir/AuditEvent", "/fhir/AuditEvent/some-id"):
        response = await platform.gateway.get(path, headers=xml)
        assert response.status_code == 406, path
        assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("who", ["clinician", "manager", "partner with system/*.rs"])
async def test_callers_without_audit_rights_get_nothing_on_any_path(
        platform: Platform, who: str) -> None:
    plan_id = await _plan(platform)
    [entry] = (await _search(platform, entity=f"CarePlan/{plan_id}", _count="1"))["entry"]
    token = {"clinician": platform.tokens.clinician("staff-1", ["team-a"]),
             "manager": platform.tokens.manager("manager-1", ["team-a"]),
             "partner with system/*.rs": platform.tokens.system(scope="system/*.rs")}[who]
    for path, params in (("/fhir/AuditEvent", {"entity": f"CarePlan/{plan_id}"}),
                         ("/fhir/AuditEvent", {"patient": PERSON}),
                         (f"/fhir/AuditEvent/{entry['resource']['id']}", {})):
        response = await platform.gateway.get(path, params=params, headers=_bearer(token))
        assert response.status_code == 403, (path, params, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
        assert PERSON not in response.text
    anonymous = await platform.gateway.get("/fhir/AuditEvent", params={"patient": PERSON})
    assert anonymous.status_code == 401


async def test_the_merged_capability_statement_declares_the_audit_trail(
        platform: Platform) -> None:
    statement = (await platform.gateway.get("/fhir/metadata")).json()
    CapabilityStatement.model_validate(statement)
    [audit] = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert [p["name"] for p in audit["searchParam"]] \
        == [p.name for p in fhir.AUDIT_EVENT_SEARCH]
    training = (await platform.services["training"].get("/fhir/metadata")).json()
    assert [r["type"] for r in training["rest"][0]["resource"]] == ["AuditEvent"]


async def test_a_service_that_cannot_be_asked_is_a_503_never_a_partial_answer(
        dev_issuer: DevIssuer, tokens: TokenFactory, tmp_path: Path) -> None:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                stopped=("training",),
                                gateway=GatewaySettings(environment="test",
                                                        upstream_timeout_seconds=1)) as p:
        await _goal(p)
        auditor = _auditor(p)
        for path, params in (("/fhir/AuditEvent", {"patient": PERSON}),
                             ("/fhir/AuditEvent/0b0e7c1e-0000-4000-8000-000000000000", {})):
            response = await p.gateway.get(path, params=params, headers=auditor)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"]
            assert response.json()["resourceType"] == "OperationOutcome"
        # The owner of a record named is all a search by entity needs.
        goal_id = (await p.rest("goals", "GET", f"/v1/goals?service_user_id={PERSON}",
                                p.tokens.service_user(PERSON)))["items"][0]["id"]
        owned = await p.gateway.get("/fhir/AuditEvent", params={"entity": f"Goal/{goal_id}"},
                                    headers=auditor)
        assert owned.status_code == 200, owned.text
        assert len(owned.json()["entry"]) == 1
