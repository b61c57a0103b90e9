"""The risk API in process, on SQLite and PostgreSQL: co-assessments drafted, co-signed and
agreed (with differences kept in view), new drafts while the agreement stays in force,
withdrawal, positive risk-taking decisions, reviews due, batch reads; and no risk scores."""

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
from risk_api import RiskApi, area, unique

PROBLEM = "application/problem+json"


def problem_kind(body: dict[str, Any]) -> str:
    return str(body["type"]).rsplit("/", 1)[-1]


async def test_a_co_assessment_with_both_views_is_agreed_with_a_difference_recorded(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team, areas=[
        area("safety_of_self"),
        area("substances", person="A drink at the weekend is fine for me",
             clinician="Drinking has led to two admissions", agree=False,
             difference="We see the weekend drinking differently")])
    assert drafted["status"] == "draft" and drafted["version_status"] == "draft"
    assert drafted["differences"] == ["substances"]
    assert drafted["missing_parties"] == ["clinician", "service_user"]

    by_person = await api.sign(api.tokens.service_user(person), drafted)
    assert by_person.status_code == 201, by_person.text
    assert by_person.json()["missing_parties"] == ["clinician"]
    assert by_person.json()["active_version"] is None
    by_clinician = await api.sign(clinician, drafted)
    assert by_clinician.status_code == 201, by_clinician.text
    agreed = by_clinician.json()
    assert agreed["status"] == "agreed-with-differences"
    assert agreed["version_status"] == "agreed-with-differences"
    assert agreed["active_version"] == 1 and agreed["missing_parties"] == []
    substances = agreed["content"]["areas"][1]
    assert substances["views_agree"] is False
    assert substances["difference"] == "We see the weekend drinking differently"
    assert substances["service_user_view"] == "A drink at the weekend is fine for me"
    assert substances["clinician_view"] == "Drinking has led to two admissions"
    active = await api.send("GET", f"/v1/risk-assessments/{drafted['id']}/active",
                            api.tokens.service_user(person))
    assert active.status_code == 200
    assert {s["party"] for s in active.json()["signatures"]} == {"service_user", "clinician"}


async def test_views_that_all_agree_make_an_agreed_co_assessment(api: RiskApi) -> None:
    agreed = await api.agreed(unique("su"), unique("team"))
    assert agreed["status"] == "agreed" and agreed["differences"] == []


@pytest.mark.parametrize("body", [
    {"risk_score": 7},
    {"score": 0.4},
    {"risk_level": "high"},
    {"level": "medium"},
    {"riskLevel": "low"},
    {"probability": 0.12},
    {"stratification": "amber"},
    {"category": "high"},
    {"rating": 3},
    {"qualitativeRisk": "high"},
], ids=lambda body: next(iter(body)))
async def test_a_request_carrying_a_risk_score_is_refused_citing_nice_and_stores_nothing(
        api: RiskApi, body: dict[str, Any]) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    response = await api.send("POST", "/v1/risk-assessments", clinician, json={
        "service_user_id": person, "team_id": team, "areas": [area()], **body})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem_kind(problem) == "predictive-risk-score-refused"
    assert "NG225" in problem["detail"] and "not a number" in problem["detail"]
    assert problem["invalid-params"][0]["name"] == f"body.{next(iter(body))}"
    listed = await api.send("GET", "/v1/risk-assessments", clinician,
                            json=None)
    assert all(item["service_user_id"] != person for item in listed.json()["items"])


async def test_a_score_hidden_in_an_area_or_a_query_is_refused_and_changes_nothing(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team)
    nested = await api.send("PATCH", f"/v1/risk-assessments/{drafted['id']}", clinician,
                            etag='"1"', json={"areas": [{**area(), "risk_category": "low"}]})
    assert nested.status_code == 422
    assert nested.json()["invalid-params"][0]["name"] == "body.areas.0.risk_category"
    query = await api.client.get("/v1/risk-assessments", params={"risk_level": "high"},
                                 headers=api.auth(clinician))
    assert query.status_code == 422 and problem_kind(query.json()) == (
        "predictive-risk-score-refused")
    after = await api.read(clinician, drafted["id"])
    assert after.json() == drafted and after.headers["etag"] == '"1"'


