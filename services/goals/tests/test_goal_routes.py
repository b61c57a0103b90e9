"""The goals REST API, in process with its lifespan, on SQLite and on PostgreSQL."""

import asyncio
from datetime import date, timedelta
from typing import Any

from conftest import GoalsApi, unique
from sqlmodel import col, select

from recovery.common.audit import AuditEvent

PROBLEM = "application/problem+json"


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_minimal_create_by_staff_is_a_proposal_in_staff_words(api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician("staff-1", ["team-a"])
    response = await api.client.post(
        "/v1/goals", headers=api.auth(staff),
        json={"service_user_id": person, "team_id": "team-a", "description": "Get back to work"})
    assert response.status_code == 201, response.text
    goal = response.json()
    assert goal["lifecycle_status"] == "proposed"
    assert goal["expressed_by"] == "staff"
    assert goal["proposed_by"] == "staff-1"
    assert goal["kind"] == "life"
    assert goal["version"] == 1
    assert goal["accepted_at"] is None
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/goals/{goal['id']}"


async def test_minimal_create_by_the_person_is_active_and_in_their_own_words(
        api: GoalsApi) -> None:
    person = unique("su")
    goal = await api.create(api.tokens.service_user(person), service_user_id=person,
                            team_id="team-a", description="Swim in the sea again")
    assert goal["lifecycle_status"] == "active"
    assert goal["expressed_by"] == "service_user"
    assert goal["achievement_status"] == "in-progress"
    assert goal["proposed_by"] is None
    assert goal["accepted_at"] is not None


async def test_a_goal_keeps_everything_the_person_says_about_it(api: GoalsApi) -> None:
    person = unique("su")
    target = (date.today() + timedelta(days=120)).isoformat()
    body = {
        "service_user_id": person, "team_id": "team-a", "description": "Find a job I enjoy",
        "life_area": "work_and_education", "chime_tags": ["hope", "empowerment", "hope"],
        "why_it_matters": "I want my own money and a reason to get up",
        "strengths": ["good with people", "punctual"],
        "supporters": [{"role": "peer_specialist", "name": "Sam"},
                       {"role": "staff", "id": "staff-7"}, {"role": "carer", "name": "Mum"}],
        "target_date": target,
        "steps": [{"who": "service_user", "what": "Update my CV", "by_when": target},
                  {"who": "peer", "what": "Go with me to the job centre"}],
    }
    goal = await api.create(api.tokens.service_user(person), **body)
    read = await api.read(api.tokens.clinician("staff-1", ["team-a"]), goal["id"])
    assert read.status_code == 200
    stored = read.json()
    assert stored == goal
    assert stored["life_area"] == "work_and_education"
    assert stored["chime_tags"] == ["hope", "empowerment"]
    assert stored["strengths"] == ["good with people", "punctual"]
    assert [s["role"] for s in stored["supporters"]] == ["peer_specialist", "staff", "carer"]
    assert stored["target_date"] == target
    assert [(s["who"], s["what"], s["done"]) for s in stored["steps"]] == [
        ("service_user", "Update my CV", False), ("peer", "Go with me to the job centre", False)]
    assert all(s["id"] for s in stored["steps"])
    assert read.headers["etag"] == '"1"'


async def test_the_person_accepts_a_proposed_goal_and_it_becomes_active(api: GoalsApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    goal = await api.create(staff, service_user_id=person, team_id="team-a",
                            description="Walk to the park each week")
    response = await api.send("POST", f"/v1/goals/{goal['id']}/accept", own, etag='"1"')
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["lifecycle_status"] == "active"
    assert accepted["achievement_status"] == "in-progress"
    assert accepted["accepted_at"] is not None
    assert accepted["expressed_by"] == "staff"
    assert accepted["version"] == 2
    assert response.headers["etag"] == '"2"'


async def test_declining_keeps_the_goal_as_rejected_with_the_persons_reason(
        api: GoalsApi) -> None:
    person = unique("su")
    goal = await api.create(api.tokens.clinician(), service_user_id=person, team_id="team-a",
                            description="Take medication daily")
    response = await api.send("POST", f"/v1/goals/{goal['id']}/decline",
                              api.tokens.service_user(person), etag='"1"',
                              json={"reason": "Not what matters to me now"})
    assert response.status_code == 200, response.text
    declined = response.json()
    assert declined["lifecycle_status"] == "rejected"
    assert declined["status_reason"] == "Not what matters to me now"
    read = await api.read(api.tokens.clinician(), goal["id"])
    assert read.status_code == 200 and read.json()["lifecycle_status"] == "rejected"


async def test_staff_cannot_accept_or_decline_on_the_persons_behalf(api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    goal = await api.create(staff, service_user_id=person, team_id="team-a",
                            description="Join a choir")
    for verb in ("accept", "decline"):
        response = await api.send("POST", f"/v1/goals/{goal['id']}/{verb}", staff, etag='"1"')
        assert problem_of(response, 403)["type"].endswith("only-the-person-decides")
    assert (await api.read(staff, goal["id"])).json()["lifecycle_status"] == "proposed"


async def test_staff_cannot_make_a_proposal_active_through_the_status_route(
        api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    goal = await api.create(staff, service_user_id=person, team_id="team-a",
                            description="Volunteer at the library")
    response = await api.send("POST", f"/v1/goals/{goal['id']}/status", staff, etag='"1"',
                              json={"status": "active"})
    problem_of(response, 409)


async def test_an_accepted_goal_cannot_be_accepted_again(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.proposed_then_accepted(api.tokens.clinician(), person, own,
                                            team_id="team-a", description="Cook for friends")
    response = await api.send("POST", f"/v1/goals/{goal['id']}/accept", own, etag='"2"')
    assert problem_of(response, 409)["type"].endswith("not-proposed")


async def test_therapeutic_goal_without_a_life_goal_is_refused_with_a_clear_problem(
        api: GoalsApi) -> None:
    person = unique("su")
    response = await api.client.post(
        "/v1/goals", headers=api.auth(api.tokens.clinician()),
        json={"service_user_id": person, "team_id": "team-a", "description": "Sleep better",
              "kind": "therapeutic"})
    problem = problem_of(response, 422)
    assert problem["type"].endswith("therapeutic-goal-needs-life-goal")
    assert problem["invalid-params"][0]["name"] == "serves_goal_ids"
    listed = await api.client.get("/v1/goals", params={"service_user_id": person},
                                  headers=api.auth(api.tokens.clinician()))
    assert listed.json()["items"] == []


async def test_therapeutic_goal_serves_a_life_goal_of_the_same_person(api: GoalsApi) -> None:
    person, other = unique("su"), unique("su")
    staff = api.tokens.clinician()
    life = await api.create(api.tokens.service_user(person), service_user_id=person,
                            team_id="team-a", description="Go back to college")
    others_life = await api.create(api.tokens.service_user(other), service_user_id=other,
                                   team_id="team-a", description="Move to my own flat")
    therapeutic = await api.create(staff, service_user_id=person, team_id="team-a",
                                   description="Fewer panic attacks on the bus",
                                   kind="therapeutic", serves_goal_ids=[life["id"]])
    assert therapeutic["serves_goal_ids"] == [life["id"]]

    serving_other = await api.client.post(
        "/v1/goals", headers=api.auth(staff),
        json={"service_user_id": person, "team_id": "team-a", "description": "Sleep better",
              "kind": "therapeutic", "serves_goal_ids": [others_life["id"]]})
    assert problem_of(serving_other, 422)["type"].endswith("served-goal-not-found")

    serving_therapeutic = await api.client.post(
        "/v1/goals", headers=api.auth(staff),
        json={"service_user_id": person, "team_id": "team-a", "description": "Sleep better",
              "kind": "therapeutic", "serves_goal_ids": [therapeutic["id"]]})
    assert problem_of(serving_therapeutic, 422)["type"].endswith("served-goal-not-life-goal")

    life_serving = await api.client.post(
        "/v1/goals", headers=api.auth(staff),
        json={"service_user_id": person, "team_id": "team-a", "description": "See friends",
              "serves_goal_ids": [life["id"]]})
    problem_of(life_serving, 422)


async def test_changes_need_if_match_and_a_stale_version_changes_nothing(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Paint every Sunday")
    path = f"/v1/goals/{goal['id']}"
    missing = await api.send("PATCH", path, own, etag=None, json={"target_date": "2030-01-01"})
    assert problem_of(missing, 428)["type"].endswith("precondition-required")
    changed = await api.send("PATCH", path, own, etag='"1"', json={"target_date": "2030-01-01"})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    stale = await api.send("PATCH", path, own, etag='"1"', json={"target_date": "2031-01-01"})
    assert problem_of(stale, 412)["type"].endswith("version-conflict")
    read = await api.read(own, goal["id"])
    assert read.json()["target_date"] == "2030-01-01" and read.json()["version"] == 2
    for route, body in ((f"{path}/status", {"status": "on-hold"}),
                        (f"{path}/steps", {"who": "staff", "what": "Call"}),
                        (f"{path}/reviews", {"achievement_status": "improving"})):
        problem_of(await api.send("POST", route, own, etag=None, json=body), 428)
        problem_of(await api.send("POST", route, own, etag='"1"', json=body), 412)
    assert (await api.read(own, goal["id"])).json()["version"] == 2


async def test_every_change_keeps_a_version_with_the_goal_as_it_was(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Learn guitar")
    path = f"/v1/goals/{goal['id']}"
    await api.send("PATCH", path, own, etag='"1"', json={"description": "Learn to play guitar"})
    await api.send("POST", f"{path}/steps", own, etag='"2"',
                   json={"who": "service_user", "what": "Borrow a guitar"})
    await api.send("POST", f"{path}/status", own, etag='"3"', json={"status": "on-hold"})
    response = await api.client.get(f"{path}/versions", headers=api.auth(own))
    assert response.status_code == 200
    versions = response.json()["items"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    assert [v["change"] for v in versions] == ["created", "updated", "updated", "status-changed"]
    assert versions[0]["snapshot"]["description"] == "Learn guitar"
    assert versions[1]["snapshot"]["description"] == "Learn to play guitar"
    assert versions[2]["snapshot"]["steps"][0]["what"] == "Borrow a guitar"
    assert versions[3]["snapshot"]["lifecycle_status"] == "on-hold"
    assert all(v["recorded_by"] == person for v in versions)
    page = await api.client.get(f"{path}/versions", params={"limit": 3}, headers=api.auth(own))
    rest = await api.client.get(f"{path}/versions",
                                params={"limit": 3, "cursor": page.json()["next_cursor"]},
                                headers=api.auth(own))
    assert [v["version"] for v in rest.json()["items"]] == [4]
    assert rest.json()["next_cursor"] is None


async def test_staff_cannot_rewrite_the_persons_own_words(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician()
    goal = await api.create(api.tokens.service_user(person), service_user_id=person,
                            team_id="team-a", description="Feel at home in my flat")
    path = f"/v1/goals/{goal['id']}"
    words = await api.send("PATCH", path, staff, etag='"1"', json={"description": "Housing"})
    assert problem_of(words, 403)["type"].endswith("persons-own-words")
    support = await api.send("PATCH", path, staff, etag='"1"',
                             json={"supporters": [{"role": "staff", "id": "staff-1"}],
                                   "target_date": "2030-06-01"})
    assert support.status_code == 200, support.text
    assert support.json()["description"] == "Feel at home in my flat"


async def test_staff_shape_the_words_of_their_proposal_before_it_is_agreed(
        api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    goal = await api.create(staff, service_user_id=person, team_id="team-a",
                            description="Exercise")
    response = await api.send("PATCH", f"/v1/goals/{goal['id']}", staff, etag='"1"',
                              json={"description": "Walk with the group on Tuesdays"})
    assert response.status_code == 200
    assert response.json()["description"] == "Walk with the group on Tuesdays"


async def test_a_goal_becoming_a_life_goal_stops_serving_and_therapeutic_needs_links(
        api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    life = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Travel to see my sister")
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Manage anxiety", kind="therapeutic",
                            serves_goal_ids=[life["id"]])
    path = f"/v1/goals/{goal['id']}"
    cleared = await api.send("PATCH", path, own, etag='"1"', json={"serves_goal_ids": []})
    problem_of(cleared, 422)
    to_life = await api.send("PATCH", path, own, etag='"1"', json={"kind": "life"})
    assert to_life.status_code == 200
    assert to_life.json()["serves_goal_ids"] == []
    back = await api.send("PATCH", path, own, etag='"2"', json={"kind": "therapeutic"})
    problem_of(back, 422)


async def test_a_life_goal_that_a_therapeutic_goal_serves_cannot_become_therapeutic(
        api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    life = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Hold down a job")
    other_life = await api.create(own, service_user_id=person, team_id="team-a",
                                  description="See my kids every week")
    await api.create(own, service_user_id=person, team_id="team-a",
                     description="Sleep before midnight", kind="therapeutic",
                     serves_goal_ids=[life["id"]])
    response = await api.send("PATCH", f"/v1/goals/{life['id']}", own, etag='"1"',
                              json={"kind": "therapeutic", "serves_goal_ids": [other_life["id"]]})
    assert problem_of(response, 409)["type"].endswith("life-goal-is-served")
    assert (await api.read(own, life["id"])).json()["kind"] == "life"


async def test_a_goal_moves_through_its_lifecycle_to_completed(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Run 5k")
    path = f"/v1/goals/{goal['id']}/status"
    held = await api.send("POST", path, own, etag='"1"',
                          json={"status": "on-hold", "reason": "Injured my knee"})
    assert held.json()["lifecycle_status"] == "on-hold"
    again = await api.send("POST", path, own, etag='"2"', json={"status": "active"})
    assert again.json()["lifecycle_status"] == "active"
    done = await api.send("POST", path, own, etag='"3"',
                          json={"status": "completed", "achievement_status": "achieved"})
    assert done.status_code == 200
    assert done.json()["lifecycle_status"] == "completed"
    assert done.json()["achievement_status"] == "achieved"
    skip = await api.send("POST", path, own, etag='"4"', json={"status": "on-hold"})
    assert problem_of(skip, 409)["type"].endswith("transition-not-allowed")


async def test_entered_in_error_is_kept_but_left_out_of_lists_and_frozen(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Typed into the wrong record")
    marked = await api.send("POST", f"/v1/goals/{goal['id']}/status", own, etag='"1"',
                            json={"status": "entered-in-error"})
    assert marked.status_code == 200
    read = await api.read(own, goal["id"])
    assert read.status_code == 200 and read.json()["lifecycle_status"] == "entered-in-error"
    listed = await api.client.get("/v1/goals", params={"service_user_id": person},
                                  headers=api.auth(own))
    assert listed.json()["items"] == []
    asked = await api.client.get("/v1/goals", headers=api.auth(own),
                                 params={"service_user_id": person,
                                         "status": "entered-in-error"})
    assert [g["id"] for g in asked.json()["items"]] == [goal["id"]]
    edit = await api.send("PATCH", f"/v1/goals/{goal['id']}", own, etag='"2"',
                          json={"target_date": "2030-01-01"})
    problem_of(edit, 409)


async def test_steps_are_added_and_marked_done(api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Get a bike")
    added = await api.send("POST", f"/v1/goals/{goal['id']}/steps", staff, etag='"1"',
                           json={"who": "staff", "what": "Ask about the bike scheme",
                                 "by_when": "2030-02-01"})
    assert added.status_code == 201 and added.headers["etag"] == '"2"'
    step = added.json()["steps"][0]
    assert (step["who"], step["by_when"], step["done"]) == ("staff", "2030-02-01", False)
    done = await api.send("PATCH", f"/v1/goals/{goal['id']}/steps/{step['id']}", own,
                          etag='"2"', json={"done": True})
    assert done.status_code == 200
    assert done.json()["steps"][0]["done"] is True
    assert done.json()["steps"][0]["done_at"] is not None
    missing = await api.send("PATCH", f"/v1/goals/{goal['id']}/steps/nope", own, etag='"3"',
                             json={"done": True})
    problem_of(missing, 404)


async def test_reviews_record_progress_in_the_persons_words(api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Make a friend at the allotment")
    today = date.today()
    review = {"reviewed_on": (today - timedelta(days=3)).isoformat(),
              "attendees": [{"role": "service_user"}, {"role": "peer_specialist", "name": "Jo"}],
              "achievement_status": "improving", "rating": 7,
              "own_words": "I talk to Ann most weeks now"}
    added = await api.send("POST", f"/v1/goals/{goal['id']}/reviews", staff, etag='"1"',
                           json=review)
    assert added.status_code == 201, added.text
    assert added.headers["etag"] == '"2"'
    body = added.json()
    assert (body["rating"], body["own_words"], body["goal_version"]) == (
        7, "I talk to Ann most weeks now", 2)
    read = (await api.read(own, goal["id"])).json()
    assert read["achievement_status"] == "improving"
    assert read["last_reviewed_on"] == review["reviewed_on"]
    listed = await api.client.get(f"/v1/goals/{goal['id']}/reviews", headers=api.auth(own))
    assert [r["id"] for r in listed.json()["items"]] == [body["id"]]
    future = await api.send("POST", f"/v1/goals/{goal['id']}/reviews", staff, etag='"2"',
                            json={"achievement_status": "improving",
                                  "reviewed_on": (today + timedelta(days=2)).isoformat()})
    assert problem_of(future, 422)["type"].endswith("review-in-future")
    out_of_range = await api.send("POST", f"/v1/goals/{goal['id']}/reviews", staff, etag='"2"',
                                  json={"achievement_status": "improving", "rating": 11})
    problem_of(out_of_range, 422)


async def test_a_proposal_is_not_reviewed_before_the_person_takes_it_up(api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    goal = await api.create(staff, service_user_id=person, team_id="team-a",
                            description="Attend the hearing voices group")
    response = await api.send("POST", f"/v1/goals/{goal['id']}/reviews", staff, etag='"1"',
                              json={"achievement_status": "no-progress"})
    assert problem_of(response, 409)["type"].endswith("not-under-way")


async def test_lists_page_newest_first_without_gaps_or_repeats(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    created = [(await api.create(own, service_user_id=person, team_id="team-a",
                                 description=f"Goal {n}"))["id"] for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"service_user_id": person, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/goals", params=params, headers=api.auth(own))).json()
        seen.extend(g["id"] for g in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_lists_filter_by_status_and_kind(api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    life = await api.create(own, service_user_id=person, team_id="team-a", description="Garden")
    proposal = await api.create(staff, service_user_id=person, team_id="team-a",
                                description="Breathing exercises", kind="therapeutic",
                                serves_goal_ids=[life["id"]])
    by_status = await api.client.get("/v1/goals", headers=api.auth(own),
                                     params={"service_user_id": person, "status": "proposed"})
    assert [g["id"] for g in by_status.json()["items"]] == [proposal["id"]]
    by_kind = await api.client.get("/v1/goals", headers=api.auth(own),
                                   params={"service_user_id": person, "kind": "life"})
    assert [g["id"] for g in by_kind.json()["items"]] == [life["id"]]


async def test_a_bad_cursor_is_a_400_problem(api: GoalsApi) -> None:
    response = await api.client.get("/v1/goals", params={"cursor": "not-a-cursor"},
                                    headers=api.auth(api.tokens.clinician()))
    problem_of(response, 400)


async def test_a_service_user_sees_only_their_own_goals(api: GoalsApi) -> None:
    me, other = unique("su"), unique("su")
    mine = await api.create(api.tokens.service_user(me), service_user_id=me, team_id="team-a",
                            description="Mine")
    theirs = await api.create(api.tokens.service_user(other), service_user_id=other,
                              team_id="team-a", description="Theirs")
    token = api.tokens.service_user(me)
    assert problem_of(await api.read(token, theirs["id"]), 404)["type"].endswith("not-found")
    unfiltered = await api.client.get("/v1/goals", headers=api.auth(token))
    ids = {g["id"] for g in unfiltered.json()["items"]}
    assert mine["id"] in ids and theirs["id"] not in ids
    asked = await api.client.get("/v1/goals", params={"service_user_id": other},
                                 headers=api.auth(token))
    problem_of(asked, 404)
    change = await api.send("PATCH", f"/v1/goals/{theirs['id']}", token, etag='"1"',
                            json={"target_date": "2030-01-01"})
    problem_of(change, 404)
    create = await api.client.post("/v1/goals", headers=api.auth(token),
                                   json={"service_user_id": other, "team_id": "team-a",
                                         "description": "For someone else"})
    problem_of(create, 403)
    assert (await api.read(api.tokens.service_user(other), theirs["id"])).json()["version"] == 1


async def test_staff_reach_only_goals_of_their_teams(api: GoalsApi) -> None:
    person = unique("su")
    team_b = unique("team")
    goal = await api.create(api.tokens.service_user(person), service_user_id=person,
                            team_id=team_b, description="Team b goal")
    outsider = api.tokens.clinician("staff-9", ["team-a"])
    problem_of(await api.read(outsider, goal["id"]), 404)
    problem_of(await api.client.get("/v1/goals", params={"team_id": team_b},
                                    headers=api.auth(outsider)), 404)
    by_person = await api.client.get("/v1/goals", params={"service_user_id": person},
                                     headers=api.auth(outsider))
    assert by_person.status_code == 200 and by_person.json()["items"] == []
    unfiltered = await api.client.get("/v1/goals", headers=api.auth(outsider),
                                      params={"limit": 200})
    assert all(g["team_id"] == "team-a" for g in unfiltered.json()["items"])
    problem_of(await api.client.post("/v1/goals", headers=api.auth(outsider),
                                     json={"service_user_id": person, "team_id": team_b,
                                           "description": "Not my team"}), 403)
    insider = api.tokens.clinician("staff-2", [team_b])
    assert (await api.read(insider, goal["id"])).status_code == 200


async def test_batch_read_returns_each_persons_goals_filtered_by_access(api: GoalsApi) -> None:
    team = unique("team")
    a, b, c = unique("su"), unique("su"), unique("su")
    for person, n in ((a, 3), (b, 1)):
        for i in range(n):
            await api.create(api.tokens.service_user(person), service_user_id=person,
                             team_id=team, description=f"goal {i}")
    await api.create(api.tokens.service_user(c), service_user_id=c, team_id="elsewhere",
                     description="not reachable")
    staff = api.tokens.clinician("staff-3", [team])
    response = await api.client.post("/v1/goals:batch-read", headers=api.auth(staff),
                                     json={"service_user_ids": [a, b, c],
                                           "limit_per_person": 2})
    assert response.status_code == 200, response.text
    results = {r["service_user_id"]: r for r in response.json()["results"]}
    assert [len(results[p]["goals"]) for p in (a, b, c)] == [2, 1, 0]
    assert (results[a]["truncated"], results[b]["truncated"]) == (True, False)
    assert all(g["service_user_id"] == a for g in results[a]["goals"])
    own = await api.client.post("/v1/goals:batch-read", headers=api.auth(
        api.tokens.service_user(a)), json={"service_user_ids": [a, b]})
    own_results = {r["service_user_id"]: r for r in own.json()["results"]}
    assert (len(own_results[a]["goals"]), own_results[b]["goals"]) == (3, [])
    too_many = await api.client.post("/v1/goals:batch-read", headers=api.auth(staff),
                                     json={"service_user_ids": [f"p{i}" for i in range(101)]})
    problem_of(too_many, 422)


async def test_team_figures_for_the_teams_managers(api: GoalsApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-4", [team])
    a, b = unique("su"), unique("su")
    own_a = api.tokens.service_user(a)
    work = await api.create(own_a, service_user_id=a, team_id=team, description="A job",
                            life_area="work_and_education")
    await api.create(own_a, service_user_id=a, team_id=team, description="Sleep",
                     kind="therapeutic", serves_goal_ids=[work["id"]])
    await api.proposed_then_accepted(staff, b, api.tokens.service_user(b), team_id=team,
                                     description="Cook", life_area="home")
    declined = await api.create(staff, service_user_id=b, team_id=team, description="No")
    await api.send("POST", f"/v1/goals/{declined['id']}/decline",
                   api.tokens.service_user(b), etag='"1"')
    await api.send("POST", f"/v1/goals/{work['id']}/reviews", staff, etag='"1"',
                   json={"achievement_status": "improving"})

    manager = api.tokens.manager("manager-1", [team])
    response = await api.client.get(f"/v1/teams/{team}/figures", headers=api.auth(manager))
    assert response.status_code == 200, response.text
    figures = response.json()
    assert figures["goals"] == 3
    assert (figures["life_goals"], figures["therapeutic_goals"]) == (2, 1)
    assert figures["life_share"] == round(2 / 3, 4)
    assert figures["expressed_by_service_user"] == 2
    assert figures["employment_and_education_goals"] == 1
    assert (figures["open_goals"], figures["reviewed_recently"]) == (3, 1)
    assert figures["by_status"]["rejected"] == 1
    assert figures["reviewed_within_days"] == 90

    problem_of(await api.client.get(f"/v1/teams/{team}/figures", headers=api.auth(staff)), 403)
    other_manager = api.tokens.manager("manager-2", ["team-a"])
    problem_of(await api.client.get(f"/v1/teams/{team}/figures",
                                    headers=api.auth(other_manager)), 403)
    problem_of(await api.client.get(f"/v1/teams/{team}/figures",
                                    params={"reviewed_within_days": 0},
                                    headers=api.auth(manager)), 422)


async def test_no_token_is_401_and_a_missing_scope_is_403(api: GoalsApi) -> None:
    assert problem_of(await api.client.get("/v1/goals"), 401)["type"].endswith("unauthorized")
    read_only = api.tokens("clinician", "staff-5", teams=["team-a"], scope="user/Goal.rs")
    response = await api.client.post(
        "/v1/goals", headers=api.auth(read_only),
        json={"service_user_id": "su-x", "team_id": "team-a", "description": "x"})
    assert problem_of(response, 403)["type"].endswith("insufficient-scope")


async def test_bad_input_gets_a_4xx_problem_and_changes_nothing(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    headers = {**api.auth(own), "Content-Type": "application/json"}
    malformed = await api.client.post("/v1/goals", content=b'{"service_user_id": ',
                                      headers=headers)
    assert problem_of(malformed, 400)["type"].endswith("malformed-json")
    wrong_types = await api.client.post("/v1/goals", headers=api.auth(own), json={
        "service_user_id": person, "team_id": ["team-a"], "description": 42})
    assert {p["name"] for p in problem_of(wrong_types, 422)["invalid-params"]} >= {
        "body.team_id", "body.description"}
    unknown_area = await api.client.post("/v1/goals", headers=api.auth(own), json={
        "service_user_id": person, "team_id": "team-a", "description": "x", "life_area": "x"})
    problem_of(unknown_area, 422)
    extra = await api.client.post("/v1/goals", headers=api.auth(own), json={
        "service_user_id": person, "team_id": "team-a", "description": "x",
        "lifecycle_status": "completed"})
    problem_of(extra, 422)
    huge = await api.client.post("/v1/goals", headers=api.auth(own), json={
        "service_user_id": person, "team_id": "team-a", "description": "x" * 400_000})
    problem_of(huge, 413)
    listed = await api.client.get("/v1/goals", params={"service_user_id": person},
                                  headers=api.auth(own))
    assert listed.json()["items"] == []


async def test_two_changes_from_the_same_version_cannot_both_win(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Plant tomatoes")
    path = f"/v1/goals/{goal['id']}"
    first, second = await asyncio.gather(
        api.send("PATCH", path, own, etag='"1"', json={"target_date": "2030-04-01"}),
        api.send("PATCH", path, own, etag='"1"', json={"target_date": "2030-05-01"}))
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    read = (await api.read(own, goal["id"])).json()
    assert read["version"] == 2
    assert read["target_date"] == winner.json()["target_date"]
    versions = await api.client.get(f"{path}/versions", headers=api.auth(own))
    assert [v["version"] for v in versions.json()["items"]] == [1, 2]


async def test_access_decisions_on_goals_are_audited_allowed_and_denied(api: GoalsApi) -> None:
    person = unique("su")
    goal = await api.create(api.tokens.service_user(person), service_user_id=person,
                            team_id="team-a", description="Audit me")
    await api.read(api.tokens.service_user(person), goal["id"])
    stranger = unique("su")
    assert (await api.read(api.tokens.service_user(stranger), goal["id"])).status_code == 404
    kit = api.client.app.state.kit  # type: ignore[attr-defined]
    await kit.audit.flush()
    async with kit.sessions() as session:
        rows = (await session.exec(select(AuditEvent).where(
            col(AuditEvent.record_id) == goal["id"]))).all()
    decisions = {(row.actor, row.action, row.outcome) for row in rows}
    assert (person, "read", "allowed") in decisions
    assert (stranger, "read", "denied") in decisions
    assert all(row.service_user_id == person for row in rows)


async def test_a_batch_read_gives_each_person_the_cursor_their_goals_list_goes_on_from(
        api: GoalsApi) -> None:
    team, person, few = unique("team"), unique("su"), unique("su")
    made = [await api.create(api.tokens.service_user(person), service_user_id=person,
                             team_id=team, description=f"goal {i}") for i in range(3)]
    await api.create(api.tokens.service_user(few), service_user_id=few, team_id=team,
                     description="only goal")
    staff = api.tokens.clinician("staff-3", [team])
    response = await api.client.post("/v1/goals:batch-read", headers=api.auth(staff),
                                     json={"service_user_ids": [person, few],
                                           "limit_per_person": 2})
    results = {r["service_user_id"]: r for r in response.json()["results"]}
    newest_first = [g["id"] for g in reversed(made)]
    assert [g["id"] for g in results[person]["goals"]] == newest_first[:2]
    assert results[few]["next_cursor"] is None and results[few]["truncated"] is False
    rest = await api.client.get("/v1/goals", headers=api.auth(staff), params={
        "service_user_id": person, "cursor": results[person]["next_cursor"]})
    assert [g["id"] for g in rest.json()["items"]] == newest_first[2:]
