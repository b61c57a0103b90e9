"""An operation's static cost, worked out before it runs: aliases, fragments and variables
counted, lists multiplied by their page, an operation over the limit refused before any
service call, the cost reported on every answer, and each token's budget over time.

The services are "stopped" here: what these tests check happens before any call; the
gateway's own call counter shows that none was made."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.gateway.main import SERVICE, create_app
from recovery.gateway.settings import UPSTREAMS, GatewaySettings
from recovery.gateway.testing import STOPPED

COURSES = "prospectus(first: $first) { edges { node { id runs(first: 10) { totalCount } } } }"
TEAM_VIEW = """query ($id: ID!) { team(id: $id) { name
  staff(first: 200) { totalCount edges { node { displayName profession roleType
                                                trainingStatus { status completedOn } } } }
  skillMix { fteTotal peerFte peerToProfessionalRatio } peerShare { share target meetsTarget }
  trainingCoverage { staff completed coverage }
  readiness { score level weakestFactor factors { name score explanation } } } }"""
CASELOAD_VIEW = """query ($ids: [ID!]!) { serviceUsers(ids: $ids) { id
  goals { totalCount edges { cursor node { id description lifeArea lifecycleStatus } }
          pageInfo { hasNextPage endCursor } }
  activeCrisisPlan { id version agreedAt signatures { party signedAt } }
  crisisPlans { edges { node { id status version } } }
  riskAssessments { totalCount edges { node { id status } } } } }"""
PROSPECTUS_VIEW = """{ prospectus { edges { node { id title summary foundation
  runs { edges { node { startsOn place capacity placesTaken } } } } } } }"""


class Gateway:
    def __init__(self, client: httpx.AsyncClient, calls: Any) -> None:
        self.client = client
        self.calls = calls

    async def query(self, query: str, token: str | None = None,
                    variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post("/graphql", headers=headers,
                                          json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def gateway(dev_issuer: DevIssuer, **limits: float) -> AsyncIterator[Gateway]:
    urls = {f"{s.replace('-', '_')}_url": STOPPED for s in UPSTREAMS}
    settings = GatewaySettings(environment="production", **urls, **limits)  # type: ignore[arg-type]
    app = create_app(make_settings(SERVICE, database_url="sqlite://",
                                   jwks_file=dev_issuer.jwks_path), settings)
    async with LifespanManager(app) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway") as client:
        yield Gateway(client, app.state.upstreams.calls)


@pytest.fixture
async def defaults(dev_issuer: DevIssuer) -> AsyncIterator[Gateway]:
    async for client in gateway(dev_issuer):
        yield client


@pytest.fixture
async def small_budget(dev_issuer: DevIssuer) -> AsyncIterator[Gateway]:
    # Room for one `me` (11) that takes a day to fill again: spent at once, not refilled.
    async for client in gateway(dev_issuer, cost_limit=11, cost_budget=11,
                                cost_budget_per_second=11 / 86_400):
        yield client


def cost_of(body: dict[str, Any]) -> int:
    requested: int = body["extensions"]["cost"]["requested"]
    return requested


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_every_answer_reports_its_cost_its_limit_and_the_callers_budget(
        defaults: Gateway, tokens: TokenFactory) -> None:
    body = await defaults.query("{ me { sub roles } }", tokens.clinician("staff-1", ["team-a"]))
    assert body["data"]["me"]["sub"] == "staff-1"
    cost = body["extensions"]["cost"]
    assert cost["requested"] == 11 and cost["limit"] == 250_000
    assert cost["budget"]["capacity"] == 1_250_000
    assert cost["budget"]["remaining"] <= 1_250_000 - 11
    assert cost["budget"]["refillPerSecond"] == 50_000


async def test_thirty_aliases_of_the_prospectus_with_runs_are_refused_before_any_call(
        defaults: Gateway, tokens: TokenFactory) -> None:
    """The issue's query: 30 aliases of 200 courses, each with its runs counted."""
    aliases = " ".join(f"a{i}: prospectus(first: 200) {{ edges {{ node {{ id "
                       f"runs {{ totalCount }} }} }} }}" for i in range(30))
    body = await defaults.query(f"{{ {aliases} }}", tokens.service_user("person-cost-1"))
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "COST_LIMIT"
    assert error["extensions"]["limit"] == 250_000
    assert error["extensions"]["cost"] == cost_of(body) > 250_000
    assert sum(defaults.calls.values()) == 0


