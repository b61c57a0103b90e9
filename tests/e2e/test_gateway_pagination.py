"""Connections page with the services' own keyset cursors: a page costs one call asking for
`first` items, cursors are opaque, and an insert between two pages neither repeats an item
nor skips one."""

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.common.testing.processes import NatsServer
from recovery.gateway.testing import Platform, running_platform

pytestmark = pytest.mark.integration

TEAM = "team-pages"
AREA = {"area": "safety_of_self", "service_user_view": "Calmer", "clinician_view": "Calmer",
        "views_agree": True, "strengths": ["Friends nearby"]}


@pytest.fixture(scope="module")
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory, nats_server: NatsServer,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    directory = tmp_path_factory.mktemp(f"pages-{uuid.uuid4().hex[:6]}")
    async with running_platform(
            databases=lambda name: f"sqlite+aiosqlite:///{directory / name}.db",
            jwks_file=dev_issuer.jwks_path, tokens=tokens, nats_url=nats_server.url) as p:
        await p.rest("workforce", "POST", "/v1/teams", tokens.admin("admin-p", [TEAM]),
                     json={"id": TEAM, "name": "Pages"})
        yield p


def staff(p: Platform) -> str:
    return p.tokens.clinician("staff-p", [TEAM])


async def add_goal(p: Platform, person: str, number: int) -> None:
    await p.rest("goals", "POST", "/v1/goals", p.tokens.service_user(person), json={
        "service_user_id": person, "team_id": TEAM, "description": f"Goal {number}"})


async def add_assessment(p: Platform, person: str, number: int) -> None:
    await p.rest("risk", "POST", "/v1/risk-assessments", staff(p), json={
        "service_user_id": person, "team_id": TEAM,
        "areas": [{**AREA, "service_user_view": f"Assessment {number}"}]})


#: Newest first by (created_at, id) in both services. (Crisis plans page the same way, but a
#: person has one plan at a time, so there is no second page to insert before.)
LISTS: dict[str, tuple[str, str, Callable[[Platform, str, int], Awaitable[None]]]] = {
    "goals": ("goals", "id description", add_goal),
    "riskAssessments": ("risk", "id status", add_assessment),
}


def person_list_query(field: str) -> str:
    return f"""query ($id: ID!, $first: Int, $after: String) {{ serviceUser(id: $id) {{
        {field}(first: $first, after: $after) {{ totalCount edges {{ cursor node {{
            {LISTS[field][1]} }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"""


async def person_page(p: Platform, field: str, person: str, first: int,
                      after: str | None = None) -> dict[str, Any]:
    body = await p.query(staff(p), person_list_query(field),
                         {"id": person, "first": first, "after": after})
    assert "errors" not in body, body
    page: dict[str, Any] = body["data"]["serviceUser"][field]
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


@pytest.mark.parametrize("field", sorted(LISTS))
async def test_page_two_after_an_insert_neither_repeats_nor_skips_an_item(
        platform: Platform, field: str) -> None:
    person = f"person-pages-{field}"
    add = LISTS[field][2]
    for number in range(5):
        await add(platform, person, number)
    everything = ids(await person_page(platform, field, person, 10))
    assert len(everything) == 5  # newest first

    first = await person_page(platform, field, person, 2)
    assert ids(first) == everything[:2] and first["pageInfo"]["hasNextPage"] is True
    await add(platform, person, 5)  # newer than all: it goes before page 1
    second = await person_page(platform, field, person, 2, first["pageInfo"]["endCursor"])
    assert ids(second) == everything[2:4]
    third = await person_page(platform, field, person, 2, second["pageInfo"]["endCursor"])
    assert ids(third) == everything[4:] and third["pageInfo"]["hasNextPage"] is False
    assert third["totalCount"] == 6


