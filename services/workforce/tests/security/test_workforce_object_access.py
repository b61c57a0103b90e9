"""Object-level access on every workforce endpoint, on SQLite and PostgreSQL: staff reach
their own teams' records, figures need a manager or admin of the team, supervision and
appraisals are the person's and their managers', a lived-experience declaration is the
person's and their admins'; a token without the scope gets 403. Every refused request is
followed by reading everything back to show it changed nothing, and by the very same request
from someone allowed, which goes through.
"""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from workforce_api import MANAGE, WorkforceApi, auth, unique
from workforce_operations import (
    Operation,
    fill_path,
    protected_operations,
    query_for,
    valid_body,
)

from recovery.common.testing.access import error_media_type, problem_kind

#: Every operation, and how an outsider is refused: 404 where a record is named (records of
#: others are not revealed), 403 where the caller asks to create in, or count, a team.
REFUSALS: dict[str, int] = {
    "POST /v1/teams": 403,
    "GET /v1/teams/{team_id}": 404,
    "PUT /v1/teams/{team_id}/recovery-lead": 404,
    "GET /v1/teams/{team_id}/staff": 404,
    "POST /v1/staff": 403,
    "GET /v1/staff/{staff_id}": 404,
    "PATCH /v1/staff/{staff_id}": 404,
    "POST /v1/staff/{staff_id}/move": 404,
    "POST /v1/staff/{staff_id}/leave": 404,
    "PUT /v1/staff/{staff_id}/lived-experience": 404,
    "GET /v1/staff/{staff_id}/lived-experience": 404,
    "POST /v1/care-contacts": 404,
    "GET /v1/teams/{team_id}/peer-share": 403,
    "GET /v1/peer-share": 403,
    "GET /v1/teams/{team_id}/peer-support-billing": 403,
    "GET /v1/teams/{team_id}/skill-mix": 403,
    "GET /v1/teams/{team_id}/readiness": 403,
    "POST /v1/supervision-sessions": 404,
    "GET /v1/staff/{staff_id}/supervision-sessions": 404,
    "POST /v1/appraisals": 404,
    "GET /v1/staff/{staff_id}/appraisals": 404,
    "POST /v1/recruitment-panels": 403,
    "GET /v1/teams/{team_id}/recruitment-panels": 404,
    "POST /v1/teams/{team_id}/climate-survey-responses": 404,
    "GET /fhir/Practitioner/{staff_id}": 404,
    "GET /fhir/PractitionerRole/{staff_id}": 404,
    "GET /fhir/CareTeam/{team_id}": 404,
}
#: How a plain clinician of the team is refused where the act is a manager's, or the record
#: private to the person: 403 where they see the record but may not do this with it.
TEAM_STAFF_REFUSALS: dict[str, int] = {
    "POST /v1/teams": 403,
    "PUT /v1/teams/{team_id}/recovery-lead": 403,
    "POST /v1/staff": 403,
    "PATCH /v1/staff/{staff_id}": 403,
    "POST /v1/staff/{staff_id}/move": 403,
    "POST /v1/staff/{staff_id}/leave": 403,
    "PUT /v1/staff/{staff_id}/lived-experience": 404,
    "GET /v1/staff/{staff_id}/lived-experience": 404,
    "GET /v1/teams/{team_id}/peer-share": 403,
    "GET /v1/peer-share": 403,
    "GET /v1/teams/{team_id}/peer-support-billing": 403,
    "GET /v1/teams/{team_id}/skill-mix": 403,
    "GET /v1/teams/{team_id}/readiness": 403,
    "POST /v1/appraisals": 403,
    "GET /v1/staff/{staff_id}/supervision-sessions": 404,
    "GET /v1/staff/{staff_id}/appraisals": 404,
    "POST /v1/recruitment-panels": 403,
}
#: Holds no record of anyone: every signed-in caller with a CareTeam scope may read it.
OPEN_TO_ALL_STAFF = {"GET /v1/climate-survey"}
#: Organisation-wide figures count every team and name none: managers and admins of any
#: team may read them.
ORGANISATION_FIGURES = {"GET /v1/peer-share"}