async def test_an_edit_after_agreement_makes_a_draft_while_the_agreed_version_stays_active(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    agreed = await api.agreed(person, team)
    edited = await api.send("PATCH", f"/v1/risk-assessments/{agreed['id']}", clinician,
                            etag='"1"', json={"review_date": "2031-01-15"})
    assert edited.status_code == 200, edited.text
    draft = edited.json()
    assert edited.headers["etag"] == '"2"'
    assert draft["version"] == 2 and draft["version_status"] == "draft"
    assert draft["active_version"] == 1 and draft["status"] == "agreed"
    assert draft["signatures"] == [] and draft["content_hash"] != agreed["content_hash"]
    active = await api.send("GET", f"/v1/risk-assessments/{agreed['id']}/active", clinician)
    assert active.json()["version"] == 1 and active.json()["content"]["review_date"] is None
    # Signing the new draft by both moves the agreement on to it.
    assert (await api.sign(api.tokens.service_user(person), draft)).status_code == 201
    moved = await api.sign(clinician, draft)
    assert moved.json()["active_version"] == 2


async def test_a_stale_if_match_gets_412_and_a_missing_one_428(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team)
    path = f"/v1/risk-assessments/{drafted['id']}"
    first = await api.send("PATCH", path, clinician, etag='"1"',
                           json={"review_date": "2031-01-01"})
    assert first.status_code == 200
    stale = await api.send("PATCH", path, clinician, etag='"1"',
                           json={"review_date": "2032-01-01"})
    assert stale.status_code == 412 and problem_kind(stale.json()) == "version-conflict"
    missing = await api.send("PATCH", path, clinician, json={"review_date": "2032-01-01"})
    assert missing.status_code == 428
    assert (await api.read(clinician, drafted["id"])).json()["review_date"] == "2031-01-01"


async def test_a_signature_binds_the_exact_version_a_superseded_hash_does_not_count(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team)
    wrong_hash = await api.sign(api.tokens.service_user(person),
                                {**drafted, "content_hash": "sha256:" + "0" * 64})
    assert wrong_hash.status_code == 409
    assert problem_kind(wrong_hash.json()) == "content-hash-mismatch"
    assert (await api.sign(api.tokens.service_user(person), drafted)).status_code == 201
    edited = await api.send("PATCH", f"/v1/risk-assessments/{drafted['id']}", clinician,
                            etag='"1"', json={"review_date": "2031-02-02"})
    # The clinician signing version 1 now is too late: it is not the latest any more.
    late = await api.sign(clinician, drafted)
    assert late.status_code == 412
    version_two = edited.json()
    assert version_two["missing_parties"] == ["clinician", "service_user"]
    signed = await api.sign(clinician, version_two)
    assert signed.json()["active_version"] is None
    twice = await api.sign(clinician, version_two)
    assert twice.status_code == 409 and problem_kind(twice.json()) == "already-signed"


async def test_a_version_without_both_views_cannot_be_signed(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team,
                              areas=[area(person=None)])
    refused = await api.sign(clinician, drafted)
    assert refused.status_code == 409 and problem_kind(refused.json()) == "view-missing"


async def test_the_person_can_withdraw_their_agreement_and_others_cannot(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    agreed = await api.agreed(person, team)
    path = f"/v1/risk-assessments/{agreed['id']}/withdraw-agreement"
    by_staff = await api.send("POST", path, clinician, etag='"1"')
    assert by_staff.status_code == 403
    withdrawn = await api.send("POST", path, api.tokens.service_user(person), etag='"1"')
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "agreement-withdrawn"
    assert withdrawn.json()["active_version"] is None
    gone = await api.send("GET", f"/v1/risk-assessments/{agreed['id']}/active", clinician)
    assert gone.status_code == 404
    again = await api.send("POST", path, api.tokens.service_user(person), etag='"1"')
    assert again.status_code == 409


async def test_the_person_cannot_rewrite_the_clinicians_view(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    drafted = await api.draft(api.tokens.clinician("clin-1", [team]), service_user_id=person,
                              team_id=team)
    mine = api.tokens.service_user(person)
    path = f"/v1/risk-assessments/{drafted['id']}"
    refused = await api.send("PATCH", path, mine, etag='"1"',
                             json={"areas": [area(clinician="All is fine")]})
    assert refused.status_code == 403 and problem_kind(refused.json()) == (
        "clinicians-own-words")
    own_words = await api.send("PATCH", path, mine, etag='"1"',
                               json={"areas": [area(person="I can ask for help")]})
    assert own_words.status_code == 200, own_words.text


async def test_a_positive_risk_decision_is_linked_to_its_goal_with_both_sides_views(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    agreed = await api.agreed(person, team)
    response = await api.send(
        "POST", f"/v1/risk-assessments/{agreed['id']}/positive-risk-decisions", clinician,
        etag='"1"', json={
            "goal_id": "goal-42", "decision": "Travel alone to the allotment",
            "options": ["Go with a support worker", "Go alone on weekdays"],
            "benefits": {"service_user": ["Independence"], "clinician": ["Confidence"]},
            "harms": {"service_user": ["Might feel lonely"], "clinician": ["Missed meds"]},
            "safeguards": ["Text sister on arrival"], "review_date": "2031-03-01"})
    assert response.status_code == 201, response.text
    body = response.json()
    decision = body["content"]["positive_risk_decisions"][0]
    assert decision["goal_id"] == "goal-42" and decision["recorded_by"] == "clin-1"
    assert decision["harms"]["clinician"] == ["Missed meds"]
    assert body["version"] == 2 and body["active_version"] == 1
    no_safeguards = await api.send(
        "POST", f"/v1/risk-assessments/{agreed['id']}/positive-risk-decisions", clinician,
        etag='"2"', json={"goal_id": "goal-42", "decision": "x", "safeguards": [],
                          "review_date": "2031-03-01"})
    assert no_safeguards.status_code == 422


async def test_a_safety_plan_is_held_by_the_person_and_versioned_with_the_assessment(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    plan = {"i_will": [{"what": "Go for a walk", "when": "When I cannot sleep"}],
            "others_will": [{"who": "Sister", "what": "Come round", "how_to_reach": "Mobile"}],
            "copy_held_by_service_user_on": "2030-01-05"}
    drafted = await api.draft(clinician, service_user_id=person, team_id=team,
                              safety_plan=plan)
    mine = await api.read(api.tokens.service_user(person), drafted["id"])
    assert mine.status_code == 200
    assert mine.json()["content"]["safety_plan"]["others_will"][0]["who"] == "Sister"


async def test_three_people_editing_at_once_never_lose_an_update(api: RiskApi) -> None:
    """The service user and two clinicians send changes from the same version at the same
    time: one lands, the others get 412, re-read and reapply; all three changes are kept."""
    person, team = unique("su"), unique("team")
    first = api.tokens.clinician("clin-1", [team])
    second = api.tokens.clinician("clin-2", [team])
    mine = api.tokens.service_user(person)
    drafted = await api.draft(first, service_user_id=person, team_id=team, areas=[
        area("safety_of_self"), area("substances"), area("self_neglect")])
    path = f"/v1/risk-assessments/{drafted['id']}"
    edits = {
        mine: ("safety_of_self", "service_user_view", "I call my sister first"),
        first: ("substances", "clinician_view", "Cut down since March"),
        second: ("self_neglect", "clinician_view", "Eating well again"),
    }

    async def edit_until_kept(token: str) -> list[int]:
        statuses: list[int] = []
        while True:
            current = (await api.read(token, drafted["id"])).json() if statuses else drafted
            etag = f'"{current["version"]}"'
            name, field, words = edits[token]
            areas = [{**a, field: words} if a["area"] == name else a
                     for a in current["content"]["areas"]]
            response = await api.send("PATCH", path, token, etag=etag, json={"areas": areas})
            statuses.append(response.status_code)
            if response.status_code != 412:
                return statuses

    results = await asyncio.gather(*(edit_until_kept(token) for token in edits))
    assert all(r[-1] == 200 for r in results), results
    # All three started from version 1: exactly one could land first, none was lost.
    assert sorted(r[0] for r in results) == [200, 412, 412]
    final = (await api.read(first, drafted["id"])).json()
    kept = {a["area"]: a for a in final["content"]["areas"]}
    assert kept["safety_of_self"]["service_user_view"] == "I call my sister first"
    assert kept["substances"]["clinician_view"] == "Cut down since March"
    assert kept["self_neglect"]["clinician_view"] == "Eating well again"
    versions = await api.send("GET", f"{path}/versions", first)
    assert [v["version"] for v in versions.json()["items"]] == [1, 2, 3, 4]


async def test_both_parties_signing_at_the_same_moment_agree_the_version(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=person, team_id=team)
    signed = await asyncio.gather(api.sign(api.tokens.service_user(person), drafted),
                                  api.sign(clinician, drafted))
    assert [r.status_code for r in signed] == [201, 201], [r.text for r in signed]
    final = (await api.read(clinician, drafted["id"])).json()
    assert final["status"] == "agreed" and final["active_version"] == 1
    assert len(final["signatures"]) == 2


async def test_reviews_due_list_the_teams_assessments_whose_date_has_come(api: RiskApi) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    today = date.today()
    overdue = await api.draft(clinician, service_user_id=unique("su"), team_id=team,
                              review_date=(today - timedelta(days=3)).isoformat())
    await api.draft(clinician, service_user_id=unique("su"), team_id=team,
                    review_date=(today + timedelta(days=30)).isoformat())
    due = await api.send("GET", f"/v1/teams/{team}/risk-reviews-due", clinician)
    assert due.status_code == 200, due.text
    items = due.json()["items"]
    assert [i["assessment_id"] for i in items] == [overdue["id"]]
    assert items[0]["overdue_days"] in (3, 4)  # a UTC day boundary may fall in between
    wider = await api.client.get(f"/v1/teams/{team}/risk-reviews-due",
                                 params={"within_days": 60}, headers=api.auth(clinician))
    assert len(wider.json()["items"]) == 2
    other = await api.send("GET", f"/v1/teams/{team}/risk-reviews-due",
                           api.tokens.clinician("clin-9", [unique("team")]))
    assert other.status_code == 404


async def test_batch_read_gives_each_person_only_what_the_caller_may_see(api: RiskApi) -> None:
    team, other_team = unique("team"), unique("team")
    alice, bob = unique("su"), unique("su")
    clinician = api.tokens.clinician("clin-1", [team])
    mine = await api.draft(clinician, service_user_id=alice, team_id=team)
    await api.draft(api.tokens.clinician("clin-2", [other_team]), service_user_id=bob,
                    team_id=other_team)
    response = await api.send("POST", "/v1/risk-assessments:batch-read", clinician,
                              json={"service_user_ids": [alice, bob]})
    assert response.status_code == 200, response.text
    results = {r["service_user_id"]: r for r in response.json()["results"]}
    assert [a["id"] for a in results[alice]["assessments"]] == [mine["id"]]
    assert results[bob]["assessments"] == []


async def test_another_service_user_gets_404_on_someone_elses_assessment(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    drafted = await api.draft(api.tokens.clinician("clin-1", [team]), service_user_id=person,
                              team_id=team)
    stranger = api.tokens.service_user(unique("su"))
    assert (await api.read(stranger, drafted["id"])).status_code == 404
    own = await api.read(api.tokens.service_user(person), drafted["id"])
    assert own.status_code == 200


async def test_a_co_assessment_made_in_error_is_kept_readable_closed_and_out_of_lists(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    agreed = await api.agreed(person, team, review_date="2020-01-01")
    path = f"/v1/risk-assessments/{agreed['id']}"
    by_person = await api.send("POST", f"{path}/entered-in-error",
                               api.tokens.service_user(person), etag='"1"',
                               json={"reason": "duplicate"})
    assert by_person.status_code == 403
    for no_reason in ({}, {"reason": "because"}):
        refused = await api.send("POST", f"{path}/entered-in-error", clinician, etag='"1"',
                                 json=no_reason)
        assert refused.status_code == 422
    assert (await api.read(clinician, agreed["id"])).json()["status"] == agreed["status"]
    marked = await api.send("POST", f"{path}/entered-in-error", clinician, etag='"1"',
                            json={"reason": "recorded-by-mistake"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "entered-in-error"
    assert marked.json()["entered_in_error_reason"] == "recorded-by-mistake"
    assert marked.json()["active_version"] is None
    assert (await api.read(clinician, agreed["id"])).status_code == 200
    edit = await api.send("PATCH", path, clinician, etag='"1"',
                          json={"review_date": "2031-01-01"})
    assert edit.status_code == 409 and problem_kind(edit.json()) == "entered-in-error"
    listed = await api.client.get("/v1/risk-assessments", params={"service_user_id": person},
                                  headers=api.auth(clinician))
    assert listed.json()["items"] == []
    due = await api.send("GET", f"/v1/teams/{team}/risk-reviews-due", clinician)
    assert due.json()["items"] == []


async def test_a_batch_read_gives_each_person_the_cursor_their_list_goes_on_from(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = [await api.draft(clinician, service_user_id=person, team_id=team)
               for _ in range(3)]
    response = await api.send("POST", "/v1/risk-assessments:batch-read", clinician,
                              json={"service_user_ids": [person], "limit_per_person": 2})
    [result] = response.json()["results"]
    newest_first = [a["id"] for a in reversed(drafted)]
    assert [a["id"] for a in result["assessments"]] == newest_first[:2]
    assert result["truncated"] is True
    rest = await api.client.get("/v1/risk-assessments", headers=api.auth(clinician), params={
        "service_user_id": person, "cursor": result["next_cursor"]})
    assert [a["id"] for a in rest.json()["items"]] == newest_first[2:]
    whole = await api.send("POST", "/v1/risk-assessments:batch-read", clinician,
                           json={"service_user_ids": [person], "limit_per_person": 3})
    assert whole.json()["results"][0]["next_cursor"] is None
