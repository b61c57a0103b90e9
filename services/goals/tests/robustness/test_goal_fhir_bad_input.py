"""Bad input under /fhir, on SQLite and PostgreSQL: search values, cursors, versions and Goal
bodies that are not what FHIR or the goals service accept are each refused with a FHIR
OperationOutcome (never a 500), and change nothing: goals, versions and outbox rows are
counted before and after.
"""

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import GoalsApi, assert_outcome, unique
from test_goal_bad_input import BAD_CURSORS

from recovery.common.fhir import TEAM, TEAM_SYSTEM
from recovery.common.pagination import encode_cursor
from recovery.common.testing.access import row_counts
from recovery.goals import fhir

COUNTED_TABLES = ("goal", "goal_version", "goal_review", "outbox_event")


@dataclass
class Ward:
    """A person's goal that staff of their team proposed, and that staff's token."""

    api: GoalsApi
    person: str
    team: str
    staff: str
    goal: dict[str, Any]  # as a FHIR Goal

    def headers(self, etag: str | None = None) -> dict[str, str]:
        return self.api.auth(self.staff, etag)

    async def counts(self) -> dict[str, int]:
        return await row_counts(self.api.client, COUNTED_TABLES)


@pytest.fixture
async def ward(api: GoalsApi) -> AsyncIterator[Ward]:
    person, team = unique("su"), unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    proposed = await api.create(staff, service_user_id=person, team_id=team,
                                description="Cook for my friends")
    read = await api.client.get(f"/fhir/Goal/{proposed['id']}", headers=api.auth(staff))
    assert read.status_code == 200, read.text
    yield Ward(api, person, team, staff, read.json())


# --- searches ---------------------------------------------------------------------------------

#: Search values that say nothing a Goal search can answer, each named.
BAD_SEARCHES: dict[str, Callable[[Ward], dict[str, str]]] = {
    "an unknown lifecycle code": lambda w: {"lifecycle-status": "finished"},
    "an empty lifecycle code": lambda w: {"lifecycle-status": "active,"},
    "a patient with two ids": lambda w: {"patient": "Patient/a/b"},
    "a patient that is a Group": lambda w: {"patient": "Group/a"},
    "two patients at once": lambda w: {"patient": "a,b"},
    "patient and subject apart": lambda w: {"patient": w.person, "subject": "Patient/other"},
    "an empty patient": lambda w: {"patient": ""},
    "_lastUpdated not a date": lambda w: {"_lastUpdated": "yesterday"},
    "_lastUpdated with ne": lambda w: {"_lastUpdated": "ne2026-01-01"},
    "_lastUpdated month 13": lambda w: {"_lastUpdated": "2026-13-01"},
    "_total of no kind": lambda w: {"_total": "maybe"},
    "_count not a number": lambda w: {"_count": "many"},
    "_count below 0": lambda w: {"_count": "-1"},
    "_count a fraction": lambda w: {"_count": "1.5"},
    "101 ids": lambda w: {"_id": ",".join(f"goal-{n}" for n in range(101))},
}


@pytest.mark.parametrize("what", list(BAD_SEARCHES))
async def test_a_bad_search_value_is_a_400_outcome(ward: Ward, what: str) -> None:
    response = await ward.api.client.get("/fhir/Goal", params=BAD_SEARCHES[what](ward),
                                         headers=ward.headers())
    assert_outcome(response, 400, what)


@pytest.mark.parametrize("where", ["/fhir/Goal", "/fhir/Goal/{goal_id}/_history"])
async def test_an_invalid_cursor_is_a_400_outcome(ward: Ward, where: str) -> None:
    path = where.replace("{goal_id}", ward.goal["id"])
    cursors = {**BAD_CURSORS, "600 characters": "a" * 600}
    if where.endswith("/_history"):
        # A history pages by version number: a time there is as wrong as nonsense.
        cursors["a time where a version belongs"] = encode_cursor("2026-01-01T00:00:00+00:00",
                                                                  ward.goal["id"])
        del cursors["a naive time"], cursors["a time that is not a time"]
    for what, cursor in cursors.items():
        response = await ward.api.client.get(path, params={"_cursor": cursor},
                                             headers=ward.headers())
        assert_outcome(response, 400, f"{where} with {what}")


