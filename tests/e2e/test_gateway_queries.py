"""The gateway over the five real services (in process, SQLite, real NATS): `me`,
`serviceUser`, `team`, `prospectus`; upstream calls that do not grow with list size; access
that holds on every nested path; partial answers when a service is stopped."""

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.common.testing.processes import NatsServer
from recovery.gateway.testing import Platform, running_platform

pytestmark = pytest.mark.integration

PERSON, OTHER = "person-gw-1", "person-gw-2"
PLAN: dict[str, Any] = {
    "when_well": ["I cook for friends and walk the dog every morning"],
    "early_warning_signs": ["Sleeping less than four hours"],
    "what_helps": ["Sitting in the garden with someone I trust"],
    "participants": [{"role": "service_user"}, {"role": "care_coordinator", "id": "staff-1"}],
    "review_on": "2031-01-01",
}
AREA = {"area": "safety_of_self", "service_user_view": "I know my signs now",
        "clinician_view": "Fewer crises since spring", "views_agree": True,
        "strengths": ["Walks the dog daily"]}

SERVICE_USER_QUERY = """
query ($id: ID!) {
  serviceUser(id: $id) {
    id
    goals { totalCount edges { node { id description lifecycleStatus version } } }
    activeCrisisPlan { id version agreedAt signatures { party } }
    riskAssessments { totalCount edges { node { id status differences } } }
  }
}"""

TEAM_QUERY = """
query ($id: ID!, $first: Int) {
  team(id: $id) {
    id name
    staff(first: $first) { totalCount edges { node { id profession
        trainingStatus { status } } } }
    skillMix { staffInPost peerFte }
    peerShare { target share }
    trainingCoverage { staff completed }
    readiness { weakestFactor factors { name } }
  }
}"""


def databases_in(directory: Path) -> Any:
    return lambda name: f"sqlite+aiosqlite:///{directory / name}.db"


async def seed(p: Platform) -> None:
    """Two people on team-a with goals, an agreed crisis plan and a co-assessment; staff."""
    t = p.tokens
    admin = t.admin("admin-gw", ["team-a", "team-b", "team-big"])
    staff = t.clinician("staff-1", ["team-a"])
    for team in ("team-a", "team-b", "team-big"):
        await p.rest("workforce", "POST", "/v1/teams", admin,
                     json={"id": team, "name": team.title()})
    for person in (PERSON, OTHER):
        own = t.service_user(person)
        await p.rest("goals", "POST", "/v1/goals", own, json={
            "service_user_id": person, "team_id": "team-a",
            "description": "Get back to work in a bakery"})
        plan = await p.rest("crisis-plans", "POST", "/v1/crisis-plans", staff,
                            json={"service_user_id": person, "team_id": "team-a", **PLAN})
        for signer in (own, staff):
            await p.rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                         signer, json={"content_hash": plan["content_hash"]},
                         etag=f'"{plan["version"]}"')
        await p.rest("risk", "POST", "/v1/risk-assessments", staff, json={
            "service_user_id": person, "team_id": "team-a", "areas": [AREA]})
    start = (date.today() - timedelta(days=30)).isoformat()
    for team, size in (("team-a", 2), ("team-big", 200)):
        for i in range(size):
            await p.rest("workforce", "POST", "/v1/staff", admin, json={
                "id": f"{team}-staff-{i}", "team_id": team, "display_name": f"Staff {i}",
                "profession": "nursing" if i % 2 else "peer_support", "grade": "band-5",
                "role_type": "professional" if i % 2 else "peer_specialist", "fte": 1.0,
                "start_date": start})


@pytest.fixture(scope="module")
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory, nats_server: NatsServer,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    directory = tmp_path_factory.mktemp(f"gateway-{uuid.uuid4().hex[:6]}")
    async with running_platform(databases=databases_in(directory),
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                nats_url=nats_server.url) as p:
        await seed(p)
        yield p


