"""The audit trail as FHIR R4 AuditEvent: each entry names the FHIR resource that was read, and
``/fhir/AuditEvent`` is searched as every FHIR search of the platform is (the kit's parameters,
paging, totals, strict handling, public links), newest first. On a real database each."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from recovery.common import fhir
from recovery.common.audit import Outcome, audit_row
from recovery.common.audit_export import FHIR_TYPES, cursor_after, record_types
from recovery.common.auth import Principal
from recovery.common.deps import get_settings
from recovery.common.settings import Settings
from recovery.common.testing.plugin import TokenFactory

STAFF = Principal(sub="staff-7", roles=frozenset({"clinician"}), teams=frozenset({"team-a"}))
PERSON = Principal(sub="su-7", roles=frozenset({"service_user"}), patient="su-7")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PATIENT_SYSTEM = Settings().fhir_patient_identifier_system


def _record(client: httpx.AsyncClient, *, record_type: str, record_id: str | None,
            person: str | None = "su-7", who: Principal = STAFF, action: str = "read",
            outcome: Outcome = Outcome.allowed, at: datetime = START) -> str:
    """One decision straight into the service's audit trail, as a service records it."""
    row = audit_row(who, record_type=record_type, record_id=record_id, service_user_id=person,
                    action=action, outcome=outcome, source_address="10.0.0.9",
                    request_id="req-7")
    row["recorded_at"] = at
    client.app.state.kit.audit.record(row)  # type: ignore[attr-defined]
    entry_id: str = row["id"]
    return entry_id


def _admin(tokens: TokenFactory) -> dict[str, str]:
    return tokens.header(tokens.admin("admin-1"))


