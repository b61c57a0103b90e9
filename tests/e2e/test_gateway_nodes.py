"""Global object identification through the gateway, over the five real services: every
record's `id` is an opaque global id that `node`/`nodes` read back under the type's own
access rules, a refused id answers exactly as an unknown one, and commands take the global
id (or the local one)."""

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.gateway.testing import Platform, running_platform
from recovery.gateway.types.node import GlobalId

pytestmark = pytest.mark.integration

PERSON, OTHER = "person-node-1", "person-node-2"
LEARNER = "node-staff-1"
FOUNDATION = "00000000-0000-4000-8000-000000000001"
AREA = {"area": "safety_of_self", "service_user_view": "I know my signs now",
        "clinician_view": "Fewer crises since spring", "views_agree": True, "strengths": []}

EVERY_KIND = """
query ($person: ID!, $course: ID!) {
  serviceUser(id: $person) { id localId
    goals { edges { node { id localId } } }
    crisisPlans { edges { node { id localId } } }
    riskAssessments { edges { node { id localId } } } }
  team(id: "team-a") { id localId staff { edges { node { id localId } } } }
  course(id: $course) { id localId runs { edges { node { id localId } } } }
  me { enrolments { edges { node { id localId } } } }
}"""
NODE = """query ($id: ID!) { node(id: $id) { __typename id localId
  ... on Goal { serviceUserId description }
  ... on StaffMember { teamId trainingStatus { status } } } }"""
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id localId } }"


@pytest.fixture(scope="module")
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    directory = tmp_path_factory.mktemp(f"nodes-{uuid.uuid4().hex[:6]}")
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{directory / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens) as p:
        await seed(p)
        yield p


async def seed(p: Platform) -> None:
    """A person of team-a with a goal, a crisis plan and a co-assessment; a member of staff
    on a run of the foundation course."""
    admin = p.tokens.admin("admin-node", ["team-a", "team-b"])
    staff = p.tokens.clinician(LEARNER, ["team-a"])
    for team in ("team-a", "team-b"):
        await p.rest("workforce", "POST", "/v1/teams", admin,
                     json={"id": team, "name": team.title()})
    await p.rest("workforce", "POST", "/v1/staff", admin, json={
        "id": LEARNER, "team_id": "team-a", "display_name": "Sam", "profession": "nursing",
        "grade": "band-5", "role_type": "professional", "fte": 1.0,
        "start_date": (date.today() - timedelta(days=30)).isoformat()})
    await p.rest("goals", "POST", "/v1/goals", p.tokens.service_user(PERSON), json={
        "service_user_id": PERSON, "team_id": "team-a", "description": "Swim in the sea"})
    await p.rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
        "service_user_id": PERSON, "team_id": "team-a", "when_well": ["I swim"],
        "participants": [{"role": "service_user"}]})
    await p.rest("risk", "POST", "/v1/risk-assessments", staff, json={
        "service_user_id": PERSON, "team_id": "team-a", "areas": [AREA]})
    educators = [(await p.rest("training", "POST", "/v1/educators", admin, json={
        "display_name": name, "kind": kind, "lived_experience": lived}))["id"]
        for name, kind, lived in (("Bo", "professional", False),
                                  ("Cy", "service_user_educator", True))]
    run = await p.rest("training", "POST", f"/v1/courses/{FOUNDATION}/runs", admin, json={
        "starts_on": "2031-01-01", "ends_on": "2031-01-02", "online": True, "capacity": 10,
        "facilitator_ids": educators})
    await p.rest("training", "POST", f"/v1/runs/{run['id']}/enrolments", staff, json={})


def edges(connection: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in connection["edges"]]


async def every_kind(p: Platform) -> dict[str, dict[str, Any]]:
    """One record of each Node type, as the learner (staff of team-a) reads them."""
    body = await p.query(p.tokens.clinician(LEARNER, ["team-a"]), EVERY_KIND,
                         {"person": PERSON, "course": FOUNDATION})
    assert "errors" not in body, body
    data = body["data"]
    person, team, course = data["serviceUser"], data["team"], data["course"]
    [goal], [plan] = edges(person["goals"]), edges(person["crisisPlans"])
    [assessment], [staff] = edges(person["riskAssessments"]), edges(team["staff"])
    [run], [enrolment] = edges(course["runs"]), edges(data["me"]["enrolments"])
    found = {"ServiceUser": person, "Goal": goal, "CrisisPlan": plan,
             "RiskAssessment": assessment, "Team": team, "StaffMember": staff,
             "Course": course, "CourseRun": run, "Enrolment": enrolment}
    return {kind: {"id": record["id"], "localId": record["localId"]}
            for kind, record in found.items()}