async def test_a_service_user_sees_their_own_goals_and_active_crisis_plan_through_me(
        platform: Platform) -> None:
    body = await platform.query(platform.tokens.service_user(PERSON), """
      { me { sub roles personId serviceUser {
          goals { totalCount edges { node { description serviceUserId } } }
          activeCrisisPlan { serviceUserId signatures { party } }
          riskAssessments { totalCount } } } }""")
    assert "errors" not in body, body
    me = body["data"]["me"]
    assert me["personId"] == PERSON and me["roles"] == ["SERVICE_USER"]
    goals = me["serviceUser"]["goals"]
    assert goals["totalCount"] == 1
    assert goals["edges"][0]["node"] == {"description": "Get back to work in a bakery",
                                         "serviceUserId": PERSON}
    assert me["serviceUser"]["activeCrisisPlan"]["serviceUserId"] == PERSON
    assert me["serviceUser"]["riskAssessments"]["totalCount"] == 1


async def test_a_service_user_asking_for_another_person_gets_an_error_not_data(
        platform: Platform) -> None:
    body = await platform.query(platform.tokens.service_user(PERSON), SERVICE_USER_QUERY,
                                {"id": OTHER})
    assert body["data"] == {"serviceUser": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_service_user_query_composes_goals_plan_and_risk_with_one_call_per_service(
        platform: Platform) -> None:
    before = dict(platform.upstreams.calls)
    body = await platform.query(platform.tokens.clinician("staff-1", ["team-a"]),
                                SERVICE_USER_QUERY, {"id": PERSON})
    assert "errors" not in body, body
    person = body["data"]["serviceUser"]
    assert person["goals"]["totalCount"] == 1
    assert person["activeCrisisPlan"]["version"] >= 1
    assert {s["party"] for s in person["activeCrisisPlan"]["signatures"]} >= {"SERVICE_USER"}
    assert person["riskAssessments"]["totalCount"] == 1
    calls = {k: v - before.get(k, 0) for k, v in platform.upstreams.calls.items()}
    assert {k: v for k, v in calls.items() if v} == {"goals": 1, "crisis-plans": 1, "risk": 1}


async def test_staff_of_another_team_reach_nothing_of_the_person_through_service_user(
        platform: Platform) -> None:
    body = await platform.query(platform.tokens.clinician("staff-9", ["team-b"]),
                                SERVICE_USER_QUERY, {"id": PERSON})
    person = body["data"]["serviceUser"]
    assert person["goals"]["totalCount"] == 0
    assert person["activeCrisisPlan"] is None
    assert person["riskAssessments"]["totalCount"] == 0


PLANS_QUERY = """
query ($id: ID!, $first: Int, $after: String) {
  serviceUser(id: $id) {
    activeCrisisPlan { localId }
    crisisPlans(first: $first, after: $after) { totalCount
      edges { cursor node { localId status version serviceUserId } }
      pageInfo { hasNextPage endCursor } }
  }
}"""


async def test_a_plan_never_agreed_is_listed_under_crisis_plans_for_the_person_and_team(
        platform: Platform) -> None:
    person = "person-gw-draft"
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    draft = await platform.rest("crisis-plans", "POST", "/v1/crisis-plans", staff,
                                json={"service_user_id": person, "team_id": "team-a", **PLAN})
    for reader in (platform.tokens.service_user(person), staff):
        body = await platform.query(reader, PLANS_QUERY, {"id": person})
        assert "errors" not in body, body
        found = body["data"]["serviceUser"]
        assert found["activeCrisisPlan"] is None  # nothing agreed yet
        plans = found["crisisPlans"]
        assert plans["totalCount"] == 1 and plans["pageInfo"]["hasNextPage"] is False
        assert [e["node"] for e in plans["edges"]] == [{
            "localId": draft["id"], "status": "DRAFT", "version": 1, "serviceUserId": person}]
        empty = await platform.query(reader, PLANS_QUERY, {
            "id": person, "after": plans["pageInfo"]["endCursor"]})
        assert empty["data"]["serviceUser"]["crisisPlans"]["edges"] == []


async def test_a_person_with_more_goals_than_a_batch_holds_gets_them_all_in_pages(
        platform: Platform) -> None:
    person = "person-gw-many"
    own = platform.tokens.service_user(person)
    for number in range(101):  # the batch read holds 100 a person
        await platform.rest("goals", "POST", "/v1/goals", own, json={
            "service_user_id": person, "team_id": "team-a",
            "description": f"Small step number {number}"})
    query = """query ($id: ID!, $after: String) { serviceUser(id: $id) {
        goals(first: 100, after: $after) { totalCount edges { node { description } }
                                           pageInfo { hasNextPage endCursor } } } }"""
    first = (await platform.query(own, query, {"id": person}))["data"]["serviceUser"]["goals"]
    assert first["totalCount"] == 101 and len(first["edges"]) == 100
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await platform.query(own, query, {"id": person, "after": first["pageInfo"][
        "endCursor"]}))["data"]["serviceUser"]["goals"]
    seen = {e["node"]["description"] for e in first["edges"] + rest["edges"]}
    assert seen == {f"Small step number {n}" for n in range(101)}