async def _search(client: httpx.AsyncClient, tokens: TokenFactory, *,
                  headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = await client.get("/fhir/AuditEvent", params=params,
                                headers={**_admin(tokens), **(headers or {})})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == fhir.FHIR_JSON
    bundle: dict[str, Any] = response.json()
    Bundle.model_validate(bundle)
    for entry in bundle.get("entry", []):
        FhirAuditEvent.model_validate(entry["resource"])
    return bundle


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", [])]


def _next(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def _record_entity(resource: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in resource["entity"] if e["type"]["code"] == "2")


# --- what an entry names ------------------------------------------------------------------------


def test_each_record_type_the_services_record_names_its_fhir_resource() -> None:
    assert FHIR_TYPES["CrisisPlan"] == "CarePlan"
    assert FHIR_TYPES["Goal"] == "Goal"
    assert FHIR_TYPES["RiskAssessment"] == "RiskAssessment"
    assert FHIR_TYPES["Staff"] == "Practitioner"
    assert FHIR_TYPES["Team"] == "CareTeam"
    assert record_types("CarePlan") == ["CrisisPlan"]
    # Records that are no FHIR resource keep their own name.
    for record in ("Course", "Enrolment", "Educator", "StaffMember", "LivedExperience",
                   "Supervision", "Appraisal", "SkillMix", "GoalFigures"):
        assert record not in FHIR_TYPES


def test_the_declared_entity_parameter_names_every_fhir_type_an_entry_references() -> None:
    entity = next(p for p in fhir.AUDIT_EVENT_SEARCH if p.name == "entity")
    for fhir_type in FHIR_TYPES.values():
        assert fhir_type in entity.documentation, fhir_type


async def test_an_entry_references_the_fhir_resource_read_and_the_person_it_is_about(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    plan = _record(toy, record_type="CrisisPlan", record_id="plan-1")
    staff = _record(toy, record_type="Staff", record_id="staff-3", person=None)
    team = _record(toy, record_type="Team", record_id="team-a", person=None)
    bundle = await _search(toy, tokens, _id=f"{plan},{staff},{team}")
    by_id = {r["id"]: r for r in _resources(bundle)}
    assert _record_entity(by_id[plan])["what"] == {"reference": "CarePlan/plan-1"}
    assert _record_entity(by_id[staff])["what"] == {"reference": "Practitioner/staff-3"}
    assert _record_entity(by_id[team])["what"] == {"reference": "CareTeam/team-a"}
    person = next(e for e in by_id[plan]["entity"] if e["type"]["code"] == "1")
    assert person["what"] == {"reference": "Patient/su-7",
                              "identifier": {"system": PATIENT_SYSTEM, "value": "su-7"}}
    assert person["role"]["code"] == "1"
    assert not any(e["type"]["code"] == "1" for e in by_id[staff]["entity"])


async def test_a_record_that_is_no_fhir_resource_is_named_by_identifier_and_display(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    course = _record(toy_sqlite, record_type="Course", record_id="course-1", person=None)
    figures = _record(toy_sqlite, record_type="SkillMix", record_id="team-a", person=None,
                      action="aggregate")
    resources = {r["id"]: r for r in _resources(
        await _search(toy_sqlite, tokens, _id=f"{course},{figures}"))}
    assert _record_entity(resources[course])["what"] == {
        "identifier": {"value": "course-1"}, "display": "Course"}
    assert _record_entity(resources[figures])["what"] == {
        "identifier": {"value": "team-a"}, "display": "SkillMix"}


# --- searching ----------------------------------------------------------------------------------


async def test_entity_finds_every_read_of_a_care_plan_and_nothing_else(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    reads = [_record(toy, record_type="CrisisPlan", record_id="plan-9",
                     at=START + timedelta(seconds=n)) for n in range(3)]
    _record(toy, record_type="CrisisPlan", record_id="plan-8")
    _record(toy, record_type="Goal", record_id="plan-9")  # another type, the same id
    bundle = await _search(toy, tokens, entity="CarePlan/plan-9")
    assert [r["id"] for r in _resources(bundle)] == reads[::-1]  # newest first
    assert bundle["total"] == 3
    absolute = await _search(toy, tokens, entity="https://ehr.example/fhir/CarePlan/plan-9")
    assert len(_resources(absolute)) == 3
    # The platform's own record type is no FHIR type: nothing is referenced that way.
    assert _resources(await _search(toy, tokens, entity="CrisisPlan/plan-9")) == []
    either = await _search(toy, tokens, entity="CarePlan/plan-9,Goal/plan-9")
    assert len(_resources(either)) == 4


async def test_entity_patient_finds_every_entry_about_the_person(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    about = [_record(toy_sqlite, record_type="Goal", record_id="g-1", person="su-3"),
             _record(toy_sqlite, record_type="CrisisPlan", record_id=None, person="su-3",
                     action="list")]
    _record(toy_sqlite, record_type="Goal", record_id="g-2", person="su-4")
    found = await _search(toy_sqlite, tokens, entity="Patient/su-3")
    assert sorted(r["id"] for r in _resources(found)) == sorted(about)
    by_patient = await _search(toy_sqlite, tokens, patient="Patient/su-3")
    assert sorted(r["id"] for r in _resources(by_patient)) == sorted(about)


async def test_agent_is_the_actors_sub_bare_or_as_a_reference(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    by_staff = _record(toy_sqlite, record_type="Goal", record_id="g-1")
    by_person = _record(toy_sqlite, record_type="Goal", record_id="g-1", who=PERSON)
    for value, expected in (("staff-7", by_staff), ("Practitioner/staff-7", by_staff),
                            ("Patient/su-7", by_person), ("su-7", by_person)):
        found = await _search(toy_sqlite, tokens, agent=value, entity="Goal/g-1")
        assert [r["id"] for r in _resources(found)] == [expected], value
        who = _resources(found)[0]["agent"][0]["who"]["identifier"]
        assert who["value"] == value.rpartition("/")[2]


async def test_outcome_and_date_with_prefixes_narrow_the_search(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    early = _record(toy, record_type="Goal", record_id="g-5", at=START)
    late = _record(toy, record_type="Goal", record_id="g-5", outcome=Outcome.denied,
                   at=START + timedelta(days=1))

    async def ids(**params: Any) -> list[str]:
        return [r["id"] for r in _resources(await _search(toy, tokens, entity="Goal/g-5",
                                                          **params))]

    assert await ids(outcome="4") == [late]
    assert await ids(outcome="http://hl7.org/fhir/audit-event-outcome|0") == [early]
    assert await ids(outcome="8") == []
    assert await ids(date="2026-03-02") == [early]
    assert await ids(date="ge2026-03-03") == [late]
    assert await ids(date="gt2026-03-02") == [late]
    assert await ids(date=["ge2026-03", "lt2026-03-03T00:00:00Z"]) == [early]
    assert await ids(date="2026") == [late, early]
    assert await ids(date="sa2026-03-02T09:00:00Z") == [late]
    bad = await toy.get("/fhir/AuditEvent", headers=_admin(tokens), params={"date": "soon"})
    assert bad.status_code == 400
    assert bad.json()["resourceType"] == "OperationOutcome"
    assert (await toy.get("/fhir/AuditEvent", headers=_admin(tokens),
                          params={"outcome": "maybe"})).status_code == 400


async def test_a_search_pages_newest_first_to_its_end_each_entry_once(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    # Several entries in the same microsecond: the id orders them.
    made = [_record(toy, record_type="RiskAssessment", record_id="r-1",
                    at=START + timedelta(seconds=n // 2)) for n in range(7)]
    bundle = await _search(toy, tokens, entity="RiskAssessment/r-1", _count="3")
    assert "total" not in bundle
    seen: list[dict[str, Any]] = _resources(bundle)
    pages = 1
    while (following := _next(bundle)) is not None:
        assert parse_qs(urlsplit(following).query)["_count"] == ["3"]
        response = await toy.get(following, headers=_admin(tokens))
        assert response.status_code == 200, response.text
        bundle = response.json()
        seen += _resources(bundle)
        pages += 1
    assert pages == 3
    assert sorted(r["id"] for r in seen) == sorted(made)
    keys = [(r["recorded"], r["id"]) for r in seen]
    assert keys == sorted(keys, reverse=True)


async def test_summary_count_and_total_count_every_match(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for n in range(4):
        _record(toy_sqlite, record_type="Goal", record_id="g-7", at=START + timedelta(n))
    counted = await _search(toy_sqlite, tokens, entity="Goal/g-7", _summary="count")
    assert counted["total"] == 4 and counted["entry"] == []
    assert _next(counted) is None
    zero = await _search(toy_sqlite, tokens, entity="Goal/g-7", _count="0")
    assert zero["total"] == 4 and zero["entry"] == []
    paged = await _search(toy_sqlite, tokens, entity="Goal/g-7", _count="1",
                          _total="accurate")
    assert paged["total"] == 4 and len(paged["entry"]) == 1
    second = (await toy_sqlite.get(_next(paged) or "", headers=_admin(tokens))).json()
    assert second["total"] == 4


async def test_count_is_capped_never_refused(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    _record(toy_sqlite, record_type="Goal", record_id="g-8")
    bundle = await _search(toy_sqlite, tokens, entity="Goal/g-8", _count="100000")
    cap = toy_sqlite.app.state.kit.settings.page_size_max  # type: ignore[attr-defined]
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert parse_qs(urlsplit(self_link).query)["_count"] == [str(cap)]
    assert len(bundle["entry"]) == 1


async def test_an_unknown_parameter_is_dropped_or_refused_under_strict_handling(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    _record(toy_sqlite, record_type="Goal", record_id="g-9")
    lenient = await _search(toy_sqlite, tokens, entity="Goal/g-9", colour="blue")
    assert len(lenient["entry"]) == 1
    assert all("colour" not in link["url"] for link in lenient["link"])
    strict = await toy_sqlite.get("/fhir/AuditEvent", params={"colour": "blue"},
                                  headers={**_admin(tokens), "Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.headers["content-type"] == fhir.FHIR_JSON
    assert "colour" in strict.json()["issue"][0]["diagnostics"]


async def test_only_json_is_offered(toy_sqlite: httpx.AsyncClient,
                                    tokens: TokenFactory) -> None:
    entry = _record(toy_sqlite, record_type="Goal", record_id="g-1")
    for path in ("/fhir/AuditEvent", f"/fhir/AuditEvent/{entry}"):
        xml = await toy_sqlite.get(path, headers={**_admin(tokens),
                                                  "Accept": "application/fhir+xml"})
        assert xml.status_code == 406, path
        assert xml.json()["resourceType"] == "OperationOutcome"
        asked = await toy_sqlite.get(path, params={"_format": "xml"}, headers=_admin(tokens))
        assert asked.status_code == 406, path


async def test_links_and_full_urls_are_at_the_public_base_the_caller_reached(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for n in range(2):
        _record(toy_sqlite, record_type="Goal", record_id="g-2", at=START + timedelta(n))
    public = {"Forwarded": 'proto=https;host="ehr-gw.example"', "X-Forwarded-Prefix": "/api"}
    bundle = await _search(toy_sqlite, tokens, headers=public, entity="Goal/g-2", _count="1")
    base = "https://ehr-gw.example/api/fhir"
    assert all(link["url"].startswith(f"{base}/AuditEvent?") for link in bundle["link"])
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == f"{base}/AuditEvent/{entry['resource']['id']}"


async def test_an_audit_event_is_read_by_id_with_its_narrative(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    entry = _record(toy_sqlite, record_type="CrisisPlan", record_id="plan-2")
    response = await toy_sqlite.get(f"/fhir/AuditEvent/{entry}", headers=_admin(tokens))
    assert response.status_code == 200
    assert response.headers["content-type"] == fhir.FHIR_JSON
    event = FhirAuditEvent.model_validate(response.json())
    assert event.text.status == "generated" and "CarePlan/plan-2" in event.text.div
    missing = await toy_sqlite.get("/fhir/AuditEvent/nope", headers=_admin(tokens))
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    # Who read which entry of the trail is itself in the trail.
    reads = await _search(toy_sqlite, tokens, entity=f"AuditEvent/{entry}")
    assert [r["agent"][0]["who"]["identifier"]["value"] for r in _resources(reads)] \
        == ["admin-1"]


async def test_the_next_cursor_is_the_position_just_after_the_last_entry(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    """What lets the gateway go on after any entry of a page merged from every service."""
    for n in range(3):
        _record(toy_sqlite, record_type="Goal", record_id="g-3",
                at=START + timedelta(microseconds=n * 7))
    first = await _search(toy_sqlite, tokens, entity="Goal/g-3", _count="2")
    cursor = parse_qs(urlsplit(_next(first) or "").query)["_cursor"][0]
    assert cursor == cursor_after(_resources(first)[-1])
    after_one = await _search(toy_sqlite, tokens, entity="Goal/g-3",
                              _cursor=cursor_after(_resources(first)[0]))
    assert [r["id"] for r in _resources(after_one)] \
        == [r["id"] for r in _resources(first)[1:]] + [r["id"] for r in _resources(
            await _search(toy_sqlite, tokens, entity="Goal/g-3", _cursor=cursor))]


@pytest.mark.parametrize("token", ["clinician", "manager", "system with system/*.rs"])
async def test_the_fhir_audit_trail_is_refused_to_callers_without_audit_rights(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory, token: str) -> None:
    entry = _record(toy_sqlite, record_type="Goal", record_id="g-1")
    caller = {"clinician": tokens.clinician(), "manager": tokens.manager(),
              "system with system/*.rs": tokens.system(scope="system/*.rs")}[token]
    for path in ("/fhir/AuditEvent", f"/fhir/AuditEvent/{entry}"):
        response = await toy_sqlite.get(path, headers=tokens.header(caller))
        assert response.status_code == 403, path
        assert response.json()["resourceType"] == "OperationOutcome"


# --- declared ------------------------------------------------------------------------------------


async def test_every_service_fhir_base_declares_the_audit_trail_it_serves() -> None:
    app = FastAPI()
    app.include_router(fhir.fhir_router("toy", lambda settings: []))
    app.dependency_overrides[get_settings] = lambda: Settings()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        statement = (await client.get("/fhir/metadata")).json()
    CapabilityStatement.model_validate(statement)
    [audit] = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}
    assert [p["name"] for p in audit["searchParam"]] \
        == [p.name for p in fhir.AUDIT_EVENT_SEARCH] \
        == ["_id", "entity", "patient", "agent", "date", "outcome"]
