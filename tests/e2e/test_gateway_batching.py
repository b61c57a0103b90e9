"""Lists under a list are read in one batch per service: the calls a query makes do not
grow with the number of courses in the prospectus or of people in a caseload, and a first
page read in a batch pages on by its list's own cursor."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.common.testing.processes import NatsServer
from recovery.gateway.testing import Platform, running_platform

pytestmark = pytest.mark.integration

TEAM = "team-batch"
PEOPLE = [f"person-batch-{i}" for i in range(20)]
COURSES_WITH_RUNS = """query ($first: Int) { prospectus(first: $first) { edges { node { id
  runs { totalCount edges { cursor node { id placesTaken } } pageInfo { hasNextPage } } } } } }"""
CASELOAD = """query ($ids: [ID!]!) { serviceUsers(ids: $ids) { localId
  goals(first: 1) { edges { node { id } } pageInfo { hasNextPage endCursor } }
  riskAssessments(first: 5) { edges { node { id status } } }
  crisisPlans(first: 1) { edges { node { id } } pageInfo { hasNextPage } }
  activeCrisisPlan { id } } }"""


async def seed(p: Platform) -> None:
    """Twenty courses with a run each; twenty people of one team, each with three goals, a
    co-assessment and a draft crisis plan."""
    college = p.tokens.educator("educator-batch", teams=[])
    facilitators = []
    for kind, lived in (("service_user_educator", True), ("professional", False)):
        educator = await p.rest("training", "POST", "/v1/educators", college, json={
            "display_name": f"Educator {kind}", "kind": kind, "lived_experience": lived})
        facilitators.append(educator["id"])
    for i in range(20):
        course = await p.rest("training", "POST", "/v1/courses", college, json={
            "title": f"Course {i}", "learning_outcomes": ["Plan a recovery journey"],
            "audience": ["staff", "service_user"], "co_produced_with": ["Peer trainers"]})
        await p.rest("training", "POST", f"/v1/courses/{course['id']}/runs", college, json={
            "starts_on": "2030-03-01", "ends_on": "2030-03-02", "online": True,
            "capacity": 10, "facilitator_ids": facilitators})
    staff = p.tokens.clinician("staff-batch", [TEAM])
    for person in PEOPLE:
        for n in range(3):
            await p.rest("goals", "POST", "/v1/goals", p.tokens.service_user(person), json={
                "service_user_id": person, "team_id": TEAM, "description": f"Goal {n}"})
        await p.rest("risk", "POST", "/v1/risk-assessments", staff, json={
            "service_user_id": person, "team_id": TEAM, "areas": [{
                "area": "safety_of_self", "service_user_view": "Steady",
                "clinician_view": "Steady", "views_agree": True}]})
        await p.rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
            "service_user_id": person, "team_id": TEAM,
            "when_well": ["Walking every morning"], "review_on": "2031-01-01",
            "participants": [{"role": "service_user"},
                             {"role": "care_coordinator", "id": "staff-batch"}]})


@pytest.fixture(scope="module")
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory, nats_server: NatsServer,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    directory: Path = tmp_path_factory.mktemp(f"batching-{uuid.uuid4().hex[:6]}")
    async with running_platform(
            databases=lambda name: f"sqlite+aiosqlite:///{directory / name}.db",
            jwks_file=dev_issuer.jwks_path, tokens=tokens, nats_url=nats_server.url) as p:
        await seed(p)
        yield p


async def calls_of(platform: Platform, token: str, query: str,
                   variables: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    before = dict(platform.upstreams.calls)
    body = await platform.query(token, query, variables)
    assert "errors" not in body, body
    made = {k: v - before.get(k, 0) for k, v in platform.upstreams.calls.items()}
    return body["data"], {k: v for k, v in made.items() if v}


async def test_twenty_courses_with_their_runs_cost_the_calls_of_two(platform: Platform) -> None:
    token = platform.tokens.service_user("person-batch-0")
    counts = []
    for size in (2, 20):
        data, calls = await calls_of(platform, token, COURSES_WITH_RUNS, {"first": size})
        courses = data["prospectus"]["edges"]
        assert len(courses) == size
        runs = [c["node"]["runs"] for c in courses]
        assert all(r["totalCount"] == len(r["edges"]) for r in runs)
        # The foundation course comes first, with no run yet; each seeded course has one.
        assert sum(r["totalCount"] for r in runs) == size - 1
        counts.append(calls)
    assert counts[0] == counts[1] == {"training": 2}


async def test_a_caseload_of_twenty_costs_the_calls_of_a_caseload_of_two(
        platform: Platform) -> None:
    staff = platform.tokens.clinician("staff-batch", [TEAM])
    counts = []
    for people in (PEOPLE[:2], PEOPLE):
        data, calls = await calls_of(platform, staff, CASELOAD, {"ids": people})
        assert [p["localId"] for p in data["serviceUsers"]] == people
        assert all(len(p["goals"]["edges"]) == 1 and p["goals"]["pageInfo"]["hasNextPage"]
                   for p in data["serviceUsers"])
        assert all(len(p["riskAssessments"]["edges"]) == 1 for p in data["serviceUsers"])
        # A person has one plan in use at a time: their list's first page holds it.
        assert all(len(p["crisisPlans"]["edges"]) == 1 and not p["crisisPlans"]["pageInfo"]
                   ["hasNextPage"] for p in data["serviceUsers"])
        counts.append(calls)
    # The active plans and the plans' first pages are two batch reads of crisis-plans.
    assert counts[0] == counts[1] == {"goals": 1, "risk": 1, "crisis-plans": 2}


async def test_a_first_page_read_in_a_batch_pages_on_by_the_lists_own_cursor(
        platform: Platform) -> None:
    staff = platform.tokens.clinician("staff-batch", [TEAM])
    person = PEOPLE[3]
    data, _ = await calls_of(platform, staff, CASELOAD, {"ids": [PEOPLE[2], person]})
    first = data["serviceUsers"][1]["goals"]
    rest = await platform.query(staff, """query ($id: ID!, $after: String) {
      serviceUser(id: $id) { goals(first: 5, after: $after) {
        edges { node { id } } pageInfo { hasNextPage } } } }""",
                                {"id": person, "after": first["pageInfo"]["endCursor"]})
    assert "errors" not in rest, rest
    later = rest["data"]["serviceUser"]["goals"]
    whole = await platform.query(staff, """query ($id: ID!) { serviceUser(id: $id) {
      goals { edges { node { id } } } } }""", {"id": person})
    ids = [e["node"]["id"] for e in whole["data"]["serviceUser"]["goals"]["edges"]]
    assert len(ids) == 3
    assert [first["edges"][0]["node"]["id"]] + [e["node"]["id"] for e in later["edges"]] == ids
    assert later["pageInfo"]["hasNextPage"] is False
