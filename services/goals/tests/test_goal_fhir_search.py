"""FHIR Goal searches, on SQLite and PostgreSQL: each parameter the CapabilityStatement
declares, alone and together, _lastUpdated's prefixes, _count up to the page size and beyond,
_summary=count, _total=accurate, paging by next links to the last page, unknown parameters
(lenient and strict) and the public base in every link; every Bundle validated (R4B)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FHIR_JSON, GoalsApi, assert_outcome, unique
from fhir.resources.R4B.bundle import Bundle

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app

FORWARDED = {"Forwarded": 'proto=https;host="ehr-link.example.org"',
             "X-Forwarded-Prefix": "/recovery"}
PUBLIC_BASE = "https://ehr-link.example.org/recovery/fhir"


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


async def search(api: GoalsApi, token: str, params: Any = None,
                 **headers: str) -> dict[str, Any]:
    """A search that must succeed: its searchset Bundle, validated."""
    response = await api.client.get("/fhir/Goal", params=params,
                                    headers={**api.auth(token), **headers})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    bundle: dict[str, Any] = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    for entry in bundle["entry"]:
        assert entry["search"] == {"mode": "match"}
        assert entry["fullUrl"].endswith(f"/fhir/Goal/{entry['resource']['id']}")
        assert entry["resource"]["text"]["status"] == "generated"
    return bundle


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]


async def every_page(api: GoalsApi, token: str, params: Any,
                     base: str = "http://test/fhir") -> list[dict[str, Any]]:
    """The pages of a search, following each next link to the last page."""
    pages = [await search(api, token, params)]
    while (following := links(pages[-1]).get("next")) is not None:
        assert following.startswith(f"{base}/Goal?")
        response = await api.client.get(following.replace(base, "/fhir"),
                                        headers=api.auth(token))
        assert response.status_code == 200, response.text
        Bundle.model_validate(response.json())
        pages.append(response.json())
        assert len(pages) < 50, "the next links never end"
    return pages


async def goals_of(api: GoalsApi, person: str, count: int, **body: Any) -> list[str]:
    """``count`` goals the person writes, oldest first."""
    own = api.tokens.service_user(person)
    return [(await api.create(own, service_user_id=person, team_id="team-a",
                              description=f"goal {n}", **body))["id"] for n in range(count)]


async def test_patient_and_subject_find_a_persons_goals_however_they_name_them(
        api: GoalsApi) -> None:
    person, other = unique("su"), unique("su")
    mine = await goals_of(api, person, 2)
    await goals_of(api, other, 1)
    staff = api.tokens.clinician()
    for params in ({"patient": f"Patient/{person}"}, {"patient": person},
                   {"patient": f"https://ehr.example.org/fhir/Patient/{person}"},
                   {"subject": f"Patient/{person}"}, {"subject": person},
                   {"patient": person, "subject": f"Patient/{person}"}):
        assert ids(await search(api, staff, params)) == mine[::-1], params
    assert ids(await search(api, staff, {"patient": unique("su")})) == []


async def test_lifecycle_status_finds_goals_with_any_of_the_codes(api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    (active,) = await goals_of(api, person, 1)
    proposed = (await api.create(staff, service_user_id=person, team_id="team-a",
                                 description="Sleep"))["id"]
    declined = (await api.create(staff, service_user_id=person, team_id="team-a",
                                 description="Diet"))["id"]
    assert (await api.send("POST", f"/v1/goals/{declined}/decline", own, etag='"1"',
                           json={"reason": "Not now"})).status_code == 200
    mistake = (await api.create(own, service_user_id=person, team_id="team-a",
                                description="Typo"))["id"]
    assert (await api.send("POST", f"/v1/goals/{mistake}/status", staff, etag='"1"',
                           json={"status": "entered-in-error"})).status_code == 200

    def found(*status: str | list[str]) -> Any:
        params: list[tuple[str, str]] = [("patient", person)]
        params += [("lifecycle-status", s if isinstance(s, str) else ",".join(s))
                   for s in status]
        return search(api, staff, params)

    assert ids(await found("proposed")) == [proposed]
    assert set(ids(await found(["proposed", "rejected"]))) == {proposed, declined}
    assert set(ids(await found(["active", "proposed"]))) == {active, proposed}
    # Repeated, the parameter is ANDed: only the codes both name.
    assert ids(await found(["active", "proposed"], ["proposed", "rejected"])) == [proposed]
    assert ids(await found("active", "rejected")) == []
    # A goal entered in error is left out unless asked for.
    assert mistake not in ids(await search(api, staff, {"patient": person}))
    assert ids(await found("entered-in-error")) == [mistake]


async def test__id_finds_the_goals_named_within_the_callers_reach(api: GoalsApi) -> None:
    person, other = unique("su"), unique("su")
    first, second, third = await goals_of(api, person, 3)
    (others,) = await goals_of(api, other, 1)
    own = api.tokens.service_user(person)
    assert ids(await search(api, own, {"_id": first})) == [first]
    assert ids(await search(api, own, {"_id": f"{first},{third}"})) == [third, first]
    assert ids(await search(api, own, [("_id", f"{first},{second}"),
                                       ("_id", f"{second},{third}")])) == [second]
    assert ids(await search(api, own, {"_id": f"{second},no-such-goal"})) == [second]
    # Another person's goal named by id is simply not found: no hint that it exists.
    assert ids(await search(api, own, {"_id": others})) == []
    assert ids(await search(api, own, {"_id": f"{others},{first}",
                                       "patient": person})) == [first]


async def test__last_updated_filters_on_when_each_goal_last_changed(api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    goals = []
    for n in range(3):
        goals.append(await api.create(own, service_user_id=person, team_id="team-a",
                                      description=f"goal {n}"))
        await asyncio.sleep(0.02)  # each goal in a millisecond of its own
    a, b, c = (g["id"] for g in goals)
    changed = {}
    for goal in goals:
        read = await api.client.get(f"/fhir/Goal/{goal['id']}", headers=api.auth(own))
        changed[goal["id"]] = read.json()["meta"]["lastUpdated"]

    def since(*values: str) -> Any:
        return search(api, staff, [("patient", person), *(("_lastUpdated", v) for v in values)])

    assert ids(await since(f"ge{changed[b]}")) == [c, b]
    assert ids(await since(f"lt{changed[b]}")) == [a]
    assert ids(await since(f"ge{changed[b]}", f"lt{changed[c]}")) == [b]
    today = datetime.now(UTC).date()
    assert ids(await since(today.isoformat())) == [c, b, a]  # eq: that day
    assert ids(await since(f"eq{today.isoformat()}")) == [c, b, a]
    assert ids(await since(f"le{today.isoformat()}")) == [c, b, a]
    assert ids(await since(f"gt{(today - timedelta(days=1)).isoformat()}")) == [c, b, a]
    assert ids(await since(f"eb{(today + timedelta(days=1)).isoformat()}")) == [c, b, a]
    assert ids(await since(f"sa{today.isoformat()}")) == []
    assert ids(await since(f"lt{today.year}")) == []
    assert ids(await since(f"ge{today.year}-{today.month:02d}")) == [c, b, a]
    # It is the last change that counts, not the creation: A changes after C was made.
    await asyncio.sleep(0.02)
    assert (await api.send("PATCH", f"/v1/goals/{a}", own, etag='"1"',
                           json={"description": "goal 0, reworded"})).status_code == 200
    assert ids(await since(f"ge{changed[c]}")) == [c, a]


async def test_every_parameter_works_together_with_the_others(api: GoalsApi) -> None:
    person, other = unique("su"), unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    first, second = await goals_of(api, person, 2)
    await goals_of(api, other, 1)
    proposal = (await api.create(staff, service_user_id=person, team_id="team-a",
                                 description="Sleep"))["id"]
    today = datetime.now(UTC).date().isoformat()
    combined = {"patient": f"Patient/{person}", "subject": person,
                "lifecycle-status": "active,proposed", "_lastUpdated": f"ge{today}",
                "_id": f"{first},{proposal}"}
    assert ids(await search(api, staff, combined)) == [proposal, first]
    assert ids(await search(api, staff, {**combined, "lifecycle-status": "active"})) == [first]
    assert ids(await search(api, own, {**combined, "_id": second})) == [second]
    assert ids(await search(api, own, {**combined, "_id": second,
                                       "lifecycle-status": "proposed"})) == []
    assert ids(await search(api, staff, {**combined, "_lastUpdated": f"lt{today}"})) == []


async def test__summary_count_and__count_0_give_the_total_only(api: GoalsApi) -> None:
    person = unique("su")
    await goals_of(api, person, 3)
    staff = api.tokens.clinician()
    for params in ({"patient": person, "_summary": "count"}, {"patient": person, "_count": 0}):
        bundle = await search(api, staff, params)
        assert (bundle["total"], bundle["entry"]) == (3, []), params
        assert "next" not in links(bundle)
    lifecycle = await search(api, staff, {"patient": person, "_summary": "count",
                                          "lifecycle-status": "proposed"})
    assert lifecycle["total"] == 0


async def test__total_accurate_counts_every_match_the_caller_may_see(api: GoalsApi) -> None:
    person = unique("su")
    await goals_of(api, person, 5)
    own = api.tokens.service_user(person)
    await api.create(own, service_user_id=person, team_id="team-b", description="elsewhere")
    team_a = api.tokens.clinician("staff-1", ["team-a"])
    page = await search(api, team_a, {"patient": person, "_count": 2, "_total": "accurate"})
    assert (page["total"], len(page["entry"])) == (5, 2)
    # The person sees their goals in both teams; staff only their own team's.
    assert (await search(api, own, {"patient": person, "_count": 2,
                                    "_total": "accurate"}))["total"] == 6
    plain = await search(api, team_a, {"patient": person, "_count": 2})
    assert "total" not in plain  # a first page of several says no total unasked
    none = await search(api, team_a, {"patient": person, "_total": "none"})
    assert "total" not in none and len(none["entry"]) == 5
    whole = await search(api, team_a, {"patient": person})
    assert whole["total"] == 5  # one page holds them all


async def test_paging_follows_next_links_to_the_last_page(api: GoalsApi) -> None:
    person = unique("su")
    made = await goals_of(api, person, 7)
    staff = api.tokens.clinician()
    pages = await every_page(api, staff, {"patient": person, "_count": 2,
                                          "_total": "accurate"})
    assert [len(page["entry"]) for page in pages] == [2, 2, 2, 1]
    assert [goal for page in pages for goal in ids(page)] == made[::-1]
    assert all(page["total"] == 7 for page in pages)
    assert "next" not in links(pages[-1])
    for page in pages[:-1]:  # each next link is the same search, further on
        following = links(page)["next"]
        assert "_count=2" in following and f"patient={person}" in following


async def test_an_unknown_parameter_is_dropped_from_self_unless_handling_is_strict(
        api: GoalsApi) -> None:
    person = unique("su")
    await goals_of(api, person, 1)
    staff = api.tokens.clinician()
    params = {"patient": person, "colour": "blue", "_sort": "-date"}
    lenient = await search(api, staff, params)
    assert len(lenient["entry"]) == 1
    assert "colour" not in links(lenient)["self"] and "_sort" not in links(lenient)["self"]
    assert f"patient={person}" in links(lenient)["self"]
    strict = await api.client.get("/fhir/Goal", params=params,
                                  headers={**api.auth(staff), "Prefer": "handling=strict"})
    outcome = assert_outcome(strict, 400, "strict")
    assert "colour" in outcome["issue"][0]["diagnostics"] or "_sort" in str(outcome)
    assert len((await search(api, staff, {"patient": person},
                             Prefer="handling=strict"))["entry"]) == 1


async def test_every_link_and_full_url_is_at_the_public_base(api: GoalsApi) -> None:
    person = unique("su")
    await goals_of(api, person, 3)
    staff = api.tokens.clinician()
    first = await search(api, staff, {"patient": person, "_count": 2}, **FORWARDED)
    assert set(links(first)) == {"self", "next"}
    assert all(url.startswith(f"{PUBLIC_BASE}/Goal?") for url in links(first).values())
    assert all(e["fullUrl"] == f"{PUBLIC_BASE}/Goal/{e['resource']['id']}"
               for e in first["entry"])
    following = links(first)["next"].replace(PUBLIC_BASE, "/fhir")
    second = await api.client.get(following, headers={**api.auth(staff), **FORWARDED})
    assert all(url.startswith(f"{PUBLIC_BASE}/Goal?") for url in links(second.json()).values())
    assert second.json()["entry"][0]["fullUrl"].startswith(f"{PUBLIC_BASE}/Goal/")


# --- _count against the page size, on a service with small pages ----------------------------


@pytest.fixture
async def small_pages(database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory,
                      tmp_path: Path) -> AsyncIterator[GoalsApi]:
    """A goals service whose pages hold 2 goals unless asked, and 3 at most."""
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, page_size_default=2,
                             page_size_max=3)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield GoalsApi(client, tokens)


async def test__count_is_honoured_up_to_the_page_size_and_capped_beyond(
        small_pages: GoalsApi) -> None:
    api, person = small_pages, unique("su")
    made = await goals_of(api, person, 5)
    staff = api.tokens.clinician()
    unasked = await search(api, staff, {"patient": person})
    assert ids(unasked) == made[:-3:-1]  # the default page: 2
    one = await search(api, staff, {"patient": person, "_count": 1})
    assert len(one["entry"]) == 1 and "_count=1" in links(one)["self"]
    for asked in ("3", "4", "5000"):
        capped = await search(api, staff, {"patient": person, "_count": asked})
        assert len(capped["entry"]) == 3, asked
        assert "_count=3" in links(capped)["self"], asked  # the page it really is
    pages = await every_page(api, staff, {"patient": person, "_count": 5000})
    assert [len(page["entry"]) for page in pages] == [3, 2]
    assert [goal for page in pages for goal in ids(page)] == made[::-1]