async def test_crisis_plans_of_another_person_or_team_cannot_be_listed(
        platform: Platform) -> None:
    other_team = await platform.query(platform.tokens.clinician("staff-9", ["team-b"]),
                                      PLANS_QUERY, {"id": PERSON})
    assert other_team["data"]["serviceUser"]["crisisPlans"]["totalCount"] == 0
    other_person = await platform.query(platform.tokens.service_user(OTHER), PLANS_QUERY,
                                        {"id": PERSON})
    assert other_person["data"] == {"serviceUser": None}
    assert other_person["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    agreed = await platform.query(platform.tokens.service_user(PERSON), PLANS_QUERY,
                                  {"id": PERSON})
    [edge] = agreed["data"]["serviceUser"]["crisisPlans"]["edges"]
    assert edge["node"]["status"] == "AGREED"
    assert edge["node"]["localId"] == \
        agreed["data"]["serviceUser"]["activeCrisisPlan"]["localId"]


async def test_a_team_of_200_staff_with_training_costs_the_same_calls_as_a_team_of_2(
        platform: Platform) -> None:
    manager = platform.tokens.manager("manager-gw", ["team-a", "team-big"])
    counts = []
    for team, size in (("team-a", 2), ("team-big", 200)):
        before = dict(platform.upstreams.calls)
        body = await platform.query(manager, TEAM_QUERY, {"id": team, "first": 200})
        assert "errors" not in body, body
        staff = body["data"]["team"]["staff"]
        assert staff["totalCount"] == size and len(staff["edges"]) == size
        assert all(e["node"]["trainingStatus"]["status"] for e in staff["edges"])
        assert body["data"]["team"]["readiness"]["weakestFactor"]
        counts.append({k: v - before.get(k, 0) for k, v in platform.upstreams.calls.items()})
    assert counts[0] == counts[1]
    assert sum(counts[1].values()) <= 8