async def test_aliases_fragments_and_variables_count_as_the_fields_they_stand_for(
        defaults: Gateway, tokens: TokenFactory) -> None:
    token = tokens.service_user("person-cost-2")
    literal = await defaults.query(
        "{ prospectus(first: 20) { edges { node { id runs(first: 10) { totalCount } } } } }",
        token)
    variable = await defaults.query(f"query ($first: Int) {{ {COURSES} }}", token,
                                    {"first": 20})
    twice = await defaults.query(f"query ($first: Int) {{ a: {COURSES} b: {COURSES} }}",
                                 token, {"first": 20})
    fragment = await defaults.query(
        "query ($first: Int) { prospectus(first: $first) { ...Page } }"
        " fragment Page on CourseConnection { edges { node { ... on Course { id "
        "runs(first: 10) { totalCount } } } } }", token, {"first": 20})
    double_page = await defaults.query(f"query ($first: Int) {{ {COURSES} }}", token,
                                       {"first": 40})
    assert cost_of(literal) == cost_of(variable) == cost_of(fragment) > 0
    assert cost_of(twice) == 2 * cost_of(variable)
    # The courses' share doubles with the page; the prospectus call (10) and its page (1)
    # do not.
    assert cost_of(double_page) == 2 * cost_of(variable) - 11


async def test_a_page_left_unbounded_costs_as_the_default_page_of_200(
        defaults: Gateway, tokens: TokenFactory) -> None:
    token = tokens.service_user("person-cost-3")
    unbounded = await defaults.query("{ prospectus { edges { node { id } } } }", token)
    bounded = await defaults.query("{ prospectus(first: 200) { edges { node { id } } } }",
                                   token)
    assert cost_of(unbounded) == cost_of(bounded) > cost_of(
        await defaults.query("{ prospectus(first: 2) { edges { node { id } } } }", token))


async def test_a_caseload_costs_in_proportion_to_the_people_asked_for(
        defaults: Gateway, tokens: TokenFactory) -> None:
    token = tokens.clinician("staff-1", ["team-a"])
    ten = await defaults.query(CASELOAD_VIEW, token, {"ids": [f"p-{i}" for i in range(10)]})
    twenty = await defaults.query(CASELOAD_VIEW, token, {"ids": [f"p-{i}" for i in range(20)]})
    assert cost_of(twenty) - cost_of(ten) == cost_of(ten) - 10


async def test_each_record_refetched_by_nodes_costs_a_service_call(
        defaults: Gateway, tokens: TokenFactory) -> None:
    """`nodes` reads each id with a call of its own: ten more ids, ten more calls (10 each)
    and ten more objects (1 each)."""
    token = tokens.clinician("staff-1", ["team-a"])
    query = "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    one = await defaults.query(query, token, {"ids": ["R29hbDpnLTA"]})
    eleven = await defaults.query(query, token, {"ids": [f"R29hbDpnLT{i}" for i in range(11)]})
    assert cost_of(eleven) - cost_of(one) == 10 * (10 + 1)


@pytest.mark.parametrize(("query", "variables"), [
    (TEAM_VIEW, {"id": "team-a"}),
    (CASELOAD_VIEW, {"ids": [f"p-{i}" for i in range(100)]}),
    (PROSPECTUS_VIEW, {}),
], ids=["team-of-200-with-training", "caseload-of-100", "prospectus-with-runs"])
async def test_realistic_front_end_views_are_within_the_default_limit(
        defaults: Gateway, tokens: TokenFactory, query: str,
        variables: dict[str, Any]) -> None:
    body = await defaults.query(query, tokens.manager("manager-1", ["team-a"]), variables)
    assert "COST_LIMIT" not in codes(body)
    assert 0 < cost_of(body) <= 250_000


async def test_a_spent_budget_refuses_with_the_seconds_to_wait_and_spares_other_callers(
        small_budget: Gateway, tokens: TokenFactory) -> None:
    spender = tokens.clinician("staff-spender", ["team-a"])
    first = await small_budget.query("{ me { sub } }", spender)
    assert first["data"]["me"]["sub"] == "staff-spender"
    assert first["extensions"]["cost"]["budget"]["remaining"] == 0
    refused = await small_budget.query("{ me { sub } }", spender)
    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "BUDGET_SPENT"
    assert error["extensions"]["retryAfter"] >= 3600
    assert spender not in str(refused)
    other = await small_budget.query("{ me { sub } }", tokens.clinician("staff-other"))
    assert other["data"]["me"]["sub"] == "staff-other"
