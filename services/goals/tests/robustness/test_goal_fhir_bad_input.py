"""Bad input under /fhir, on SQLite and PostgreSQL: search values, cursors and versions that
are not what FHIR or the goals service accept are each refused with a FHIR OperationOutcome
(never a 500).
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import GoalsApi, assert_outcome, unique
from test_goal_bad_input import BAD_CURSORS

from recovery.common.pagination import encode_cursor
from recovery.common.testing.access import row_counts

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
