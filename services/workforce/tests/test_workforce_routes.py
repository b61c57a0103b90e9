"""The workforce REST API, in process with its lifespan, on SQLite and on PostgreSQL."""

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

from workforce_api import WorkforceApi, auth, problem_of, training_event, unique


async def test_a_manager_sets_up_a_team_and_adds_a_peer_specialist(api: WorkforceApi) -> None:
    team = await api.team()
    peer = await api.staff(team, role_type="peer_specialist", profession="peer_support",
                           grade="band-4", fte=0.8)
    assert peer["team_id"] == team and peer["role_type"] == "peer_specialist"
    assert peer["in_post"] is True and peer["version"] == 1 and peer["end_date"] is None
    colleague = api.tokens.clinician("c-1", [team])
    read = await api.client.get(f"/v1/staff/{peer['id']}", headers=auth(colleague))
    assert read.status_code == 200 and read.json() == peer
    assert read.headers["etag"] == '"1"'
    listed = await api.get(f"/v1/teams/{team}/staff", colleague)
    assert [s["id"] for s in listed["items"]] == [peer["id"]]
    team_read = await api.get(f"/v1/teams/{team}", colleague)
    assert team_read["name"] == "Early intervention"
    assert team_read["recovery_lead_staff_id"] is None


async def test_only_managers_and_admins_of_the_team_set_it_up_and_add_staff(
        api: WorkforceApi) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("c-1", [team])
    refused = await api.client.post("/v1/teams", json={"id": team, "name": "X"},
                                    headers=auth(clinician))
    problem_of(refused, 403, "forbidden")
    elsewhere = await api.client.post("/v1/teams", json={"id": team, "name": "X"},
                                      headers=auth(api.manager(unique("team"))))
    problem_of(elsewhere, 403, "forbidden")
    await api.team(team)
    again = await api.client.post("/v1/teams", json={"id": team, "name": "X"},
                                  headers=auth(api.manager(team)))
    problem_of(again, 409, "conflict")
    body: dict[str, Any] = {"team_id": team, "display_name": "A", "profession": "nursing",
                            "grade": "band-5", "role_type": "professional", "fte": 1,
                            "start_date": "2024-01-01"}
    problem_of(await api.client.post("/v1/staff", json=body, headers=auth(clinician)),
               403, "forbidden")
    unknown = await api.client.post("/v1/staff", json={**body, "team_id": unique("team")},
                                    headers=auth(api.manager(body["team_id"])))
    problem_of(unknown, 403, "forbidden")


async def test_staff_cannot_be_added_to_a_team_that_was_never_set_up(api: WorkforceApi) -> None:
    team = unique("team")
    body = {"team_id": team, "display_name": "A", "profession": "nursing", "grade": "band-5",
            "role_type": "professional", "fte": 1, "start_date": "2024-01-01"}
    problem_of(await api.client.post("/v1/staff", json=body, headers=auth(api.manager(team))),
               422, "unknown-team")


async def test_lived_experience_is_declared_by_the_person_and_read_only_by_them_and_admins(
        api: WorkforceApi) -> None:
    team = await api.team()
    person = await api.staff(team, role_type="peer_specialist", profession="peer_support",
                             staff_id=unique("staff"))
    path = f"/v1/staff/{person['id']}/lived-experience"
    own = api.tokens.peer_specialist(person["id"], [team])
    before = await api.get(path, own)
    assert before["declared"] is None
    for other in (api.manager(team), api.admin(team), api.tokens.clinician("c-2", [team])):
        problem_of(await api.client.put(path, json={"declared": True}, headers=auth(other)),
                   404, "not-found")
    declared = await api.client.put(path, json={"declared": True}, headers=auth(own))
    assert declared.status_code == 200 and declared.json()["declared"] is True
    assert (await api.get(path, api.admin(team)))["declared"] is True
    for other in (api.manager(team), api.tokens.clinician("c-2", [team]),
                  api.admin(unique("team"))):
        problem_of(await api.client.get(path, headers=auth(other)), 404, "not-found")
    # Never part of what colleagues see.
    staff = await api.client.get(f"/v1/staff/{person['id']}", headers=auth(api.manager(team)))
    listed = await api.client.get(f"/v1/teams/{team}/staff", headers=auth(api.manager(team)))
    for response in (staff, listed):
        assert "lived" not in response.text and "declared" not in response.text
    withdrawn = await api.client.put(path, json={"declared": False}, headers=auth(own))
    assert withdrawn.json()["declared"] is False


