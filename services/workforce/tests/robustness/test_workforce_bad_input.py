"""Bad input on every body-taking workforce operation is a 4xx problem document, never a 500,
and changes nothing, on both databases."""

from typing import Any

import pytest
from workforce_api import WorkforceApi, auth, unique

from recovery.common.testing.access import error_media_type

#: Each body-taking operation with a valid body; {team}, {other} and {staff} are filled in.
VALID: dict[str, dict[str, Any]] = {
    "POST /v1/teams": {"id": "{new}", "name": "Assertive outreach"},
    "PUT /v1/teams/{team}/recovery-lead": {"staff_id": "{staff}"},
    "POST /v1/staff": {"team_id": "{team}", "display_name": "Al", "profession": "nursing",
                       "grade": "band-5", "role_type": "professional", "fte": 1,
                       "start_date": "2024-01-01"},
    "PATCH /v1/staff/{staff}": {"fte": 0.5},
    "POST /v1/staff/{staff}/move": {"team_id": "{other}", "effective_date": "2025-01-01"},
    "POST /v1/staff/{staff}/leave": {"end_date": "2025-01-01"},
    "PUT /v1/staff/{staff}/lived-experience": {"declared": True},
    "POST /v1/care-contacts": {"staff_id": "{staff}", "service_user_id": "su-1",
                               "minutes": 30, "occurred_on": "2025-01-01"},
    "POST /v1/supervision-sessions": {"staff_id": "{staff}", "supervisor_id": "s-2",
                                      "held_on": "2025-01-01", "recovery_focused": True,
                                      "quality": 4},
    "POST /v1/appraisals": {"staff_id": "{staff}", "held_on": "2025-01-01",
                            "service_user_feedback_included": True},
    "POST /v1/recruitment-panels": {"team_id": "{team}", "role_type": "professional",
                                    "held_on": "2025-01-01", "members": ["service_user"]},
    "POST /v1/teams/{team}/climate-survey-responses": {"responded_on": "2025-01-01",
                                                       "answers": [3, 3, 3, 3, 3]},
}

#: Field values the domain refuses, per operation.
BAD_VALUES: dict[str, list[dict[str, Any]]] = {
    "POST /v1/teams": [{"id": "has spaces"}, {"id": ""}, {"name": ""}, {"id": "x" * 65}],
    "PUT /v1/teams/{team}/recovery-lead": [{"staff_id": None}],
    "POST /v1/staff": [{"fte": 0}, {"fte": 1.5}, {"fte": "full"}, {"profession": "wizard"},
                       {"role_type": "boss"}, {"start_date": "2025-02-30"},
                       {"grade": "<script>"}, {"display_name": "x" * 201}],
    "PATCH /v1/staff/{staff}": [{"fte": 0}, {"fte": None}, {"display_name": None},
                                {"display_name": ""}, {"fte": "half"}],
    "POST /v1/staff/{staff}/move": [{"effective_date": "yesterday"}, {"team_id": None}],
    "POST /v1/staff/{staff}/leave": [{"end_date": 20250101}],
    "PUT /v1/staff/{staff}/lived-experience": [{"declared": "maybe"}, {"declared": None}],
    "POST /v1/care-contacts": [{"minutes": 0}, {"minutes": 721}, {"minutes": 1.5},
                               {"mode": "telepathy"}, {"service_user_id": "a b"},
                               {"occurred_on": "2999-01-01"}],
    "POST /v1/supervision-sessions": [{"quality": 0}, {"quality": 6},
                                      {"recovery_focused": "yes please"},
                                      {"supervisor_id": "{staff}"}],
    "POST /v1/appraisals": [{"held_on": "2999-01-01"},
                            {"service_user_feedback_included": None}],
    "POST /v1/recruitment-panels": [{"members": []}, {"members": ["dragon"]},
                                    {"members": ["staff"] * 13}],
    "POST /v1/teams/{team}/climate-survey-responses": [{"answers": [3, 3, 3, 3]},
                                                       {"answers": [0, 3, 3, 3, 3]},
                                                       {"answers": [3, 3, 3, 3, 6]},
                                                       {"responded_on": "2999-01-01"}],
}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, name in names.items():
            value = value.replace("{" + key + "}", name)
        return value
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