async def test_a_page_asks_the_service_for_first_items_from_its_own_cursor(
        platform: Platform) -> None:
    person = "person-pages-calls"
    for number in range(5):
        await add_goal(platform, person, number)
    with platform.recording("goals") as sent:
        first = await person_page(platform, "goals", person, 2)
    # A lone person's first page comes from their own list, asking for 2 (a caseload's from
    # one batch read); totalCount (5, past this page) from the batch read the counts share.
    lists = [r for r in sent if r.url.path == "/v1/goals"]
    assert len(lists) == 1 and lists[0].url.params["limit"] == "2"
    assert "cursor" not in lists[0].url.params
    batches = [json.loads(r.content) for r in sent if r.url.path == "/v1/goals:batch-read"]
    assert all(batch["limit_per_person"] != 2 for batch in batches)
    with platform.recording("goals") as sent:
        await person_page(platform, "goals", person, 2, first["pageInfo"]["endCursor"])
    pages = [r for r in sent if r.url.path == "/v1/goals"]
    assert len(pages) == 1 and pages[0].url.params["limit"] == "2"
    assert pages[0].url.params["cursor"]
    assert all(r.url.params.get("limit") != "200" for r in sent)


async def test_any_edge_cursor_continues_after_that_edge(platform: Platform) -> None:
    person = "person-pages-edges"
    for number in range(5):
        await add_goal(platform, person, number)
    everything = ids(await person_page(platform, "goals", person, 10))
    first = await person_page(platform, "goals", person, 3)
    middle = first["edges"][0]["cursor"]
    after_middle = await person_page(platform, "goals", person, 2, middle)
    assert ids(after_middle) == everything[1:3]


async def test_a_cursor_this_api_did_not_give_is_refused_as_invalid(
        platform: Platform) -> None:
    for cursor in ("bzow", "not a cursor", "WyJ4IiwgLTFd"):
        body = await platform.query(staff(platform), person_list_query("goals"),
                                    {"id": "person-pages-calls", "first": 2, "after": cursor})
        assert body["errors"][0]["extensions"]["code"] == "INVALID", body


async def test_staff_page_by_id_and_a_new_colleague_changes_no_later_page(
        platform: Platform) -> None:
    admin = platform.tokens.admin("admin-p", [TEAM])
    start = (date.today() - timedelta(days=30)).isoformat()

    async def add_staff(staff_id: str) -> None:
        await platform.rest("workforce", "POST", "/v1/staff", admin, json={
            "id": staff_id, "team_id": TEAM, "display_name": staff_id,
            "profession": "nursing", "grade": "band-5", "role_type": "professional",
            "fte": 1.0, "start_date": start})

    for number in (1, 3, 5, 7):
        await add_staff(f"pages-staff-{number}")
    query = """query ($first: Int, $after: String) { team(id: "team-pages") {
        staff(first: $first, after: $after) { edges { node { localId } }
                                              pageInfo { hasNextPage endCursor } } } }"""
    reader = platform.tokens.manager("manager-p", [TEAM])
    with platform.recording("workforce") as sent:
        first = (await platform.query(reader, query, {"first": 2}))["data"]["team"]["staff"]
    assert [e["node"]["localId"] for e in first["edges"]] == ["pages-staff-1", "pages-staff-3"]
    assert [r.url.params["limit"] for r in sent if r.url.path.endswith("/staff")] == ["2"]
    await add_staff("pages-staff-2")  # sorts into page 1, which has been read
    second = (await platform.query(reader, query, {
        "first": 2, "after": first["pageInfo"]["endCursor"]}))["data"]["team"]["staff"]
    assert [e["node"]["localId"] for e in second["edges"]] == ["pages-staff-5", "pages-staff-7"]
    assert second["pageInfo"]["hasNextPage"] is False
    # Counting a list longer than the page reads it through, the service's largest page a call.
    with platform.recording("workforce") as sent:
        counted = await platform.query(reader, '{ team(id: "team-pages") '
                                               '{ staff(first: 1) { totalCount } } }')
    assert counted["data"]["team"]["staff"]["totalCount"] == 5
    assert [r.url.params["limit"] for r in sent if r.url.path.endswith("/staff")] == [
        "1", "200"]


async def test_the_prospectus_asks_the_training_service_for_one_page(
        platform: Platform) -> None:
    query = "{ prospectus(first: 1) { edges { node { id } } pageInfo { hasNextPage } } }"
    with platform.recording("training") as sent:
        body = await platform.query(staff(platform), query)
    assert "errors" not in body, body
    assert [r.url.params["limit"] for r in sent] == ["1"]
    assert len(body["data"]["prospectus"]["edges"]) == 1