async def test_every_record_type_round_trips_through_node_and_nodes(
        platform: Platform) -> None:
    records = await every_kind(platform)
    reader = platform.tokens.clinician(LEARNER, ["team-a"])
    for kind, record in records.items():
        assert record["id"] != record["localId"]
        assert GlobalId.decode(record["id"]) == GlobalId(kind, record["localId"])
        body = await platform.query(reader, NODE, {"id": record["id"]})
        assert "errors" not in body, (kind, body)
        node = body["data"]["node"]
        assert {k: node[k] for k in ("__typename", "id", "localId")} == {
            "__typename": kind, **record}
    kinds = list(records)
    body = await platform.query(reader, NODES, {"ids": [records[k]["id"] for k in kinds]})
    assert "errors" not in body, body
    assert body["data"]["nodes"] == [{"__typename": k, **records[k]} for k in kinds]


async def test_node_answers_the_fields_of_its_type_under_the_same_rules(
        platform: Platform) -> None:
    records = await every_kind(platform)
    body = await platform.query(platform.tokens.clinician(LEARNER, ["team-a"]), NODE,
                                {"id": records["Goal"]["id"]})
    assert body["data"]["node"]["serviceUserId"] == PERSON
    assert body["data"]["node"]["description"] == "Swim in the sea"
    own = await platform.query(platform.tokens.clinician(LEARNER, ["team-a"]), NODE,
                               {"id": records["StaffMember"]["id"]})
    assert "errors" not in own, own
    assert own["data"]["node"]["teamId"] == "team-a"
    assert own["data"]["node"]["trainingStatus"]["status"] in {"ENROLLED", "NOT_ENROLLED"}
    colleague = await platform.query(platform.tokens.clinician("someone-else", ["team-a"]),
                                     NODE, {"id": records["StaffMember"]["id"]})
    assert colleague["data"]["node"]["trainingStatus"] is None
    assert [e["extensions"]["code"] for e in colleague["errors"]] == ["FORBIDDEN"]


def refusal(body: dict[str, Any]) -> tuple[Any, ...]:
    [error] = body["errors"]
    return body["data"], error["message"], error["extensions"]


async def test_a_record_out_of_reach_answers_exactly_as_one_that_does_not_exist(
        platform: Platform) -> None:
    records = await every_kind(platform)
    outsider = platform.tokens.clinician("staff-9", ["team-b"])
    answers = set()
    for kind in ("Goal", "CrisisPlan", "RiskAssessment", "Team", "StaffMember"):
        unknown = GlobalId(kind, str(uuid.uuid4())).encode()
        refused = refusal(await platform.query(outsider, NODE, {"id": records[kind]["id"]}))
        missing = refusal(await platform.query(outsider, NODE, {"id": unknown}))
        assert refused == missing, kind
        answers.add(repr(refused))
    # Another person's records, for a service user: the person and each of their records.
    other = platform.tokens.service_user(OTHER)
    for kind in ("ServiceUser", "Goal", "CrisisPlan", "RiskAssessment"):
        refused = refusal(await platform.query(other, NODE, {"id": records[kind]["id"]}))
        answers.add(repr(refused))
    assert len(answers) == 1
    [answer] = answers
    assert "NOT_FOUND" in answer and "'node': None" in answer
    listed = await platform.query(outsider, NODES, {"ids": [
        records["Course"]["id"], records["Goal"]["id"],
        GlobalId("Goal", str(uuid.uuid4())).encode()]})
    assert listed["data"]["nodes"][0]["__typename"] == "Course"
    assert listed["data"]["nodes"][1:] == [None, None]
    assert [(e["path"], e["extensions"]["code"]) for e in listed["errors"]] == [
        (["nodes", 1], "NOT_FOUND"), (["nodes", 2], "NOT_FOUND")]
    assert listed["errors"][0]["message"] == listed["errors"][1]["message"]


@pytest.mark.parametrize("bad", [
    "not an id", "R29hbDox===", GlobalId("Goal", "x").encode() + "A", "bm9wZToxMjM",
    "Z29hbDp4", "Goal:123"])
