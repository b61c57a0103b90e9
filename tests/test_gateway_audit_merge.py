"""How the gateway routes and merges AuditEvent searches, without services: the owner of the
record an entity names, and pages merged newest first that never skip an entry."""

from datetime import UTC, datetime, timedelta
from typing import Any

from recovery.common import fhir
from recovery.common.audit_export import cursor_after
from recovery.gateway.fhir import OWNERS
from recovery.gateway.fhir_audit import entity_owner, merged_page

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _event(ident: str, seconds: int) -> dict[str, Any]:
    recorded = START + timedelta(seconds=seconds)
    return {"resourceType": "AuditEvent", "id": ident,
            "recorded": recorded.isoformat(timespec="microseconds").replace("+00:00", "Z")}


def _bundle(*events: dict[str, Any], more: bool = False) -> dict[str, Any]:
    links = [{"relation": "self", "url": "x"}]
    if more:
        links.append({"relation": "next", "url": "x&_cursor=c"})
    return {"resourceType": "Bundle", "link": links,
            "entry": [{"resource": event} for event in events]}


def _search(*entities: str) -> fhir.Search:
    return fhir.Search("AuditEvent", "http://gateway/fhir", values={"entity": list(entities)})


def test_a_search_naming_records_of_one_service_goes_to_that_service_only() -> None:
    assert entity_owner(_search("CarePlan/p-1"), OWNERS) == "crisis-plans"
    assert entity_owner(_search("https://ehr.example/fhir/Goal/g-1"), OWNERS) == "goals"
    assert entity_owner(_search("Practitioner/s-1", "CareTeam/t-1"), OWNERS) == "workforce"
    for spread in (_search("CarePlan/p-1,Goal/g-1"), _search("Patient/su-1"),
                   _search("AuditEvent/a-1"), _search("g-1"), _search()):
        assert entity_owner(spread, OWNERS) is None


def test_a_merged_page_is_the_newest_entries_and_goes_on_after_its_last() -> None:
    goals = _bundle(_event("g3", 30), _event("g2", 20), more=True)
    plans = _bundle(_event("p4", 40), _event("p1", 10))
    page, cursor = merged_page([goals, plans], 3)
    assert [e["id"] for e in page] == ["p4", "g3", "g2"]
    assert cursor == cursor_after(page[-1])
    whole, none_left = merged_page([_bundle(_event("g1", 5)), _bundle(_event("p1", 6))], 3)
    assert [e["id"] for e in whole] == ["p1", "g1"] and none_left is None


def test_a_merged_page_takes_nothing_older_than_a_service_with_more_has_shown() -> None:
    """A service capped below the page size returns fewer entries with a next link: its next
    entries may be newer than the other services' older ones, so those wait."""
    capped = _bundle(_event("c9", 90), more=True)
    others = _bundle(_event("o8", 80), _event("o7", 70))
    page, cursor = merged_page([capped, others], 3)
    assert [e["id"] for e in page] == ["c9"]
    assert cursor == cursor_after(page[0])


def test_entries_recorded_in_the_same_instant_are_ordered_by_id() -> None:
    page, _ = merged_page([_bundle(_event("a", 1)), _bundle(_event("b", 1))], 2)
    assert [e["id"] for e in page] == ["b", "a"]
