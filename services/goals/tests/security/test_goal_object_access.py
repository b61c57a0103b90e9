"""Object-level access on every goals endpoint, on SQLite and PostgreSQL: a service user
reaches only their own goals, staff only their teams' goals, team figures only the team's
managers and admins; a token without the Goal scope gets 403. Every refused change is read
back with an allowed token to show it changed nothing.
"""

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
from goal_operations import (
    PROBLEM,
    Operation,
    assert_refused,
    fhir_goal,
    fill_path,
    protected_operations,
    valid_body,
)

from recovery.common.testing.access import assert_problem, intruders
from recovery.common.testing.plugin import TokenFactory, auth, unique


class GoalsClient(Protocol):
    """The ``api`` fixture of the goals tests: an in-process client and token factories."""

    client: httpx.AsyncClient
    tokens: TokenFactory


SECRET_WORDS = "I want to see my daughter at weekends"


@dataclass
class Household:
    """Alice's goals in her team, and the people who must not reach them."""

    api: GoalsClient
    team: str
    other_team: str
    alice: str
    bob: str
    goal: dict[str, Any]  # Alice's active goal, with a step and a review
    proposal: dict[str, Any]  # a goal staff proposed to Alice, awaiting her answer

    @property
    def alice_token(self) -> str:
        return self.api.tokens.service_user(self.alice)

    @property
    def team_staff(self) -> str:
        return self.api.tokens.clinician("staff-in-team", [self.team])

    def intruders(self) -> dict[str, str]:
        """Callers with every scope they could need, but no claim on Alice's goals."""
        return intruders(self.api.tokens, other_person=self.bob, other_team=self.other_team)

    async def read_back(self, goal_id: str) -> tuple[str, str, int, int]:
        """The goal as it stands (body and ETag) and how many versions and reviews it has."""
        client, headers = self.api.client, auth(self.team_staff)
        goal = await client.get(f"/v1/goals/{goal_id}", headers=headers)
        versions = await client.get(f"/v1/goals/{goal_id}/versions",
                                    params={"limit": 200}, headers=headers)
        reviews = await client.get(f"/v1/goals/{goal_id}/reviews",
                                   params={"limit": 200}, headers=headers)
        assert goal.status_code == versions.status_code == reviews.status_code == 200
        return (goal.text, goal.headers["etag"], len(versions.json()["items"]),
                len(reviews.json()["items"]))

    async def goal_ids_of_alice(self) -> set[str]:
        listed = await self.api.client.get("/v1/goals", headers=auth(self.team_staff), params={
            "service_user_id": self.alice, "limit": 200,
            "status": ["proposed", "active", "on-hold", "rejected", "cancelled", "completed"]})
        assert listed.status_code == 200
        return {goal["id"] for goal in listed.json()["items"]}


async def household(api: GoalsClient) -> Household:
    team, other_team, alice, bob = unique("team"), unique("team"), unique("su"), unique("su")
    client, tokens = api.client, api.tokens
    own = auth(tokens.service_user(alice))
    created = await client.post("/v1/goals", headers=own, json={
        "service_user_id": alice, "team_id": team, "description": SECRET_WORDS,
        "why_it_matters": "She is growing up fast",
        "steps": [{"who": "service_user", "what": "Call the family court"}]})
    assert created.status_code == 201, created.text
    staff = tokens.clinician("staff-in-team", [team])
    reviewed = await client.post(f"/v1/goals/{created.json()['id']}/reviews",
                                 headers=auth(staff, '"1"'),
                                 json={"achievement_status": "improving", "rating": 6})
    assert reviewed.status_code == 201, reviewed.text
    goal = (await client.get(f"/v1/goals/{created.json()['id']}", headers=own)).json()
    proposal = await client.post("/v1/goals", headers=auth(staff), json={
        "service_user_id": alice, "team_id": team, "description": "Sleep before midnight"})
    assert proposal.status_code == 201, proposal.text
    # Bob has goals of his own in the other team, so his lists are not empty by accident.
    bobs = await client.post("/v1/goals", headers=auth(tokens.service_user(bob)), json={
        "service_user_id": bob, "team_id": other_team, "description": "Run 5k"})
    assert bobs.status_code == 201, bobs.text
    return Household(api, team, other_team, alice, bob, goal, proposal.json())


# --- reading one goal ---------------------------------------------------------------------

