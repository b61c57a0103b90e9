"""The training API in process on both databases: the prospectus, co-delivered runs,
educators, enrolment and waiting lists, completion and feedback, the roster and figures."""

import asyncio
from typing import Any

from training_api import FOUNDATION, TrainingApi, unique

from recovery.common.events import CloudEvent
from recovery.training.service import apply_staff_event


async def staff_event(api: TrainingApi, verb: str, staff_id: str, team_id: str, version: int,
                      **data: Any) -> None:
    """Feed a workforce event to the roster handler, as the consumer would, and commit."""
    event = CloudEvent(source="workforce", type=f"recovery.workforce.staff.{verb}",
                       subject=staff_id, data={
                           "staff_id": staff_id, "team_id": team_id, "profession": "nursing",
                           "grade": "band-6", "role_type": "professional",
                           "effective_date": "2030-01-01", "version": version, **data})
    async with api.client.app.state.kit.sessions() as session:  # type: ignore[attr-defined]
        await apply_staff_event(session, event)
        await session.commit()


async def test_the_prospectus_is_readable_by_every_signed_in_role(api: TrainingApi) -> None:
    t = api.tokens
    for token in (t.service_user(unique("su")), t.clinician(), t.peer_specialist(),
                  t.educator(), t.manager(), t.admin(), t.system()):
        page = await api.ok("GET", "/v1/courses", token)
        foundation = [c for c in page["items"] if c["id"] == FOUNDATION]
        assert foundation and foundation[0]["required_for_all_staff"] is True
        assert foundation[0]["foundation"] is True and "staff" in foundation[0]["audience"]
    assert (await api.client.get("/v1/courses")).status_code == 401


async def test_courses_are_co_produced_with_learning_outcomes_and_an_audience(
        api: TrainingApi) -> None:
    course_id = await api.course(title="Hope and agency", audience=["carer"])
    course = await api.ok("GET", f"/v1/courses/{course_id}", api.tokens.service_user("su-1"))
    assert course["co_produced_with"] == ["Peer trainers"]
    assert course["learning_outcomes"] == ["Plan a recovery journey"]
    assert course["audience"] == ["carer"] and course["required_for_all_staff"] is False
    missing = await api.send("POST", "/v1/courses", api.college, json={
        "title": "No partners", "learning_outcomes": ["x"], "audience": ["staff"]})
    assert missing.status_code == 422


async def test_only_the_college_keeps_the_prospectus(api: TrainingApi) -> None:
    body = {"title": "Mine", "learning_outcomes": ["x"], "audience": ["staff"],
            "co_produced_with": ["Peers"]}
    for token in (api.tokens.clinician(), api.tokens.peer_specialist(),
                  api.tokens.service_user("su-2")):
        assert (await api.send("POST", "/v1/courses", token, json=body)).status_code == 403
    # Managers' tokens read only (user/*.rs): a missing scope is 403 too.
    assert (await api.send("POST", "/v1/courses", api.tokens.manager(),
                           json=body)).status_code == 403


async def test_a_second_foundation_course_is_refused(api: TrainingApi) -> None:
    response = await api.send("POST", "/v1/courses", api.college, json={
        "title": "Another", "learning_outcomes": ["x"], "audience": ["staff"],
        "co_produced_with": ["Peers"], "foundation": True})
    assert response.status_code == 409


async def test_changing_a_course_needs_the_current_version(api: TrainingApi) -> None:
    course_id = await api.course()
    path = f"/v1/courses/{course_id}"
    assert (await api.send("PATCH", path, api.college, json={"title": "New"})).status_code == 428
    changed = await api.send("PATCH", path, api.college, json={"title": "New"}, etag='"1"')
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    stale = await api.send("PATCH", path, api.college, json={"title": "Old"}, etag='"1"')
    assert stale.status_code == 412
    assert (await api.ok("GET", path, api.college))["title"] == "New"


async def test_the_foundation_course_stays_open_to_all_staff(api: TrainingApi) -> None:
    current = await api.send("GET", f"/v1/courses/{FOUNDATION}", api.college)
    response = await api.send("PATCH", f"/v1/courses/{FOUNDATION}", api.college,
                              json={"audience": ["carer"]}, etag=current.headers["ETag"])
    assert response.status_code == 422