async def _snapshot(api: WorkforceApi, names: dict[str, str]) -> tuple[str, ...]:
    admin = auth(api.tokens("admin", "admin-bad", teams=[names["team"], names["other"]]))
    texts = []
    for path in (f"/v1/teams/{names['team']}", f"/v1/staff/{names['staff']}",
                 f"/v1/teams/{names['team']}/staff?include_left=true",
                 f"/v1/teams/{names['team']}/peer-share", f"/v1/teams/{names['team']}/readiness",
                 f"/v1/teams/{names['team']}/recruitment-panels",
                 f"/v1/staff/{names['staff']}/supervision-sessions",
                 f"/v1/staff/{names['staff']}/appraisals",
                 f"/v1/staff/{names['staff']}/lived-experience"):
        response = await api.client.get(path, headers=admin)
        assert response.status_code == 200, f"{path}: {response.text}"
        texts.append(response.text)
    texts.append(str((await api.client.get(f"/v1/teams/{names['new']}", headers=admin))
                     .status_code))
    return tuple(texts)


def _assert_refused(response: Any, what: str) -> None:
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == error_media_type(response), what


@pytest.mark.parametrize("operation", sorted(VALID))
async def test_bad_bodies_are_refused_with_a_problem_and_change_nothing(
        api: WorkforceApi, operation: str) -> None:
    team, other = await api.team(), await api.team()
    staff_id = unique("staff")
    await api.staff(team, staff_id=staff_id)
    names = {"team": team, "other": other, "staff": staff_id, "new": unique("team")}
    method, template = operation.split(" ", 1)
    path = _fill(template, names)
    token = (api.tokens.clinician(staff_id, [team]) if template.endswith("lived-experience")
             else api.tokens("admin", "admin-bad", teams=[team, other, names["new"]]))
    valid = _fill(VALID[operation], names)
    before = await _snapshot(api, names)
    headers = {**auth(token, '"1"'), "Content-Type": "application/json"}
    raw_bodies = [b"", b"not json", b"[]", b"null", b'{"a": 1', b"\xff\xfe",
                  b'{"x": "\\u0000"}']
    for raw in raw_bodies:
        response = await api.client.request(method, path, content=raw, headers=headers)
        _assert_refused(response, f"{operation} with {raw!r}")
    variants: list[dict[str, Any]] = [{}, {**valid, "unexpected": 1}]
    variants += [{key: value for key, value in valid.items() if key != name} for name in valid]
    variants += [{**valid, **_fill(bad, names)} for bad in BAD_VALUES[operation]]
    variants.append({**valid, next(iter(valid)): "\u0000"})
    for body in variants:
        response = await api.client.request(method, path, json=body,
                                            headers=auth(token, '"1"'))
        _assert_refused(response, f"{operation} with {body}")
    assert await _snapshot(api, names) == before
    # The control: the valid body goes through.
    done = await api.client.request(method, path, json=valid, headers=auth(token, '"1"'))
    assert done.status_code in (200, 201), f"{operation}: {done.text}"


async def test_bad_query_parameters_are_refused_with_a_problem(api: WorkforceApi) -> None:
    team = await api.team()
    admin = auth(api.admin(team))
    for path, params in ((f"/v1/teams/{team}/peer-share", {"months": 0}),
                         (f"/v1/teams/{team}/peer-share", {"months": 37}),
                         (f"/v1/teams/{team}/peer-support-billing", {}),
                         (f"/v1/teams/{team}/peer-support-billing",
                          {"from": "2025-01-01", "to": "2025-13-01"}),
                         (f"/v1/teams/{team}/peer-support-billing",
                          {"from": "2020-01-01", "to": "2025-01-01"}),
                         (f"/v1/teams/{team}/peer-support-billing",
                          {"from": "2025-01-01", "to": "2025-01-02", "format": "xml"}),
                         (f"/v1/teams/{team}/staff", {"cursor": "garbage"}),
                         (f"/v1/teams/{team}/recruitment-panels", {"cursor": "garbage"}),
                         (f"/v1/teams/{team}/staff", {"limit": 0})):
        _assert_refused(await api.client.get(path, params=params, headers=admin),
                        f"{path} {params}")