READS = {
    "the goal": "/v1/goals/{goal_id}",
    "its reviews": "/v1/goals/{goal_id}/reviews",
    "its versions": "/v1/goals/{goal_id}/versions",
    "the FHIR Goal": "/fhir/Goal/{goal_id}",
    "a version of the FHIR Goal": "/fhir/Goal/{goal_id}/_history/1",
    "the FHIR Goal's history": "/fhir/Goal/{goal_id}/_history",
    "the person as a FHIR Patient": "/fhir/Patient/{person}",
}


@pytest.mark.parametrize("what", list(READS))
async def test_nobody_but_the_person_and_their_team_reads_a_goal(api: GoalsClient,
                                                                 what: str) -> None:
    home = await household(api)
    path = READS[what].replace("{goal_id}", home.goal["id"]).replace("{person}", home.alice)
    for caller, token in (("Alice", home.alice_token), ("her team", home.team_staff)):
        allowed = await api.client.get(path, headers=auth(token))
        assert allowed.status_code == 200, f"{caller}: {allowed.text}"
    # Refused reads look exactly like reads of a goal (or person) that does not exist.
    unknown = str(uuid.uuid4())
    nowhere = await api.client.get(
        READS[what].replace("{goal_id}", unknown).replace("{person}", unknown),
        headers=auth(home.team_staff))
    assert_refused(nowhere, 404, "not-found", f"{what} of no goal")
    for intruder, token in home.intruders().items():
        refused = await api.client.get(path, headers=auth(token))
        assert_refused(refused, 404, "not-found", f"{what} read by {intruder}")
        assert SECRET_WORDS not in refused.text and home.alice not in refused.text
        assert "etag" not in refused.headers, f"{what} read by {intruder} shows a version"
        assert _without_instance(refused.json()) == _without_instance(nowhere.json())


def _without_instance(problem: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in problem.items() if key != "instance"}


# --- changing a goal ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    method: str
    path: str
    body: Any  # or a function of the household and the goal changed
    of_proposal: bool = False  # accept and decline answer a proposal

    def body_for(self, home: "Household", goal: dict[str, Any]) -> Any:
        return self.body(home, goal) if callable(self.body) else self.body


def _fhir_replacement(home: "Household", goal: dict[str, Any]) -> dict[str, Any]:
    """Alice's goal as a FHIR Goal, with a new target date."""
    return fhir_goal(service_user_id=home.alice, team_id=home.team, id=goal["id"],
                     description=goal["description"], target=[{"dueDate": "2031-01-01"}])


CHANGES = {
    "change what it says": Change("PATCH", "/v1/goals/{goal_id}",
                                  {"why_it_matters": "Because", "target_date": "2031-01-01"}),
    "accept it": Change("POST", "/v1/goals/{goal_id}/accept", None, of_proposal=True),
    "decline it": Change("POST", "/v1/goals/{goal_id}/decline", {"reason": "No"},
                         of_proposal=True),
    "put it on hold": Change("POST", "/v1/goals/{goal_id}/status", {"status": "on-hold"}),
    "mark it entered in error": Change("POST", "/v1/goals/{goal_id}/status",
                                       {"status": "entered-in-error"}),
    "add a step": Change("POST", "/v1/goals/{goal_id}/steps",
                         {"who": "service_user", "what": "Write a letter"}),
    "mark a step done": Change("PATCH", "/v1/goals/{goal_id}/steps/{step_id}", {"done": True}),
    "record a review": Change("POST", "/v1/goals/{goal_id}/reviews",
                              {"achievement_status": "worsening", "own_words": "Bad week"}),
    "replace it through FHIR": Change("PUT", "/fhir/Goal/{goal_id}", _fhir_replacement),
}


@pytest.mark.parametrize("what", list(CHANGES))
async def test_nobody_outside_the_persons_reach_changes_a_goal_and_it_stays_as_it_was(
        api: GoalsClient, what: str) -> None:
    home = await household(api)
    change = CHANGES[what]
    goal = home.proposal if change.of_proposal else home.goal
    path = change.path.replace("{goal_id}", goal["id"])
    if goal["steps"]:
        path = path.replace("{step_id}", goal["steps"][0]["id"])
    etag = f'"{goal["version"]}"'
    body = change.body_for(home, goal)
    before = await home.read_back(goal["id"])
    for intruder, token in home.intruders().items():
        # A stale or missing If-Match must not give the goal away with a 412 or 428 either.
        for sent_etag in (etag, '"999"', None):
            refused = await api.client.request(change.method, path, json=body,
                                               headers=auth(token, sent_etag))
            assert_refused(refused, 404, "not-found", f"{what} by {intruder} ({sent_etag})")
            assert SECRET_WORDS not in refused.text and "etag" not in refused.headers
    assert await home.read_back(goal["id"]) == before
    # The control: the very same request from Alice goes through.
    done = await api.client.request(change.method, path, json=body,
                                    headers=auth(home.alice_token, etag))
    assert done.status_code in (200, 201), done.text
    assert await home.read_back(goal["id"]) != before


