"""Retried creating mutations through the gateway: with an ``Idempotency-Key`` header or an
``idempotencyKey`` argument, a retry answers the first record and creates nothing more."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.idempotency import events_about
from recovery.common.testing.plugin import TokenFactory, unique
from recovery.gateway.testing import Platform, running_platform

PROPOSE = """
mutation ($input: GoalInput!, $key: String) {
  proposeGoal(input: $input, idempotencyKey: $key) {
    __typename
    ... on Goal { id localId version description }
    ... on Invalid { message }
  }
}"""
TWO_GOALS = """
mutation ($first: GoalInput!, $second: GoalInput!) {
  home: proposeGoal(input: $first) { __typename ... on Goal { id description } }
  work: proposeGoal(input: $second) { __typename ... on Goal { id description } }
}"""
GOALS = """
query ($id: ID!) { serviceUser(id: $id) { goals { totalCount edges { node { id } } } } }"""


@pytest.fixture
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory,
                   tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens) as p:
        yield p


async def send(platform: Platform, token: str, query: str, variables: dict[str, Any],
               key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await platform.gateway.post("/graphql", headers=headers,
                                           json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def goal_input(person: str, description: str) -> dict[str, Any]:
    return {"serviceUserId": person, "teamId": "team-a", "description": description}


async def goal_ids(platform: Platform, person: str) -> list[str]:
    body = await platform.query(platform.tokens.service_user(person), GOALS, {"id": person})
    goals = body["data"]["serviceUser"]["goals"]
    return [edge["node"]["id"] for edge in goals["edges"]]


async def test_a_retried_propose_goal_with_the_same_header_answers_the_first_goal(
        platform: Platform) -> None:
    person, staff = unique("su"), platform.tokens.clinician("staff-1", ["team-a"])
    variables = {"input": goal_input(person, "Swim a length")}
    first = await send(platform, staff, PROPOSE, variables, key="retry-1")
    again = await send(platform, staff, PROPOSE, variables, key="retry-1")
    assert "errors" not in first and "errors" not in again, (first, again)
    assert first["data"]["proposeGoal"]["__typename"] == "Goal"
    assert again["data"] == first["data"]
    goal_id = first["data"]["proposeGoal"]["id"]
    assert await goal_ids(platform, person) == [goal_id]
    local = first["data"]["proposeGoal"]["localId"]
    assert await events_about(platform.services["goals"], local) == [
        "recovery.goals.goal.proposed"]


async def test_a_retried_propose_goal_with_the_same_argument_answers_the_first_goal(
        platform: Platform) -> None:
    person, staff = unique("su"), platform.tokens.clinician("staff-1", ["team-a"])
    variables = {"input": goal_input(person, "Join the running club"), "key": unique("k")}
    first = await send(platform, staff, PROPOSE, variables)
    again = await send(platform, staff, PROPOSE, variables)
    assert first["data"]["proposeGoal"]["__typename"] == "Goal"
    assert again["data"] == first["data"]
    assert await goal_ids(platform, person) == [first["data"]["proposeGoal"]["id"]]


async def test_the_argument_reused_for_another_goal_is_invalid_and_creates_nothing(
        platform: Platform) -> None:
    person, staff = unique("su"), platform.tokens.clinician("staff-1", ["team-a"])
    key = unique("k")
    first = await send(platform, staff, PROPOSE,
                       {"input": goal_input(person, "Visit my nan"), "key": key})
    other = await send(platform, staff, PROPOSE,
                       {"input": goal_input(person, "Learn Welsh"), "key": key})
    assert other["data"]["proposeGoal"]["__typename"] == "Invalid"
    assert "Idempotency-Key" in other["data"]["proposeGoal"]["message"]
    assert await goal_ids(platform, person) == [first["data"]["proposeGoal"]["id"]]


async def test_each_aliased_mutation_of_a_document_gets_a_key_of_its_own(
        platform: Platform) -> None:
    person, staff = unique("su"), platform.tokens.clinician("staff-1", ["team-a"])
    variables = {"first": goal_input(person, "A home of my own"),
                 "second": goal_input(person, "Paid work two days a week")}
    first = await send(platform, staff, TWO_GOALS, variables, key="doc-1")
    again = await send(platform, staff, TWO_GOALS, variables, key="doc-1")
    assert "errors" not in first, first
    home, work = first["data"]["home"], first["data"]["work"]
    assert (home["description"], work["description"]) == (
        "A home of my own", "Paid work two days a week")
    assert again["data"] == first["data"]
    assert sorted(await goal_ids(platform, person)) == sorted([home["id"], work["id"]])


async def test_a_header_that_is_no_key_is_an_invalid_error_and_creates_nothing(
        platform: Platform) -> None:
    person, staff = unique("su"), platform.tokens.clinician("staff-1", ["team-a"])
    body = await send(platform, staff, PROPOSE, {"input": goal_input(person, "Bake bread")},
                      key="k" * 255)
    assert body["data"]["proposeGoal"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["INVALID"]
    assert await goal_ids(platform, person) == []