async def test_a_clinician_reads_their_team_but_not_another_team(platform: Platform) -> None:
    clinician = platform.tokens.clinician("staff-1", ["team-a"])
    body = await platform.query(clinician, '{ team(id: "team-a") { name staff { totalCount '
                                           'edges { node { id } } } } }')
    assert body["data"]["team"]["staff"]["totalCount"] == 2
    refused = await platform.query(clinician, '{ team(id: "team-big") { name } }')
    assert refused["data"] == {"team": None}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_another_persons_records_cannot_be_reached_through_a_team_or_a_course(
        platform: Platform) -> None:
    own = platform.tokens.service_user(PERSON)
    team = await platform.query(own, '{ team(id: "team-a") { staff { totalCount } } }')
    assert team["data"] == {"team": None}
    assert team["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    prospectus = await platform.query(own, "{ prospectus { edges { node { id title "
                                           "runs { totalCount } } } } }")
    assert "errors" not in prospectus, prospectus
    assert prospectus["data"]["prospectus"]["edges"], "the foundation course is listed"


async def test_without_a_token_nothing_is_read(platform: Platform) -> None:
    body = await platform.query(None, SERVICE_USER_QUERY, {"id": PERSON})
    assert body["data"] == {"serviceUser": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_forged_token_is_refused_with_401(platform: Platform) -> None:
    response = await platform.gateway.post(
        "/graphql", json={"query": "{ me { sub } }"},
        headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_course_reads_one_course_of_the_prospectus(platform: Platform) -> None:
    body = await platform.query(platform.tokens.clinician(), """
      { course(id: "00000000-0000-4000-8000-000000000001") { title foundation
          requiredForAllStaff } }""")
    assert "errors" not in body, body
    assert body["data"]["course"]["foundation"] is True
    missing = await platform.query(platform.tokens.clinician(),
                                   '{ course(id: "no-such-course") { title } }')
    assert missing["data"] == {"course": None}
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_clinician_sees_their_own_training_but_colleagues_training_is_refused(
        platform: Platform) -> None:
    clinician = platform.tokens.clinician("team-a-staff-1", ["team-a"])
    body = await platform.query(clinician, '{ team(id: "team-a") { staff { edges { node { localId '
                                           'trainingStatus { status } } } } } }')
    edges = {e["node"]["localId"]: e["node"]["trainingStatus"]
             for e in body["data"]["team"]["staff"]["edges"]}
    assert edges["team-a-staff-1"] is not None
    assert edges["team-a-staff-0"] is None
    assert [e["path"][-1] for e in body["errors"]] == ["trainingStatus"]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_team_figures_need_a_manager_of_the_team_as_the_services_rule(
        platform: Platform) -> None:
    clinician = platform.tokens.clinician("staff-1", ["team-a"])
    body = await platform.query(clinician, '{ team(id: "team-a") { name peerShare { share } '
                                           'readiness { score } } }')
    assert body["data"]["team"]["name"] == "Team-A"
    # The workforce service keeps team figures for managers; the gateway passes that on
    # field by field and never asks with a stronger identity.
    assert body["data"]["team"]["peerShare"] is None
    assert body["data"]["team"]["readiness"] is None
    codes = {e["path"][-1]: e["extensions"] for e in body["errors"]}
    assert codes == {"peerShare": {"code": "FORBIDDEN", "service": "workforce", "status": 403},
                     "readiness": {"code": "FORBIDDEN", "service": "workforce", "status": 403}}
    managed = await platform.query(platform.tokens.manager("manager-gw", ["team-a"]),
                                   '{ team(id: "team-a") { peerShare { target } '
                                   'readiness { weakestFactor } } }')
    assert "errors" not in managed, managed
    assert managed["data"]["team"]["readiness"]["weakestFactor"]


async def test_a_service_user_finds_their_courses_under_me(platform: Platform) -> None:
    body = await platform.query(platform.tokens.service_user(PERSON),
                                "{ me { enrolments { totalCount } } }")
    assert "errors" not in body, body
    assert body["data"]["me"]["enrolments"]["totalCount"] == 0


async def test_staff_find_their_teams_under_me(platform: Platform) -> None:
    body = await platform.query(platform.tokens.clinician("staff-1", ["team-a", "team-b"]),
                                "{ me { personId serviceUser { id } teams { localId name } } }")
    assert "errors" not in body, body
    me = body["data"]["me"]
    assert me["personId"] is None and me["serviceUser"] is None
    assert me["teams"] == [{"localId": "team-a", "name": "Team-A"},
                           {"localId": "team-b", "name": "Team-B"}]


CASELOAD_QUERY = """
query ($ids: [ID!]!) {
  serviceUsers(ids: $ids) { localId
    goals(first: 5) { edges { node { description } } }
    activeCrisisPlan { version } }
}"""


async def test_a_caseload_reads_several_people_in_the_order_asked(platform: Platform) -> None:
    body = await platform.query(platform.tokens.clinician("staff-1", ["team-a"]),
                                CASELOAD_QUERY, {"ids": [OTHER, PERSON]})
    assert "errors" not in body, body
    people = body["data"]["serviceUsers"]
    assert [p["localId"] for p in people] == [OTHER, PERSON]
    assert all(p["activeCrisisPlan"]["version"] >= 1 for p in people)
    assert all(p["goals"]["edges"] for p in people)


async def test_a_service_user_cannot_slip_another_person_into_a_caseload(
        platform: Platform) -> None:
    body = await platform.query(platform.tokens.service_user(PERSON), CASELOAD_QUERY,
                                {"ids": [PERSON, OTHER]})
    assert body["data"] == {"serviceUsers": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_a_caseload_of_more_than_100_people_is_refused(platform: Platform) -> None:
    body = await platform.query(platform.tokens.clinician("staff-1", ["team-a"]),
                                CASELOAD_QUERY, {"ids": [f"p-{i}" for i in range(101)]})
    assert body["data"] == {"serviceUsers": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID"]