async def test_nobody_writes_a_goal_for_another_person_or_into_another_team(
        api: GoalsClient) -> None:
    home = await household(api)
    before = await home.goal_ids_of_alice()
    body = {"service_user_id": home.alice, "team_id": home.team, "description": "Move out"}
    resource = fhir_goal(service_user_id=home.alice, team_id=home.team, description="Move out")
    for intruder, token in home.intruders().items():
        refused = await api.client.post("/v1/goals", json=body, headers=auth(token))
        assert_problem(refused, 403, "forbidden", f"a goal for Alice written by {intruder}")
        refused = await api.client.post("/fhir/Goal", json=resource, headers=auth(token))
        assert_refused(refused, 403, "forbidden", f"a FHIR Goal for Alice sent by {intruder}")
    assert await home.goal_ids_of_alice() == before
    # The control: her team's staff may propose the very same goal, either way.
    own_team = await api.client.post("/v1/goals", headers=auth(home.team_staff), json=body)
    assert own_team.status_code == 201, own_team.text
    from_ehr = await api.client.post("/fhir/Goal", headers=auth(home.team_staff), json=resource)
    assert from_ehr.status_code == 201, from_ehr.text


# --- lists, searches and batch reads ------------------------------------------------------


async def _ids(response: httpx.Response, what: str) -> set[str]:
    assert response.status_code == 200, f"{what}: {response.text}"
    body = response.json()
    if body.get("resourceType") == "Bundle":
        return {entry["resource"]["id"] for entry in body.get("entry", [])}
    if "results" in body:
        return {goal["id"] for result in body["results"] for goal in result["goals"]}
    return {goal["id"] for goal in body["items"]}


async def test_a_service_user_cannot_list_search_or_batch_read_another_persons_goals(
        api: GoalsClient) -> None:
    home = await household(api)
    alices = {home.goal["id"], home.proposal["id"]}
    bob = auth(home.api.tokens.service_user(home.bob))
    client = api.client
    assert_problem(await client.get("/v1/goals", params={"service_user_id": home.alice},
                                    headers=bob), 404, "not-found", "list by person")
    for params in ({}, {"team_id": home.team}, {"status": ["active", "proposed"]}):
        seen = await _ids(await client.get("/v1/goals", params=params, headers=bob), "list")
        assert not seen & alices, params
    searched = await client.get("/fhir/Goal", params={"patient": f"Patient/{home.alice}"},
                                headers=bob)
    if searched.status_code == 200:
        assert not await _ids(searched, "FHIR search") & alices
    else:
        assert_refused(searched, 404, "not-found", "FHIR search by patient")
    assert not await _ids(await client.get("/fhir/Goal", headers=bob), "FHIR search") & alices
    batch = await client.post("/v1/goals:batch-read", headers=bob,
                              json={"service_user_ids": [home.alice, home.bob]})
    assert not await _ids(batch, "batch read") & alices
    assert {r["service_user_id"]: r["goals"] for r in batch.json()["results"]}[home.alice] == []
    # The control: Alice sees both of hers everywhere.
    own = auth(home.alice_token)
    assert await _ids(await client.get("/v1/goals", headers=own), "own list") >= alices
    assert await _ids(await client.get("/fhir/Goal", headers=own), "own search") >= alices
    assert await _ids(await client.post("/v1/goals:batch-read", headers=own, json={
        "service_user_ids": [home.alice]}), "own batch") == alices