async def test_a_run_without_an_educator_with_lived_experience_is_refused_clearly(
        api: TrainingApi) -> None:
    course_id = await api.course()
    first = await api.educator(lived_experience=False)
    second = await api.educator(lived_experience=False)
    response = await api.send("POST", f"/v1/courses/{course_id}/runs", api.college, json={
        "starts_on": "2030-01-01", "ends_on": "2030-01-01", "online": True, "capacity": 5,
        "facilitator_ids": [first, second]})
    assert response.status_code == 422
    problem = response.json()
    assert "lived experience" in problem["detail"]
    assert response.headers["content-type"].startswith("application/problem+json")
    runs = await api.ok("GET", f"/v1/courses/{course_id}/runs", api.college)
    assert runs["items"] == []


async def test_a_run_needs_another_facilitator_besides_the_lived_experience_educator(
        api: TrainingApi) -> None:
    course_id = await api.course()
    lived = await api.educator(lived_experience=True)
    for facilitators in ([lived], [lived, lived]):
        response = await api.send("POST", f"/v1/courses/{course_id}/runs", api.college, json={
            "starts_on": "2030-01-01", "ends_on": "2030-01-01", "place": "Room 2",
            "capacity": 5, "facilitator_ids": facilitators})
        assert response.status_code == 422
        assert "other facilitator" in response.json()["detail"]


async def test_a_run_with_unknown_facilitators_or_no_place_is_refused(api: TrainingApi) -> None:
    course_id = await api.course()
    lived = await api.educator(lived_experience=True)
    unknown = await api.send("POST", f"/v1/courses/{course_id}/runs", api.college, json={
        "starts_on": "2030-01-01", "ends_on": "2030-01-01", "online": True, "capacity": 5,
        "facilitator_ids": [lived, "not-an-educator"]})
    assert unknown.status_code == 422
    nowhere = await api.send("POST", f"/v1/courses/{course_id}/runs", api.college, json={
        "starts_on": "2030-01-01", "ends_on": "2030-01-01", "capacity": 5,
        "facilitator_ids": [lived, await api.educator(lived_experience=False)]})
    assert nowhere.status_code == 422


async def test_a_co_delivered_run_is_scheduled_with_its_dates_place_and_capacity(
        api: TrainingApi) -> None:
    course_id = await api.course()
    run_id = await api.run(course_id, capacity=12, place="Library", online=False)
    run = await api.ok("GET", f"/v1/runs/{run_id}", api.tokens.service_user("su-3"))
    assert run["capacity"] == 12 and run["place"] == "Library" and run["online"] is False
    assert run["starts_on"] == "2030-03-01" and len(run["facilitator_ids"]) == 2
    assert run["places_taken"] == 0 and run["waiting"] == 0


async def test_educators_own_training_supervision_and_support_are_recorded(
        api: TrainingApi) -> None:
    educator_id = await api.educator(lived_experience=True, staff_id="peer-educator-1")
    path = f"/v1/educators/{educator_id}"
    await api.ok("POST", f"{path}/training", api.college, status=201,
                 json={"title": "Train the trainer", "completed_on": "2029-06-01"})
    await api.ok("POST", f"{path}/supervision", api.college, status=201,
                 json={"held_on": "2029-07-01", "supervisor": "Lead peer trainer"})
    await api.ok("POST", f"{path}/support", api.college, status=201,
                 json={"provided_on": "2029-07-02", "kind": "peer support group"})
    own = await api.ok("GET", path, api.tokens.peer_specialist("peer-educator-1"))
    assert own["kind"] == "service_user_educator" and own["lived_experience"] is True
    assert [r["title"] for r in own["own_training"]] == ["Train the trainer"]
    assert own["supervision"][0]["recovery_focused"] is True
    assert own["support"][0]["kind"] == "peer support group"
    # Anyone else: no such record.
    assert (await api.send("GET", path, api.tokens.clinician())).status_code == 404
    assert (await api.send("POST", f"{path}/support", api.tokens.peer_specialist(
        "peer-educator-1"), json={"provided_on": "2029-07-02", "kind": "x"})).status_code == 403