@dataclass
class Home:
    """A team with its staff and records, and the people who must not reach them."""

    api: WorkforceApi
    team: str
    other_team: str
    new_team: str
    staff_id: str
    supervisor_id: str

    def allowed(self, operation: str) -> str:
        """A caller the operation is for."""
        tokens = self.api.tokens
        if operation == "PUT /v1/staff/{staff_id}/lived-experience":
            return tokens.peer_specialist(self.staff_id, [self.team])  # the person alone
        if operation == "POST /v1/teams":
            return self.api.manager(self.new_team)
        return tokens("admin", "admin-home", teams=[self.team, self.other_team])

    def intruders(self, operation: str) -> dict[str, str]:
        tokens = self.api.tokens
        callers = {
            "a service user": tokens.service_user(unique("su")),
            "a peer specialist of no team": tokens("peer_specialist", "peer-out", teams=[]),
            "a clinician of another team claiming system scopes": tokens.clinician(
                "staff-sys", [self.other_team], scope="system/*.cruds"),
        }
        if operation not in ORGANISATION_FIGURES:
            callers["a manager of another team"] = tokens(
                "manager", "manager-out", teams=[self.other_team], scope=MANAGE)
            callers["an admin of another team"] = tokens("admin", "admin-out",
                                                         teams=[self.other_team])
        return callers

    def request(self, operation: str) -> tuple[str, str, Any, dict[str, str]]:
        method, template = operation.split(" ", 1)
        op = Operation(method.lower(), template)
        path = fill_path(template, team_id=self.team, staff_id=self.staff_id)
        body = valid_body(op, team_id=self.team, staff_id=self.staff_id,
                          other_team=self.other_team, supervisor_id=self.supervisor_id,
                          new_team=self.new_team)
        return method, path, body, query_for(op)

    async def read_back(self) -> tuple[str, ...]:
        headers = auth(self.api.tokens("admin", "admin-home", teams=[self.team]))
        texts = []
        for path in (f"/v1/teams/{self.team}", f"/v1/staff/{self.staff_id}",
                     f"/v1/teams/{self.team}/staff?include_left=true",
                     f"/v1/teams/{self.team}/peer-share", f"/v1/teams/{self.team}/readiness",
                     f"/v1/teams/{self.team}/recruitment-panels",
                     f"/v1/staff/{self.staff_id}/supervision-sessions",
                     f"/v1/staff/{self.staff_id}/appraisals",
                     f"/v1/staff/{self.staff_id}/lived-experience"):
            response = await self.api.client.get(path, headers=headers)
            assert response.status_code == 200, f"{path}: {response.text}"
            texts.append(response.text)
        teams = await self.api.client.get(f"/v1/teams/{self.new_team}",
                                          headers=auth(self.api.manager(self.new_team)))
        texts.append(str(teams.status_code))
        return tuple(texts)


async def home(api: WorkforceApi) -> Home:
    team, other = await api.team(), await api.team()
    staff_id = unique("staff")
    await api.staff(team, staff_id=staff_id, role_type="peer_specialist",
                    profession="peer_support")
    supervisor = await api.staff(team)
    return Home(api, team, other, unique("team"), staff_id, supervisor["id"])


async def test_the_refusal_table_names_every_operation_the_service_documents(
        api: WorkforceApi) -> None:
    openapi = (await api.client.get("/openapi.json")).json()
    documented = {str(op) for op in protected_operations(openapi) if not op.is_audit}
    assert documented == set(REFUSALS) | OPEN_TO_ALL_STAFF


def _assert_problem(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == error_media_type(response), what
    assert "etag" not in response.headers, what


@pytest.mark.parametrize("operation", sorted(REFUSALS))
async def test_nobody_outside_the_team_reaches_it_and_nothing_changes(
        api: WorkforceApi, operation: str) -> None:
    place = await home(api)
    method, path, body, params = place.request(operation)
    before = await place.read_back()
    refusals = {intruder: (token, REFUSALS[operation])
                for intruder, token in place.intruders(operation).items()}
    if operation in TEAM_STAFF_REFUSALS:
        refusals["a clinician of the team"] = (api.tokens.clinician("staff-in", [place.team]),
                                               TEAM_STAFF_REFUSALS[operation])
    for intruder, (token, expected) in refusals.items():
        for etag in ('"1"', None):
            response = await api.client.request(method, path, json=body, params=params,
                                                headers=auth(token, etag))
            _assert_problem(response, expected, f"{operation} by {intruder}")
    assert await place.read_back() == before
    # The control: the very same request from someone it is for goes through.
    done = await api.client.request(method, path, json=body, params=params,
                                    headers=auth(place.allowed(operation), '"1"'))
    assert done.status_code in (200, 201), f"{operation}: {done.text}"


@pytest.mark.parametrize("operation", sorted(REFUSALS | dict.fromkeys(OPEN_TO_ALL_STAFF, 0)))
async def test_a_token_without_the_scope_is_403_even_for_an_admin_of_the_team(
        api: WorkforceApi, operation: str) -> None:
    place = await home(api)
    method, path, body, params = place.request(operation)
    before = await place.read_back()
    token = api.tokens("admin", place.staff_id, teams=[place.team, place.new_team],
                       scope="user/Goal.cruds")
    response = await api.client.request(method, path, json=body, params=params,
                                        headers=auth(token, '"1"'))
    _assert_problem(response, 403, operation)
    assert problem_kind(response) == "insufficient-scope", operation
    assert await place.read_back() == before


async def test_organisation_figures_are_for_managers_and_admins_only(api: WorkforceApi) -> None:
    place = await home(api)
    for token in (api.tokens.clinician("c-1", [place.team]),
                  api.tokens.service_user(unique("su"))):
        _assert_problem(await api.client.get("/v1/peer-share", headers=auth(token)), 403,
                        "organisation peer share")
    manager = api.manager(place.other_team)
    assert (await api.client.get("/v1/peer-share", headers=auth(manager))).status_code == 200