async def test_staff_cannot_list_search_or_batch_read_goals_of_teams_outside_their_token(
        api: GoalsClient) -> None:
    home = await household(api)
    alices = {home.goal["id"], home.proposal["id"]}
    client = api.client
    for who in ("a clinician of another team", "an admin of another team",
                "a peer specialist of no team"):
        staff = auth(home.intruders()[who])
        assert_problem(await client.get("/v1/goals", params={"team_id": home.team},
                                        headers=staff), 404, "not-found", f"{who}: team list")
        for params in ({}, {"service_user_id": home.alice},
                       {"service_user_id": home.alice, "team_id": home.other_team}):
            listed = await client.get("/v1/goals", params=params, headers=staff)
            if listed.status_code == 404:
                continue  # a filter outside their reach may be refused outright
            assert not await _ids(listed, f"{who}: list {params}") & alices
        for params in ({}, {"patient": home.alice}, {"subject": f"Patient/{home.alice}"}):
            searched = await client.get("/fhir/Goal", params=params, headers=staff)
            if searched.status_code == 404:
                continue
            assert not await _ids(searched, f"{who}: FHIR search {params}") & alices
        batch = await client.post("/v1/goals:batch-read", headers=staff,
                                  json={"service_user_ids": [home.alice]})
        assert await _ids(batch, f"{who}: batch read") == set()
    # The control: staff of Alice's team see her goals through every path.
    team = auth(home.team_staff)
    assert await _ids(await client.get("/v1/goals", params={"team_id": home.team},
                                       headers=team), "team list") == alices
    assert await _ids(await client.get("/fhir/Goal", params={"patient": home.alice},
                                       headers=team), "team search") == alices
    assert await _ids(await client.post("/v1/goals:batch-read", headers=team, json={
        "service_user_ids": [home.alice]}), "team batch") == alices


# --- team figures -------------------------------------------------------------------------


async def test_team_figures_only_for_managers_and_admins_of_that_team(api: GoalsClient) -> None:
    home = await household(api)
    tokens, path = api.tokens, f"/v1/teams/{home.team}/figures"
    refused = {
        "a manager of another team": tokens.manager("manager-out", [home.other_team]),
        "an admin of another team": tokens.admin("admin-out", [home.other_team]),
        "a clinician of the team": home.team_staff,
        "a peer specialist of the team": tokens.peer_specialist("peer-in", [home.team]),
        "the service user": home.alice_token,
        "a manager of the team without the Goal scope": tokens(
            "manager", "manager-in", teams=[home.team], scope="user/CarePlan.rs"),
    }
    for who, token in refused.items():
        response = await api.client.get(path, headers=auth(token))
        assert response.status_code == 403, f"{who}: {response.text}"
        assert response.headers["content-type"] == PROBLEM
        assert "goals" not in response.json(), who
    for who, token in (("its manager", tokens.manager("manager-in", [home.team])),
                       ("its admin", tokens.admin("admin-in", [home.team]))):
        allowed = await api.client.get(path, headers=auth(token))
        assert allowed.status_code == 200, f"{who}: {allowed.text}"
        assert (allowed.json()["team_id"], allowed.json()["goals"]) == (home.team, 2)


# --- scopes -------------------------------------------------------------------------------


async def _goal_operations(api: GoalsClient) -> list[Operation]:
    openapi = (await api.client.get("/openapi.json")).json()
    operations = [op for op in protected_operations(openapi) if not op.is_audit]
    assert len(operations) >= 16
    return operations


async def _send(api: GoalsClient, home: Household, operation: Operation,
                token: str) -> httpx.Response:
    """The operation on Alice's goal with a valid request from ``token``."""
    path = fill_path(operation.template, goal_id=home.goal["id"],
                     step_id=home.goal["steps"][0]["id"], team_id=home.team, person=home.alice)
    # A Patient search names someone, or it is refused as malformed before any access check.
    params = {"_id": home.alice} if str(operation) == "GET /fhir/Patient" else None
    return await api.client.request(
        operation.method, path, params=params, headers=auth(token, f'"{home.goal["version"]}"'),
        json=valid_body(operation, service_user_id=home.alice, team_id=home.team,
                        goal_id=home.goal["id"]))


@pytest.mark.parametrize("holder", ["staff", "service user"])
async def test_a_token_without_a_goal_scope_gets_403_on_every_goal_operation(
        api: GoalsClient, holder: str) -> None:
    home = await household(api)
    token = (api.tokens.clinician("staff-in-team", [home.team], scope="user/CarePlan.cruds")
             if holder == "staff" else
             api.tokens.service_user(home.alice, scope="patient/CarePlan.cruds"))
    before = await home.read_back(home.goal["id"])
    for operation in await _goal_operations(api):
        response = await _send(api, home, operation, token)
        assert_refused(response, 403, "insufficient-scope", str(operation))
    assert await home.read_back(home.goal["id"]) == before