async def test_a_version_that_is_not_one_of_the_goals_is_a_404_outcome(ward: Ward) -> None:
    for version in ("0", "2", "-1", "one", "1.0", "9" * 12):
        response = await ward.api.client.get(
            f"/fhir/Goal/{ward.goal['id']}/_history/{version}", headers=ward.headers())
        assert_outcome(response, 404, f"version {version}")
        assert "etag" not in response.headers


async def test_a_goal_id_that_is_too_long_or_strange_is_a_4xx_outcome(ward: Ward) -> None:
    for goal_id in ("g" * 65, "%00", "' OR 1=1 --", "ü" * 30):
        for path in (f"/fhir/Goal/{goal_id}", f"/fhir/Goal/{goal_id}/_history",
                     f"/fhir/Goal/{goal_id}/_history/1"):
            response = await ward.api.client.get(path, headers=ward.headers())
            assert response.status_code in (400, 404, 422), f"{path}: {response.status_code}"
            assert_outcome(response, response.status_code, path)


# --- Goal bodies ------------------------------------------------------------------------------


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda goal: goal.pop(name)


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda goal: goal.update({name: value})


def _category(system: str, *codes: str) -> Callable[[dict[str, Any]], None]:
    return _set("category", [{"coding": [{"system": system, "code": code}]} for code in codes])


def _extension(extension: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda goal: goal.update(extension=[*goal.get("extension", []), extension])


#: Changes that make a valid Goal one the service must refuse (422), each named.
BAD_GOALS: dict[str, Callable[[dict[str, Any]], None]] = {
    "another resource type": _set("resourceType", "Patient"),
    "no resourceType": _drop("resourceType"),
    "no subject": _drop("subject"),
    "a subject that is a Group": _set("subject", {"reference": "Group/g-1"}),
    "a subject of a number": _set("subject", {"reference": 5}),
    "a subject naming nobody": _set("subject", {"display": "Someone"}),
    "a subject in another identifier system": _set(
        "subject", {"identifier": {"system": "urn:oid:1.2.3", "value": "x"}}),
    "a subject whose reference and identifier disagree": _set("subject", {
        "reference": "Patient/a", "identifier": {"system": "https://recovery-platform.org/fhir/"
                                                           "sid/patient-id", "value": "b"}}),
    "a subject id that is no id": _set("subject", {"reference": "Patient/has spaces"}),
    "no description": _drop("description"),
    "a description without text": _set("description", {"coding": [{"code": "x"}]}),
    "a description too long": _set("description", {"text": "x" * 2001}),
    "an element Goal does not have": _set("dueDate", "2031-01-01"),
    "a misspelt element": _set("desciption", {"text": "Cook"}),
    "a misspelt element inside one": _set("subject", {"refrence": "Patient/x"}),
    "a modifier extension": _set("modifierExtension", [{"url": "urn:x", "valueBoolean": True}]),
    "implicit rules": _set("implicitRules", "urn:rules"),
    "a life area not in our code system": _category(fhir.LIFE_AREA_SYSTEM, "outer_space"),
    "two kinds": _category(fhir.GOAL_KIND_SYSTEM, "life", "therapeutic"),
    "two life areas": _category(fhir.LIFE_AREA_SYSTEM, "home", "money"),
    "a CHIME code that is not one": _category(fhir.CHIME_SYSTEM, "joy"),
    "a coding of ours without a code": _set("category", [{"coding": [
        {"system": fhir.CHIME_SYSTEM}]}]),
    "two targets": _set("target", [{"dueDate": "2031-01-01"}, {"dueDate": "2032-01-01"}]),
    "a due date that is no day": _set("target", [{"dueDate": "2031-02-30"}]),
    "a due date of a month": _set("target", [{"dueDate": "2031-02"}]),
    "a target with a modifier": _set("target", [{"dueDate": "2031-01-01",
                                                 "modifierExtension": [{"url": "urn:x"}]}]),
    "a team extension without a value": _extension({"url": TEAM}),
    "a team extension in another system": _extension(
        {"url": TEAM, "valueIdentifier": {"system": "urn:teams", "value": "t"}}),
    "two teams": _extension({"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM,
                                                              "value": "another-team"}}),
    "why-it-matters that is not text": _extension({"url": fhir.WHY_IT_MATTERS,
                                                   "valueInteger": 3}),
    "a strength too long": _extension({"url": fhir.STRENGTH, "valueString": "s" * 501}),
    "serves-life-goal naming a Patient": _extension(
        {"url": fhir.SERVES_LIFE_GOAL, "valueReference": {"reference": "Patient/x"}}),
    "a list where an object belongs": _set("description", [{"text": "Cook"}]),
}