async def test_peer_share_of_care_follows_logged_contacts_against_the_target(
        api: WorkforceApi) -> None:
    team = await api.team()
    peer = await api.staff(team, role_type="peer_specialist", profession="peer_support")
    nurse = await api.staff(team)
    manager = api.manager(team)
    empty = await api.get(f"/v1/teams/{team}/peer-share", manager)
    assert empty["share"] is None and empty["meets_target"] is None
    assert empty["target"] == 0.5 and len(empty["trend"]) == 12
    last_month = date.today().replace(day=1) - timedelta(days=1)
    for staff, minutes, on in ((peer, 30, None), (nurse, 90, None), (peer, 60, last_month),
                               (nurse, 20, last_month)):
        logged = await api.contact(team, staff["id"], minutes, on=on)
        assert logged.status_code == 201, logged.text
        assert logged.json()["by_peer"] is (staff is peer)
    figures = await api.get(f"/v1/teams/{team}/peer-share", manager)
    assert (figures["peer_minutes"], figures["total_minutes"]) == (90, 200)
    assert figures["share"] == 0.45 and figures["meets_target"] is False
    this, previous = figures["trend"][-1], figures["trend"][-2]
    assert this["month"] == date.today().strftime("%Y-%m")
    assert (this["peer_minutes"], this["total_minutes"], this["share"]) == (30, 120, 0.25)
    assert (previous["peer_minutes"], previous["total_minutes"]) == (60, 80)
    assert previous["share"] == 0.75
    one_month = await api.get(f"/v1/teams/{team}/peer-share", manager, months=1)
    assert one_month["share"] == 0.25 and len(one_month["trend"]) == 1
    organisation = await api.get("/v1/peer-share", manager)
    assert organisation["team_id"] is None
    assert organisation["total_minutes"] >= 200


async def test_care_is_logged_once_it_happened_by_someone_in_post(api: WorkforceApi) -> None:
    team = await api.team()
    starter = await api.staff(team, start_date=(date.today() - timedelta(days=3)).isoformat())
    future = await api.contact(team, starter["id"], 30, on=date.today() + timedelta(days=1))
    problem_of(future, 422, "contact-in-future")
    before_start = await api.contact(team, starter["id"], 30,
                                     on=date.today() - timedelta(days=10))
    problem_of(before_start, 422, "not-in-post")
    other_team = await api.team()
    outsider = api.tokens.clinician("c-out", [other_team])
    refused = await api.client.post("/v1/care-contacts", headers=auth(outsider), json={
        "staff_id": starter["id"], "service_user_id": "su-1", "minutes": 30,
        "occurred_on": date.today().isoformat()})
    problem_of(refused, 404, "not-found")
    figures = await api.get(f"/v1/teams/{team}/peer-share", api.manager(team))
    assert figures["total_minutes"] == 0