async def test_a_read_only_goal_scope_cannot_change_anything(api: GoalsClient) -> None:
    home = await household(api)
    token = api.tokens.clinician("staff-in-team", [home.team], scope="user/Goal.rs")
    before = await home.read_back(home.goal["id"])
    changing = [op for op in await _goal_operations(api) if op.changes]
    assert len(changing) >= 8
    for operation in changing:
        response = await _send(api, home, operation, token)
        assert_refused(response, 403, "insufficient-scope", str(operation))
    assert await home.read_back(home.goal["id"]) == before
    assert (await api.client.get(f"/v1/goals/{home.goal['id']}",
                                 headers=auth(token))).status_code == 200


# --- the audit trail ----------------------------------------------------------------------


async def test_refused_reads_and_changes_are_in_the_audit_trail_as_denied(
        api: GoalsClient) -> None:
    home = await household(api)
    goal_id = home.goal["id"]
    bob = home.api.tokens.service_user(home.bob)
    assert (await api.client.get(f"/v1/goals/{goal_id}", headers=auth(bob))).status_code == 404
    assert (await api.client.patch(f"/v1/goals/{goal_id}", json={"target_date": "2031-01-01"},
                                   headers=auth(bob, '"2"'))).status_code == 404
    await api.client.app.state.kit.audit.flush()  # type: ignore[attr-defined]
    trail = await api.client.get("/v1/audit-events", params={"record_id": goal_id,
                                                             "actor": home.bob},
                                 headers=auth(api.tokens.admin("auditor", [])))
    assert trail.status_code == 200, trail.text
    entries = {(e["action"], e["outcome"]) for e in trail.json()["items"]}
    assert entries >= {("read", "denied"), ("update", "denied")}


# --- paths around the rules -----------------------------------------------------------------


async def test_a_goal_cannot_be_moved_to_another_person_or_team(api: GoalsClient) -> None:
    home = await household(api)
    before = await home.read_back(home.goal["id"])
    for caller, token in (("Alice", home.alice_token), ("her team", home.team_staff)):
        for move in ({"team_id": home.other_team}, {"service_user_id": home.bob}):
            response = await api.client.patch(f"/v1/goals/{home.goal['id']}", json=move,
                                              headers=auth(token, f'"{home.goal["version"]}"'))
            assert response.status_code == 422, f"{caller} moving it with {move}"
            assert response.headers["content-type"] == PROBLEM
    assert await home.read_back(home.goal["id"]) == before


async def test_naming_another_persons_goal_to_serve_reveals_no_more_than_an_unknown_id(
        api: GoalsClient) -> None:
    home = await household(api)
    bob = auth(home.api.tokens.service_user(home.bob))

    async def serve(goal_id: str) -> dict[str, Any]:
        response = await api.client.post("/v1/goals", headers=bob, json={
            "service_user_id": home.bob, "team_id": home.other_team, "kind": "therapeutic",
            "description": "Take my tablets", "serves_goal_ids": [goal_id]})
        assert response.status_code == 422, response.text
        body: dict[str, Any] = response.json()
        assert SECRET_WORDS not in response.text
        return body

    unknown_id = str(uuid.uuid4())
    alices, unknown = await serve(home.goal["id"]), await serve(unknown_id)
    assert alices["type"] == unknown["type"]
    assert alices["detail"].replace(home.goal["id"], "<id>") == unknown["detail"].replace(
        unknown_id, "<id>")


async def test_staff_see_only_their_teams_goals_of_a_person_known_to_several_teams(
        api: GoalsClient) -> None:
    home = await household(api)
    elsewhere = await api.client.post("/v1/goals", headers=auth(home.alice_token), json={
        "service_user_id": home.alice, "team_id": home.other_team,
        "description": "Join the allotment group"})
    assert elsewhere.status_code == 201, elsewhere.text
    other_team_staff = auth(api.tokens.clinician("staff-out", [home.other_team]))
    expected = {elsewhere.json()["id"]}
    client = api.client
    assert await _ids(await client.get("/v1/goals", params={"service_user_id": home.alice},
                                       headers=other_team_staff), "list") == expected
    assert await _ids(await client.get("/fhir/Goal", params={"patient": home.alice},
                                       headers=other_team_staff), "FHIR search") == expected
    assert await _ids(await client.post("/v1/goals:batch-read", headers=other_team_staff, json={
        "service_user_ids": [home.alice]}), "batch read") == expected
    # Alice herself sees all three, whichever team holds them.
    assert await _ids(await client.post("/v1/goals:batch-read", headers=auth(home.alice_token),
                                        json={"service_user_ids": [home.alice]}),
                      "own batch") == expected | {home.goal["id"], home.proposal["id"]}