def _bad(ward: Ward, what: str) -> dict[str, Any]:
    goal = json.loads(json.dumps(ward.goal))
    BAD_GOALS[what](goal)
    return goal


@pytest.mark.parametrize("what", list(BAD_GOALS))
async def test_a_goal_the_service_cannot_take_is_a_422_outcome_and_changes_nothing(
        ward: Ward, what: str) -> None:
    before = await ward.counts()
    client, goal_id = ward.api.client, ward.goal["id"]
    for method, path, etag in (("POST", "/fhir/Goal", None),
                               ("PUT", f"/fhir/Goal/{goal_id}", 'W/"1"')):
        response = await client.request(method, path, json=_bad(ward, what),
                                         headers=ward.headers(etag))
        outcome = assert_outcome(response, 422, f"{method} with {what}")
        assert any(issue.get("expression") for issue in outcome["issue"]), outcome
    assert await ward.counts() == before


MALFORMED = {
    "cut short": b'{"resourceType": "Goal", ',
    "not JSON at all": b"resourceType=Goal",
    "single quotes": b"{'resourceType': 'Goal'}",
    "not UTF-8": b'{"resourceType": "Goal\xff\xfe"}',
}


async def test_malformed_json_is_a_400_outcome_and_changes_nothing(ward: Ward) -> None:
    before = await ward.counts()
    for method, path in (("POST", "/fhir/Goal"), ("PUT", f"/fhir/Goal/{ward.goal['id']}")):
        for what, content in MALFORMED.items():
            response = await ward.api.client.request(
                method, path, content=content,
                headers={**ward.headers('W/"1"'), "Content-Type": "application/fhir+json"})
            assert_outcome(response, 400, f"{method}, {what}")
        for what, content in {"a list": b"[]", "a string": b'"Goal"', "null": b"null",
                              "nothing": b""}.items():
            response = await ward.api.client.request(
                method, path, content=content,
                headers={**ward.headers('W/"1"'), "Content-Type": "application/fhir+json"})
            assert_outcome(response, 422, f"{method}, {what}")
    assert await ward.counts() == before


async def test_an_oversized_goal_is_a_413_outcome_and_changes_nothing(ward: Ward) -> None:
    before = await ward.counts()
    goal = {**ward.goal, "note": [{"text": "x" * 300_000}]}
    for method, path in (("POST", "/fhir/Goal"), ("PUT", f"/fhir/Goal/{ward.goal['id']}")):
        response = await ward.api.client.request(method, path, json=goal,
                                                 headers=ward.headers('W/"1"'))
        assert_outcome(response, 413, method)
    assert await ward.counts() == before


async def test_an_update_whose_goal_is_another_is_a_400_outcome(ward: Ward) -> None:
    before = await ward.counts()
    for goal_id in ("another-goal", None):
        goal = {**ward.goal, "id": goal_id} if goal_id else {
            k: v for k, v in ward.goal.items() if k != "id"}
        response = await ward.api.client.put(f"/fhir/Goal/{ward.goal['id']}", json=goal,
                                             headers=ward.headers('W/"1"'))
        assert_outcome(response, 400, f"id {goal_id}")
    assert await ward.counts() == before


async def test_an_if_none_exist_that_names_no_search_is_a_400_outcome(ward: Ward) -> None:
    before = await ward.counts()
    goal = {k: v for k, v in ward.goal.items() if k not in ("id", "meta", "text")}
    for criteria in ("", "_count=1", "colour=blue", f"patient={ward.person}&colour=blue",
                     "lifecycle-status=finished", "_lastUpdated=soon"):
        response = await ward.api.client.post(
            "/fhir/Goal", json=goal, headers={**ward.headers(), "If-None-Exist": criteria})
        assert_outcome(response, 400, f"If-None-Exist: {criteria}")
    assert await ward.counts() == before


async def test_a_goal_sent_as_form_data_is_a_4xx_outcome(ward: Ward) -> None:
    before = await ward.counts()
    response = await ward.api.client.post(
        "/fhir/Goal", content=b"resourceType=Goal",
        headers={**ward.headers(), "Content-Type": "application/x-www-form-urlencoded"})
    assert 400 <= response.status_code < 500
    assert_outcome(response, response.status_code, "form data")
    assert await ward.counts() == before