async def test_h0038_export_counts_15_minute_units_with_hq_for_groups_and_the_daily_cap(
        api: WorkforceApi) -> None:
    team = await api.team()
    peer = await api.staff(team, role_type="peer_specialist", profession="peer_support")
    nurse = await api.staff(team)
    day = date.today() - timedelta(days=1)
    contacts = [("su-a", "individual", 7), ("su-b", "individual", 8),
                ("su-c", "individual", 20), ("su-c", "individual", 3),  # 23 min in the day
                ("su-d", "group", 45), ("su-e", "individual", 200), ("su-e", "group", 90)]
    for person, mode, minutes in contacts:
        assert (await api.contact(team, peer["id"], minutes, mode=mode, person=person,
                                  on=day)).status_code == 201
    assert (await api.contact(team, nurse["id"], 60, person="su-b", on=day)).status_code == 201
    manager = api.manager(team)
    export = await api.get(f"/v1/teams/{team}/peer-support-billing", manager,
                           **{"from": day.isoformat(), "to": day.isoformat()})
    assert (export["hcpcs"], export["unit_minutes"], export["rounding"],
            export["daily_cap_units"]) == ("H0038", 15, "midpoint", 16)
    lines = {(line["service_user_id"], line["modifier"]): line for line in export["lines"]}
    assert ("su-a", None) not in lines  # 7 minutes is under half a unit
    assert lines[("su-b", None)]["units"] == 1 and lines[("su-b", None)]["minutes"] == 8
    assert lines[("su-c", None)]["units"] == 2 and lines[("su-c", None)]["contacts"] == 2
    assert lines[("su-d", "HQ")]["units"] == 3
    # 200 minutes are 13 units; the group's 6 units are cut to the 3 left of the cap of 16.
    assert lines[("su-e", None)]["units"] == 13 and not lines[("su-e", None)]["capped"]
    assert lines[("su-e", "HQ")]["units"] == 3 and lines[("su-e", "HQ")]["capped"]
    assert export["total_units"] == 1 + 2 + 3 + 13 + 3
    csv = await api.client.get(f"/v1/teams/{team}/peer-support-billing", headers=auth(manager),
                               params={"from": day.isoformat(), "to": day.isoformat(),
                                       "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    rows = csv.text.strip().splitlines()
    assert rows[0] == "service_user_id,service_date,hcpcs,modifier,units,minutes,contacts,capped"
    assert f"su-d,{day.isoformat()},H0038,HQ,3,45,1,false" in rows
    assert len(rows) == 1 + len(export["lines"])
    period = {"from": day.isoformat(), "to": day.isoformat()}
    negotiated = await api.client.get(f"/v1/teams/{team}/peer-support-billing",
                                      headers={**auth(manager), "Accept": "text/csv"},
                                      params=period)
    assert negotiated.headers["content-type"].startswith("text/csv")
    assert negotiated.text == csv.text
    explicit = await api.client.get(f"/v1/teams/{team}/peer-support-billing",
                                    headers={**auth(manager), "Accept": "text/csv"},
                                    params={**period, "format": "json"})
    assert explicit.json()["total_units"] == export["total_units"]
    backwards = await api.client.get(f"/v1/teams/{team}/peer-support-billing",
                                     headers=auth(manager),
                                     params={"from": day.isoformat(),
                                             "to": (day - timedelta(days=1)).isoformat()})
    problem_of(backwards, 422, "bad-period")


async def test_skill_mix_is_fte_by_profession_and_role_type_with_the_peer_ratio(
        api: WorkforceApi) -> None:
    team = await api.team()
    await api.staff(team, role_type="peer_specialist", profession="peer_support", fte=1.0)
    await api.staff(team, role_type="peer_specialist", profession="peer_support", fte=0.5)
    await api.staff(team, profession="nursing", fte=1.0)
    await api.staff(team, profession="psychology", fte=0.5)
    await api.staff(team, role_type="manager", profession="management", fte=1.0)
    await api.staff(team, fte=1.0, start_date=(date.today() + timedelta(days=30)).isoformat())
    mix = await api.get(f"/v1/teams/{team}/skill-mix", api.manager(team))
    assert mix["staff_in_post"] == 5 and mix["fte_total"] == 4.0
    assert mix["fte_by_profession"] == {"management": 1.0, "nursing": 1.0,
                                        "peer_support": 1.5, "psychology": 0.5}
    assert mix["fte_by_role_type"] == {"manager": 1.0, "peer_specialist": 1.5,
                                       "professional": 1.5}
    assert mix["peer_to_professional_ratio"] == 1.0


async def test_moving_and_leaving_need_the_current_version_and_are_reflected(
        api: WorkforceApi) -> None:
    team_a, team_b = await api.team(), await api.team()
    person = await api.staff(team_a)
    path = f"/v1/staff/{person['id']}"
    manager = api.manager(team_a, team_b)
    move = {"team_id": team_b, "effective_date": date.today().isoformat()}
    problem_of(await api.client.post(f"{path}/move", json=move, headers=auth(manager)), 428)
    problem_of(await api.client.post(f"{path}/move", json=move, headers=auth(manager, '"7"')),
               412)
    only_a = api.manager(team_a)
    problem_of(await api.client.post(f"{path}/move", json=move, headers=auth(only_a, '"1"')),
               403, "forbidden")
    moved = await api.client.post(f"{path}/move", json=move, headers=auth(manager, '"1"'))
    assert moved.status_code == 200, moved.text
    assert moved.json()["team_id"] == team_b and moved.headers["etag"] == '"2"'
    same = await api.client.post(f"{path}/move", json=move, headers=auth(manager, '"2"'))
    problem_of(same, 422, "same-team")
    assert (await api.get(f"/v1/teams/{team_a}/staff", manager))["items"] == []
    left = await api.client.post(f"{path}/leave", json={"end_date": "2020-01-01"},
                                 headers=auth(manager, '"2"'))
    problem_of(left, 422, "before-start")
    left = await api.client.post(f"{path}/leave",
                                 json={"end_date": (date.today() - timedelta(days=1)).isoformat()},
                                 headers=auth(manager, '"2"'))
    assert left.status_code == 200 and left.json()["in_post"] is False
    assert (await api.get(f"/v1/teams/{team_b}/staff", manager))["items"] == []
    everyone = await api.get(f"/v1/teams/{team_b}/staff", manager, include_left="true")
    assert [s["id"] for s in everyone["items"]] == [person["id"]]
    again = await api.client.post(f"{path}/leave", json={"end_date": "2030-01-01"},
                                  headers=auth(manager, '"3"'))
    problem_of(again, 409, "staff-left")


async def test_readiness_is_limited_by_its_weakest_factor_and_shows_its_records(
        api: WorkforceApi) -> None:
    team = await api.team()
    manager = api.manager(team)
    lead = await api.staff(team, role_type="manager", profession="management")
    peer = await api.staff(team, role_type="peer_specialist", profession="peer_support")
    nothing = await api.get(f"/v1/teams/{team}/readiness", manager)
    assert nothing["score"] == 0 and nothing["level"] == "low"
    assert nothing["weakest_factor"] == "training"  # ties go to the first factor
    assert [f["name"] for f in nothing["factors"]] == ["training", "supervision", "leadership",
                                                      "culture"]

    # Training: both complete the foundation course and rate it well.
    for staff in (lead, peer):
        await api.training(training_event("course.completed", staff_id=staff["id"],
                                          team_id=team, version=2,
                                          completed_on=date.today().isoformat()))
        await api.training(training_event("feedback.recorded", staff_id=staff["id"],
                                          team_id=team, version=3, rating=5))
    # Leadership: the lead is named, in post and trained.
    named = await api.client.put(f"/v1/teams/{team}/recovery-lead",
                                 json={"staff_id": lead["id"]}, headers=auth(manager))
    assert named.status_code == 200 and named.json()["recovery_lead_staff_id"] == lead["id"]
    # Supervision: everyone supervised, recovery-focused, good quality.
    for staff, supervisor in ((peer, lead), (lead, peer)):
        recorded = await api.client.post("/v1/supervision-sessions", headers=auth(manager),
                                         json={"staff_id": staff["id"],
                                               "supervisor_id": supervisor["id"],
                                               "held_on": date.today().isoformat(),
                                               "recovery_focused": True, "quality": 5})
        assert recorded.status_code == 201, recorded.text
    # Culture: one lukewarm climate response.
    answered = await api.client.post(f"/v1/teams/{team}/climate-survey-responses",
                                     headers=auth(api.tokens.clinician("c-1", [team])),
                                     json={"responded_on": date.today().isoformat(),
                                           "answers": [3, 3, 3, 3, 3]})
    assert answered.status_code == 201, answered.text

    ready = await api.get(f"/v1/teams/{team}/readiness", manager)
    factors = {f["name"]: f for f in ready["factors"]}
    assert factors["training"]["score"] == 1.0
    assert factors["training"]["records"]["completed_foundation"] == 2
    assert factors["training"]["records"]["mean_rating"] == 5.0
    assert factors["supervision"]["score"] == 1.0
    assert factors["supervision"]["records"]["supervised"] == 2
    assert factors["leadership"]["score"] == 1.0
    assert factors["leadership"]["records"]["recovery_lead_staff_id"] == lead["id"]
    assert factors["culture"]["score"] == 0.5
    assert factors["culture"]["records"]["responses"] == 1
    assert ready["weakest_factor"] == "culture"
    assert ready["score"] == 0.5 and ready["level"] == "developing"


async def test_training_events_late_or_repeated_never_undo_newer_facts(
        api: WorkforceApi) -> None:
    team = await api.team()
    manager = api.manager(team)
    person = await api.staff(team)
    done = date.today().isoformat()
    await api.training(training_event("feedback.recorded", staff_id=person["id"],
                                      team_id=team, version=3, rating=4))
    await api.training(training_event("course.completed", staff_id=person["id"], team_id=team,
                                      version=2, completed_on=done))
    # The enrolment arrives last, and an older rating after the newer one.
    await api.training(training_event("enrolment.created", staff_id=person["id"],
                                      team_id=team, version=1))
    await api.training(training_event("feedback.recorded", staff_id=person["id"],
                                      team_id=team, version=1, rating=1))
    # A carer's completion (a learner who is not staff) is not counted for anyone.
    await api.training(training_event("course.completed", staff_id=person["id"], team_id=team,
                                      version=9, enrolment_id=str(uuid.uuid4()),
                                      completed_on=done, learner_kind="carer"))
    training = (await api.get(f"/v1/teams/{team}/readiness", manager))["factors"][0]
    assert training["records"]["completed_foundation"] == 1
    assert training["records"]["mean_rating"] == 4.0
    assert training["records"]["feedback_ratings"] == 1
    # A course that is not the foundation course counts for quality, not coverage.
    other = await api.staff(team)
    await api.training(training_event("course.completed", staff_id=other["id"], team_id=team,
                                      version=2, foundation=False, completed_on=done))
    training = (await api.get(f"/v1/teams/{team}/readiness", manager))["factors"][0]
    assert training["records"]["completed_foundation"] == 1
    assert training["records"]["staff_in_post"] == 2


async def test_a_starter_whose_first_day_is_ahead_counts_for_training_not_for_skill_mix(
        api: WorkforceApi) -> None:
    team = await api.team()
    manager = api.manager(team)
    starter = await api.staff(team, start_date=(date.today() + timedelta(days=20)).isoformat())
    await api.training(training_event("course.completed", staff_id=starter["id"],
                                      team_id=team, version=2,
                                      completed_on=date.today().isoformat()))
    training = (await api.get(f"/v1/teams/{team}/readiness", manager))["factors"][0]
    assert training["records"]["staff_in_post"] == 1
    assert training["records"]["completed_foundation"] == 1
    assert (await api.get(f"/v1/teams/{team}/skill-mix", manager))["staff_in_post"] == 0


async def test_coverage_follows_the_person_when_they_move_team(api: WorkforceApi) -> None:
    team_a, team_b = await api.team(), await api.team()
    manager = api.manager(team_a, team_b)
    person = await api.staff(team_a)
    await api.staff(team_b)
    await api.training(training_event("course.completed", staff_id=person["id"],
                                      team_id=team_a, version=2,
                                      completed_on=date.today().isoformat()))

    async def coverage(team: str) -> float:
        readiness = await api.get(f"/v1/teams/{team}/readiness", manager)
        value: float = readiness["factors"][0]["records"]["coverage"]
        return value

    assert (await coverage(team_a), await coverage(team_b)) == (1.0, 0.0)
    moved = await api.client.post(f"/v1/staff/{person['id']}/move", headers=auth(manager, '"1"'),
                                  json={"team_id": team_b,
                                        "effective_date": date.today().isoformat()})
    assert moved.status_code == 200, moved.text
    assert (await coverage(team_a), await coverage(team_b)) == (0.0, 0.5)


async def test_a_recovery_lead_must_be_in_the_team_and_leaving_empties_the_post(
        api: WorkforceApi) -> None:
    team, other = await api.team(), await api.team()
    manager = api.manager(team)
    stranger = await api.staff(other)
    refused = await api.client.put(f"/v1/teams/{team}/recovery-lead",
                                   json={"staff_id": stranger["id"]}, headers=auth(manager))
    problem_of(refused, 422, "not-in-team")
    lead = await api.staff(team)
    clinician = api.tokens.clinician("c-1", [team])
    problem_of(await api.client.put(f"/v1/teams/{team}/recovery-lead",
                                    json={"staff_id": lead["id"]}, headers=auth(clinician)),
               403, "forbidden")
    assert (await api.client.put(f"/v1/teams/{team}/recovery-lead",
                                 json={"staff_id": lead["id"]},
                                 headers=auth(manager))).status_code == 200
    left = await api.client.post(f"/v1/staff/{lead['id']}/leave", headers=auth(manager, '"1"'),
                                 json={"end_date": date.today().isoformat()})
    assert left.status_code == 200
    assert (await api.get(f"/v1/teams/{team}", manager))["recovery_lead_staff_id"] is None


async def test_supervision_appraisals_and_panels_are_recorded_and_read_by_the_right_people(
        api: WorkforceApi) -> None:
    team = await api.team()
    manager = api.manager(team)
    person = await api.staff(team, staff_id=unique("staff"))
    supervisor = await api.staff(team)
    today = date.today().isoformat()
    body = {"staff_id": person["id"], "supervisor_id": supervisor["id"], "held_on": today,
            "recovery_focused": False, "quality": 2, "peer_supervision": False}
    problem_of(await api.client.post("/v1/supervision-sessions", headers=auth(manager),
                                     json={**body, "supervisor_id": person["id"]}),
               422, "self-supervision")
    session = await api.client.post("/v1/supervision-sessions", headers=auth(manager), json=body)
    assert session.status_code == 201 and session.json()["team_id"] == team
    appraisal = await api.client.post("/v1/appraisals", headers=auth(manager), json={
        "staff_id": person["id"], "held_on": today, "service_user_feedback_included": True})
    assert appraisal.status_code == 201, appraisal.text
    colleague = api.tokens.clinician("c-1", [team])
    problem_of(await api.client.post("/v1/appraisals", headers=auth(colleague), json={
        "staff_id": person["id"], "held_on": today, "service_user_feedback_included": True}),
        403, "forbidden")
    own = api.tokens.clinician(person["id"], [team])
    for path in (f"/v1/staff/{person['id']}/supervision-sessions",
                 f"/v1/staff/{person['id']}/appraisals"):
        for reader in (own, manager):
            assert len((await api.get(path, reader))["items"]) == 1
        problem_of(await api.client.get(path, headers=auth(colleague)), 404, "not-found")
    panel = await api.client.post("/v1/recruitment-panels", headers=auth(manager), json={
        "team_id": team, "role_type": "peer_specialist", "held_on": today,
        "members": ["staff", "service_user", "peer_specialist"]})
    assert panel.status_code == 201 and panel.json()["lived_experience_members"] == 2
    panels = await api.get(f"/v1/teams/{team}/recruitment-panels", colleague)
    assert [p["id"] for p in panels["items"]] == [panel.json()["id"]]
    culture = (await api.get(f"/v1/teams/{team}/readiness", manager))["factors"][3]
    assert culture["records"]["recruitment_panels"] == 1
    assert culture["records"]["panels_with_service_user_or_peer_members"] == 1
    assert culture["records"]["appraisals_with_service_user_feedback"] == 1
    survey = await api.get("/v1/climate-survey", colleague)
    assert len(survey["items"]) == 5


async def test_figures_are_for_managers_and_admins_of_the_team(api: WorkforceApi) -> None:
    team = await api.team()
    clinician = api.tokens.clinician("c-1", [team])
    for path in ("peer-share", "skill-mix", "readiness"):
        problem_of(await api.client.get(f"/v1/teams/{team}/{path}", headers=auth(clinician)),
                   403, "forbidden")
        problem_of(await api.client.get(f"/v1/teams/{team}/{path}",
                                        headers=auth(api.manager(unique("team")))),
                   403, "forbidden")
        assert (await api.client.get(f"/v1/teams/{team}/{path}",
                                     headers=auth(api.admin(team)))).status_code == 200


async def test_contacts_logged_at_the_same_moment_are_all_counted(api: WorkforceApi) -> None:
    team = await api.team()
    peer = await api.staff(team, role_type="peer_specialist", profession="peer_support")
    nurse = await api.staff(team)
    logged = await asyncio.gather(*(api.contact(team, (peer if n % 2 else nurse)["id"], 10 + n)
                                    for n in range(24)))
    assert [response.status_code for response in logged] == [201] * 24
    figures = await api.get(f"/v1/teams/{team}/peer-share", api.manager(team), months=1)
    assert figures["total_minutes"] == sum(10 + n for n in range(24))
    assert figures["peer_minutes"] == sum(10 + n for n in range(24) if n % 2)


async def test_a_change_of_hours_needs_the_current_version_and_moves_the_skill_mix(
        api: WorkforceApi) -> None:
    team = await api.team()
    person = await api.staff(team, fte=1.0)
    manager = api.manager(team)
    path = f"/v1/staff/{person['id']}"
    problem_of(await api.client.patch(path, json={"fte": 0.6}, headers=auth(manager)), 428)
    problem_of(await api.client.patch(path, json={}, headers=auth(manager, '"1"')), 422)
    changed = await api.client.patch(path, json={"fte": 0.6}, headers=auth(manager, '"1"'))
    assert changed.status_code == 200, changed.text
    assert changed.json()["fte"] == 0.6 and changed.headers["etag"] == '"2"'
    assert (await api.get(f"/v1/teams/{team}/skill-mix", manager))["fte_total"] == 0.6
    problem_of(await api.client.patch(path, json={"fte": 0.5}, headers=auth(manager, '"1"')),
               412)