async def test_a_malformed_global_id_is_invalid(platform: Platform, bad: str) -> None:
    body = await platform.query(platform.tokens.clinician(LEARNER, ["team-a"]), NODE,
                                {"id": bad})
    assert body["data"] == {"node": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID"]


async def test_a_local_id_is_not_a_global_one(platform: Platform) -> None:
    records = await every_kind(platform)
    body = await platform.query(platform.tokens.clinician(LEARNER, ["team-a"]), NODE,
                                {"id": records["Goal"]["localId"]})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID"]


async def test_more_than_100_ids_are_refused(platform: Platform) -> None:
    ids = [GlobalId("Goal", f"g-{i}").encode() for i in range(101)]
    body = await platform.query(platform.tokens.clinician(LEARNER, ["team-a"]), NODES,
                                {"ids": ids})
    assert body["data"] is None or body["data"]["nodes"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID"]


async def test_reads_and_commands_take_the_global_id_or_the_local_one(
        platform: Platform) -> None:
    records = await every_kind(platform)
    reader = platform.tokens.clinician(LEARNER, ["team-a"])
    query = """query ($person: ID!, $team: ID!, $course: ID!) {
      serviceUser(id: $person) { localId } team(id: $team) { localId }
      course(id: $course) { localId } }"""
    for form in ("id", "localId"):
        body = await platform.query(reader, query, {
            "person": records["ServiceUser"][form], "team": records["Team"][form],
            "course": records["Course"][form]})
        assert body["data"] == {"serviceUser": {"localId": PERSON},
                                "team": {"localId": "team-a"},
                                "course": {"localId": FOUNDATION}}, body
    accept = """mutation ($id: ID!) { acceptGoal(id: $id, ifMatch: 1) { __typename
      ... on Goal { localId lifecycleStatus } ... on Invalid { message } } }"""
    own = platform.tokens.service_user(PERSON)
    wrong = await platform.query(own, accept, {"id": records["CrisisPlan"]["id"]})
    assert wrong["data"]["acceptGoal"]["__typename"] == "Invalid"
    for form in ("id", "localId"):
        proposed = await platform.rest("goals", "POST", "/v1/goals", reader, json={
            "service_user_id": PERSON, "team_id": "team-a", "description": f"By {form}"})
        goal_id = GlobalId("Goal", proposed["id"]).encode() if form == "id" else proposed["id"]
        body = await platform.query(own, accept, {"id": goal_id})
        assert body["data"]["acceptGoal"] == {"__typename": "Goal",
                                              "localId": proposed["id"],
                                              "lifecycleStatus": "ACTIVE"}, body


async def test_closed_sets_are_answered_and_given_as_enums(platform: Platform) -> None:
    staff = platform.tokens.clinician(LEARNER, ["team-a"])
    propose = """mutation ($person: ID!) { proposeGoal(input: {serviceUserId: $person,
        teamId: "team-a", description: "Grow tomatoes", kind: LIFE, lifeArea: HOME}) {
      __typename ... on Goal { localId kind lifeArea expressedBy lifecycleStatus } } }"""
    body = await platform.query(staff, propose, {"person": PERSON})
    goal = body["data"]["proposeGoal"]
    assert {k: v for k, v in goal.items() if k != "localId"} == {
        "__typename": "Goal", "kind": "LIFE", "lifeArea": "HOME", "expressedBy": "STAFF",
        "lifecycleStatus": "PROPOSED"}, body
    stored = await platform.rest("goals", "GET", f"/v1/goals/{goal['localId']}", staff)
    assert (stored["kind"], stored["life_area"]) == ("life", "home")
    filtered = """query ($person: ID!, $statuses: [GoalLifecycleStatus!]) {
      serviceUser(id: $person) { goals(lifecycleStatus: $statuses) {
        edges { node { localId lifecycleStatus } } }
        riskAssessments { edges { node { status versionStatus missingParties } } } } }"""
    body = await platform.query(staff, filtered, {"person": PERSON, "statuses": ["PROPOSED"]})
    assert "errors" not in body, body
    person = body["data"]["serviceUser"]
    listed = edges(person["goals"])
    assert goal["localId"] in {g["localId"] for g in listed}
    assert {g["lifecycleStatus"] for g in listed} == {"PROPOSED"}
    [assessment] = edges(person["riskAssessments"])
    assert assessment["status"] == "DRAFT" and assessment["versionStatus"] == "DRAFT"
    assert set(assessment["missingParties"]) <= {"SERVICE_USER", "CLINICIAN"}
    refused = await platform.query(staff, filtered, {"person": PERSON,
                                                     "statuses": ["proposed"]})
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["INVALID"]