async def test_a_full_run_puts_newcomers_on_a_waiting_list_and_a_freed_place_goes_to_the_first(
        api: TrainingApi) -> None:
    run_id = await api.run(await api.course(), capacity=2)
    learners = [unique("staff") for _ in range(4)]
    enrolments = [await api.enrol(run_id, api.tokens.clinician(sub)) for sub in learners]
    assert [e["status"] for e in enrolments] == ["enrolled", "enrolled", "waiting", "waiting"]
    run = await api.ok("GET", f"/v1/runs/{run_id}", api.college)
    assert (run["places_taken"], run["waiting"]) == (2, 2)

    await api.ok("POST", f"/v1/enrolments/{enrolments[0]['id']}/withdrawal",
                 api.tokens.clinician(learners[0]))
    after = [await api.ok("GET", f"/v1/enrolments/{e['id']}", api.college) for e in enrolments]
    assert [e["status"] for e in after] == ["withdrawn", "enrolled", "enrolled", "waiting"]
    # Withdrawing from the waiting list frees no place.
    await api.ok("POST", f"/v1/enrolments/{enrolments[3]['id']}/withdrawal", api.college)
    run = await api.ok("GET", f"/v1/runs/{run_id}", api.college)
    assert (run["places_taken"], run["waiting"]) == (2, 0)


async def test_nobody_is_enrolled_twice_on_a_course(api: TrainingApi) -> None:
    course_id = await api.course()
    first, second = await api.run(course_id), await api.run(course_id)
    learner = api.tokens.clinician(unique("staff"))
    await api.enrol(first, learner)
    again = await api.send("POST", f"/v1/runs/{second}/enrolments", learner, json={})
    assert again.status_code == 409


async def test_completion_needs_attendance_and_feedback_follows_completion_once(
        api: TrainingApi) -> None:
    sub = unique("staff")
    learner = api.tokens.clinician(sub)
    enrolment = await api.enrol(await api.run(await api.course()), learner)
    path = f"/v1/enrolments/{enrolment['id']}"
    early = await api.send("POST", f"{path}/feedback", learner, json={"rating": 5})
    assert early.status_code == 409
    unattended = await api.send("POST", f"{path}/completion", api.college,
                                json={"completed_on": "2030-03-02"})
    assert unattended.status_code == 409
    # Learners do not mark their own attendance or completion.
    assert (await api.send("POST", f"{path}/attendance", learner,
                           json={"attended": True})).status_code == 403
    done = await api.complete(enrolment["id"])
    assert done["status"] == "completed" and done["completed_on"] == "2030-03-02"
    # The college does not give the learner's feedback for them.
    assert (await api.send("POST", f"{path}/feedback", api.college,
                           json={"rating": 5})).status_code == 403
    given = await api.ok("POST", f"{path}/feedback", learner,
                         json={"rating": 4, "words": "Hopeful and practical"})
    assert given["rating"] == 4 and given["feedback_words"] == "Hopeful and practical"
    twice = await api.send("POST", f"{path}/feedback", learner, json={"rating": 1})
    assert twice.status_code == 409


async def test_completion_before_the_run_starts_is_refused(api: TrainingApi) -> None:
    enrolment = await api.enrol(await api.run(await api.course()),
                                api.tokens.clinician(unique("staff")))
    await api.ok("POST", f"/v1/enrolments/{enrolment['id']}/attendance", api.college,
                 json={"attended": True})
    response = await api.send("POST", f"/v1/enrolments/{enrolment['id']}/completion",
                              api.college, json={"completed_on": "2029-01-01"})
    assert response.status_code == 422


