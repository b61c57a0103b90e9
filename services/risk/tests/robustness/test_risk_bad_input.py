"""Bad input to every changing risk operation gets a clear 4xx problem and changes nothing,
on SQLite and PostgreSQL."""

from typing import Any

import pytest
from risk_api import RiskApi, area, unique

PROBLEM = "application/problem+json"
TOO_LONG = "x" * 4001

#: (operation, body) pairs that are wrong in one way each.
BAD_BODIES: dict[str, tuple[str, str, Any]] = {
    "areas empty": ("PATCH", "", {"areas": []}),
    "areas null": ("PATCH", "", {"areas": None}),
    "an unknown area": ("PATCH", "", {"areas": [area("mood_swings")]}),
    "the same area twice": ("PATCH", "", {"areas": [area(), area()]}),
    "a view too long": ("PATCH", "", {"areas": [area(person=TOO_LONG)]}),
    "an empty view": ("PATCH", "", {"areas": [area(person="")]}),
    "views_agree not a boolean": ("PATCH", "", {"areas": [{**area(), "views_agree": "sort of"}]}),
    "an unknown field": ("PATCH", "", {"colour": "blue"}),
    "moving it to another team": ("PATCH", "", {"team_id": "team-x"}),
    "a date that is not a date": ("PATCH", "", {"review_date": "next week"}),
    "a list for an object": ("PATCH", "", ["review_date"]),
    "a NUL character": ("PATCH", "", {"areas": [area(person="bad\u0000words")]}),
    "a score": ("PATCH", "", {"risk_score": 12}),
    "a level in the safety plan": ("PATCH", "", {"safety_plan": {"risk_level": "low"}}),
    "a malformed hash": ("POST", "/signatures", {"content_hash": "md5:abc"}),
    "no hash": ("POST", "/signatures", {}),
    "a decision without a goal": ("POST", "/positive-risk-decisions", {
        "decision": "Go", "safeguards": ["Phone"], "review_date": "2031-01-01"}),
    "a decision with a goal id of another shape": ("POST", "/positive-risk-decisions", {
        "goal_id": "a b", "decision": "Go", "safeguards": ["Phone"],
        "review_date": "2031-01-01"}),
    "a decision with a probability of harm": ("POST", "/positive-risk-decisions", {
        "goal_id": "g-1", "decision": "Go", "safeguards": ["Phone"],
        "review_date": "2031-01-01", "harms": {"clinician": ["Falls"],
                                                "probability": 0.3}}),
}


@pytest.mark.parametrize("what", list(BAD_BODIES))
async def test_bad_input_is_a_4xx_problem_and_changes_nothing(api: RiskApi, what: str) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team)
    method, suffix, body = BAD_BODIES[what]
    path = f"/v1/risk-assessments/{drafted['id']}{suffix}"
    response = await api.send(method, path, clinician, etag='"1"', json=body)
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code}"
    assert response.headers["content-type"] == PROBLEM, what
    after = await api.read(clinician, drafted["id"])
    assert after.json() == drafted and after.headers["etag"] == '"1"'


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"", b"null"])
async def test_a_body_that_is_not_a_json_object_is_refused(api: RiskApi, raw: bytes) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    response = await api.client.post(
        "/v1/risk-assessments", content=raw,
        headers={**api.auth(clinician), "Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == PROBLEM
    listed = await api.client.get("/v1/risk-assessments", params={"team_id": team},
                                  headers=api.auth(clinician))
    assert listed.json()["items"] == []


async def test_a_bad_cursor_or_an_unknown_version_is_a_clear_4xx(api: RiskApi) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=unique("su"), team_id=team)
    cursor = await api.client.get("/v1/risk-assessments", params={"cursor": "garbage"},
                                  headers=api.auth(clinician))
    assert cursor.status_code == 400
    version = await api.send("GET", f"/v1/risk-assessments/{drafted['id']}/versions/7",
                             clinician)
    assert version.status_code == 404