async def test_service_users_and_carers_enrol_on_courses_offered_to_them(
        api: TrainingApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    run_id = await api.run(await api.course())
    mine = await api.enrol(run_id, own)
    assert mine["learner_kind"] == "service_user" and mine["learner_id"] == person
    carer = await api.enrol(run_id, learner_kind="carer", learner_id=unique("carer"))
    assert carer["learner_kind"] == "carer"
    # Someone else's enrolment is not theirs to make; staff-only courses are not offered.
    other = await api.send("POST", f"/v1/runs/{run_id}/enrolments", own,
                           json={"learner_id": unique("su")})
    assert other.status_code == 403
    foundation_run = await api.run(FOUNDATION)
    staff_only = await api.send("POST", f"/v1/runs/{foundation_run}/enrolments", own, json={})
    assert staff_only.status_code == 422


async def test_an_enrolment_is_seen_by_the_learner_the_college_and_the_teams_managers(
        api: TrainingApi) -> None:
    sub, team = unique("staff"), unique("team")
    await staff_event(api, "joined", sub, team, 1)
    enrolment = await api.enrol(await api.run(await api.course()), api.tokens.clinician(sub))
    assert enrolment["team_id"] == team
    path = f"/v1/enrolments/{enrolment['id']}"
    for token in (api.tokens.clinician(sub), api.college, api.tokens.manager(teams=[team])):
        assert (await api.send("GET", path, token)).status_code == 200
    for token in (api.tokens.clinician("someone-else", teams=[team]),
                  api.tokens.manager(teams=["team-elsewhere"]),
                  api.tokens.service_user(unique("su"))):
        assert (await api.send("GET", path, token)).status_code == 404
    listed = await api.ok("GET", "/v1/enrolments", api.tokens.manager(teams=[team]))
    assert {e["learner_id"] for e in listed["items"]} == {sub}
    assert (await api.ok("GET", "/v1/enrolments",
                         api.tokens.manager(teams=["team-elsewhere"])))["items"] == []


async def test_enrolments_are_listed_by_team_for_a_manager_of_several(
        api: TrainingApi) -> None:
    team_a, team_b = unique("team"), unique("team")
    for team in (team_a, team_a, team_b):
        await staff_event(api, "joined", unique("staff"), team, 1)
    manager = api.tokens.manager(teams=[team_a, team_b])
    both = await api.ok("GET", "/v1/enrolments", manager, params={"course_id": FOUNDATION})
    assert sorted(e["team_id"] for e in both["items"]) == sorted([team_a, team_a, team_b])
    only_a = await api.ok("GET", "/v1/enrolments", manager,
                          params={"course_id": FOUNDATION, "team_id": team_a})
    assert [e["team_id"] for e in only_a["items"]] == [team_a, team_a]
    # A filter narrows what the caller may see; it never widens it.
    elsewhere = await api.ok("GET", "/v1/enrolments", api.tokens.manager(teams=[team_b]),
                             params={"team_id": team_a})
    assert elsewhere["items"] == []


async def test_lists_are_paged_with_a_cursor(api: TrainingApi) -> None:
    run_id = await api.run(await api.course(), capacity=50)
    for _ in range(5):
        await api.enrol(run_id, api.tokens.clinician(unique("staff")))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"run_id": run_id, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.ok("GET", "/v1/enrolments", api.college, params=params)
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    bad = await api.send("GET", "/v1/enrolments", api.college, params={"cursor": "nonsense"})
    assert bad.status_code == 400


async def test_new_staff_are_enrolled_in_the_foundation_course_once(api: TrainingApi) -> None:
    sub, team = unique("staff"), unique("team")
    await staff_event(api, "joined", sub, team, 1)
    await staff_event(api, "joined", sub, team, 1)  # a duplicate
    mine = await api.ok("GET", "/v1/enrolments", api.tokens.clinician(sub))
    assert len(mine["items"]) == 1
    enrolment = mine["items"][0]
    assert enrolment["course_id"] == FOUNDATION and enrolment["automatic"] is True
    assert enrolment["team_id"] == team and enrolment["run_id"] is None
    # Taking a place on a run keeps the one enrolment.
    placed = await api.enrol(await api.run(FOUNDATION), api.tokens.clinician(sub))
    assert placed["id"] == enrolment["id"] and placed["status"] == "enrolled"


async def test_moving_team_and_leaving_are_reflected_and_late_events_change_nothing(
        api: TrainingApi) -> None:
    sub, team_a, team_b = unique("staff"), unique("team"), unique("team")
    manager_b = api.tokens.manager(teams=[team_b])
    await staff_event(api, "joined", sub, team_a, 1)
    await staff_event(api, "moved", sub, team_b, 2, previous_team_id=team_a)
    await staff_event(api, "joined", sub, team_a, 1)  # late, older: ignored
    member = await api.ok("GET", f"/v1/staff/{sub}", manager_b)
    assert member["team_id"] == team_b and member["active"] is True
    enrolment = (await api.ok("GET", "/v1/enrolments", manager_b))["items"][0]
    assert enrolment["team_id"] == team_b
    await staff_event(api, "left", sub, team_b, 3)
    member = await api.ok("GET", f"/v1/staff/{sub}", manager_b)
    assert member["active"] is False and member["left_on"] == "2030-01-01"
    assert (await api.ok("GET", f"/v1/enrolments/{enrolment['id']}",
                         manager_b))["status"] == "withdrawn"


async def test_events_out_of_order_end_in_the_newest_state(api: TrainingApi) -> None:
    sub, team_a, team_b = unique("staff"), unique("team"), unique("team")
    await staff_event(api, "left", sub, team_b, 3)
    await staff_event(api, "moved", sub, team_b, 2, previous_team_id=team_a)
    await staff_event(api, "joined", sub, team_a, 1)
    member = await api.ok("GET", f"/v1/staff/{sub}", api.tokens.admin())
    assert member["active"] is False
    # Never in post as far as training knows last: no foundation enrolment to chase.
    assert (await api.ok("GET", "/v1/enrolments", api.tokens.clinician(sub)))["items"] == []


async def test_foundation_coverage_by_team_profession_and_grade(api: TrainingApi) -> None:
    team = unique("team")
    run_id = await api.run(FOUNDATION, capacity=20)
    people = [(unique("staff"), "nursing", "band-5"), (unique("staff"), "nursing", "band-6"),
              (unique("staff"), "peer_support", "band-4"),
              (unique("staff"), "psychiatry", "consultant")]
    for sub, profession, grade in people:
        await staff_event(api, "joined", sub, team, 1, profession=profession, grade=grade)
    for sub, _, _ in people[:2]:
        placed = await api.enrol(run_id, api.tokens.clinician(sub))
        await api.complete(placed["id"])
    figures = await api.ok("GET", f"/v1/teams/{team}/foundation-coverage",
                           api.tokens.manager(teams=[team]))
    assert (figures["staff"], figures["completed"], figures["coverage"]) == (4, 2, 0.5)
    by_profession = {g["key"]: (g["staff"], g["completed"]) for g in figures["by_profession"]}
    assert by_profession == {"nursing": (2, 2), "peer_support": (1, 0), "psychiatry": (1, 0)}
    by_grade = {g["key"]: g["completed"] for g in figures["by_grade"]}
    assert by_grade == {"band-4": 0, "band-5": 1, "band-6": 1, "consultant": 0}
    organisation = await api.ok("GET", "/v1/figures/foundation-coverage", api.tokens.admin())
    assert {"key": team, "staff": 4, "completed": 2, "coverage": 0.5} in organisation["by_team"]
    # Figures are for managers and admins of the team.
    for token in (api.tokens.manager(teams=["team-elsewhere"]), api.tokens.clinician(
            teams=[team])):
        assert (await api.send("GET", f"/v1/teams/{team}/foundation-coverage",
                               token)).status_code == 403


async def test_quality_shows_ratings_and_co_delivery_kept(api: TrainingApi) -> None:
    course_id = await api.course(title=unique("Quality"))
    run_id = await api.run(course_id)
    for rating in (5, 3):
        sub = unique("staff")
        enrolment = await api.enrol(run_id, api.tokens.clinician(sub))
        await api.complete(enrolment["id"])
        await api.ok("POST", f"/v1/enrolments/{enrolment['id']}/feedback",
                     api.tokens.clinician(sub), json={"rating": rating, "words": "Good"})
    quality = await api.ok("GET", "/v1/figures/quality", api.tokens.admin())
    mine = next(c for c in quality["courses"] if c["course_id"] == course_id)
    assert (mine["feedback_count"], mine["mean_rating"]) == (2, 4.0)
    assert (mine["runs"], mine["runs_co_delivered"]) == (1, 1)
    # Not yet delivered: whether co-delivery was kept is not known.
    assert (mine["runs_delivered"], mine["co_delivery_kept"]) == (0, None)
    assert (await api.send("GET", "/v1/figures/quality",
                           api.tokens.clinician())).status_code == 403


async def test_co_delivery_kept_is_who_really_facilitated_the_runs_that_took_place(
        api: TrainingApi) -> None:
    course_id = await api.course(title=unique("Kept"))
    lived = await api.educator(lived_experience=True)
    others = [await api.educator(lived_experience=False) for _ in range(2)]
    past = {"starts_on": "2025-01-06", "ends_on": "2025-01-07"}
    kept, broken, ahead = (await api.run(course_id, **past), await api.run(course_id, **past),
                           await api.run(course_id))
    delivered = await api.ok("POST", f"/v1/runs/{kept}/delivery", api.college,
                             json={"delivered_by": [lived, others[0]]})
    assert delivered["delivered_by"] == [lived, others[0]]
    # The educator with lived experience fell ill and two others stood in: recorded as it
    # happened, and counted against co-delivery.
    await api.ok("POST", f"/v1/runs/{broken}/delivery", api.college,
                 json={"delivered_by": others})
    quality = await api.ok("GET", "/v1/figures/quality", api.tokens.admin())
    mine = next(c for c in quality["courses"] if c["course_id"] == course_id)
    assert (mine["runs"], mine["runs_co_delivered"]) == (3, 3)
    assert (mine["runs_delivered"], mine["runs_delivered_co_delivered"],
            mine["co_delivery_kept"]) == (2, 1, 0.5)

    before = await api.ok("GET", f"/v1/runs/{ahead}", api.college)
    refusals = [
        (ahead, api.college, {"delivered_by": others}, 422, "before-run"),
        (kept, api.college, {"delivered_by": others}, 409, "delivery-recorded"),
        (broken, api.tokens.manager(), {"delivered_by": others}, 403, None),
        (ahead, api.college, {"delivered_by": ["not-an-educator"]}, 422, None),
        (ahead, api.college, {"delivered_by": []}, 422, None),
    ]
    for run_id, token, body, status, kind in refusals:
        response = await api.send("POST", f"/v1/runs/{run_id}/delivery", token, json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        if kind:
            assert response.json()["type"].endswith("/" + kind)
    assert await api.ok("GET", f"/v1/runs/{ahead}", api.college) == before
    assert (await api.ok("GET", f"/v1/runs/{kept}", api.college))["delivered_by"] == [
        lived, others[0]]


async def test_learners_racing_for_the_last_place_never_overfill_a_run(
        api: TrainingApi) -> None:
    run_id = await api.run(await api.course(), capacity=1)
    racers = [api.tokens.clinician(unique("staff")) for _ in range(6)]
    answers = await asyncio.gather(*(api.send("POST", f"/v1/runs/{run_id}/enrolments", token,
                                              json={}) for token in racers))
    assert [a.status_code for a in answers] == [201] * 6
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["enrolled"] + ["waiting"] * 5
    run = await api.ok("GET", f"/v1/runs/{run_id}", api.college)
    assert (run["places_taken"], run["waiting"]) == (1, 5)


async def test_runs_of_many_courses_come_in_one_call_each_paged_as_its_runs_list(
        api: TrainingApi) -> None:
    busy, quiet = await api.course(), await api.course()
    first = await api.run(busy, capacity=1)
    second, third = await api.run(busy), await api.run(busy)
    only = await api.run(quiet)
    await api.enrol(first, learner_id="learner-batch-1")
    await api.enrol(first, learner_id="learner-batch-2")
    body = await api.ok("POST", "/v1/runs:batch-read", api.tokens.service_user("su-batch"),
                        json={"course_ids": [quiet, "no-such-course", busy],
                              "limit_per_course": 2})
    by_course = {r["course_id"]: r for r in body["results"]}
    assert list(by_course) == [quiet, busy]
    assert [r["id"] for r in by_course[busy]["runs"]] == [first, second]
    assert by_course[busy]["runs"][0]["places_taken"] == 1
    assert by_course[busy]["runs"][0]["waiting"] == 1
    assert by_course[busy]["truncated"] is True
    rest = await api.ok("GET", f"/v1/courses/{busy}/runs", api.college,
                        params={"cursor": by_course[busy]["next_cursor"]})
    assert [r["id"] for r in rest["items"]] == [third]
    assert [r["id"] for r in by_course[quiet]["runs"]] == [only]
    assert by_course[quiet]["truncated"] is False and by_course[quiet]["next_cursor"] is None


async def test_a_batch_of_runs_needs_a_token_and_a_bounded_list_of_courses(
        api: TrainingApi) -> None:
    unsigned = await api.client.post("/v1/runs:batch-read", json={"course_ids": ["c"]})
    assert unsigned.status_code == 401
    for body in ({"course_ids": []}, {"course_ids": [f"c-{i}" for i in range(101)]},
                 {"course_ids": ["c"], "limit_per_course": 201}, {"course_ids": ["a/b"]}):
        response = await api.send("POST", "/v1/runs:batch-read", api.college, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
