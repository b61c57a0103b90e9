"""What an EHR writes through FHIR, on SQLite and PostgreSQL: a practitioner's proposal
(POST, conditional with If-None-Exist, retried under an Idempotency-Key) and updates (PUT
with If-Match). Both go through the goals API's own create and update: the same rules, the
same events in the outbox and the same audit entries; every answer validated (R4B)."""

from typing import Any

from conftest import FHIR_JSON, GoalsApi, assert_outcome, unique
from fhir.resources.R4B.goal import Goal as FhirGoal
from sqlalchemy import select

from recovery.common.events.outbox import OUTBOX_TABLE
from recovery.common.fhir import TEAM, TEAM_SYSTEM
from recovery.common.kit import ServiceKit
from recovery.common.settings import Settings
from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    sent_twice,
)
from recovery.goals import fhir

PATIENT_IDS = Settings().fhir_patient_identifier_system
FORWARDED = {"Forwarded": 'proto=https;host="ehr-link.example.org"',
             "X-Forwarded-Prefix": "/recovery"}
PUBLIC_BASE = "https://ehr-link.example.org/recovery/fhir"


def goal_from_ehr(person: str, **elements: Any) -> dict[str, Any]:
    """A Goal as an EHR would send it, saying things about status and authorship that the
    platform decides for itself."""
    return {"resourceType": "Goal", "lifecycleStatus": "active",
            "achievementStatus": {"coding": [{"system": fhir.ACHIEVEMENT_SYSTEM,
                                              "code": "achieved"}]},
            "description": {"text": "Get back to the allotment"},
            "subject": {"reference": f"Patient/{person}"},
            "expressedBy": {"reference": f"Patient/{person}"},
            "startDate": "2020-01-01",
            "priority": {"text": "high"}, "note": [{"text": "Discussed in clinic"}],
            **elements}


def categories(*codes: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]} for system, code in codes]


def team_extension(team: str) -> dict[str, Any]:
    return {"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM, "value": team}}


async def post(api: GoalsApi, token: str, goal: dict[str, Any],
               **headers: str) -> Any:
    return await api.client.post("/fhir/Goal", json=goal,
                                 headers={**api.auth(token), **headers})


async def put(api: GoalsApi, token: str, goal: dict[str, Any], etag: str | None) -> Any:
    return await api.client.put(f"/fhir/Goal/{goal['id']}", json=goal,
                                headers=api.auth(token, etag))


async def goal_count(api: GoalsApi, person: str) -> int:
    staff = api.tokens.admin("admin-1", ["team-a", "team-b"])
    listed = await api.client.get("/fhir/Goal", headers=api.auth(staff), params={
        "patient": person, "_summary": "count"})
    assert listed.status_code == 200, listed.text
    total: int = listed.json()["total"]
    return total


async def event_data(api: GoalsApi, goal_id: str) -> list[dict[str, Any]]:
    """The data of each event the service recorded about the goal, in order."""
    kit: ServiceKit = api.client.app.state.kit  # type: ignore[attr-defined]
    async with kit.engine.connect() as connection:
        rows = await connection.execute(
            select(OUTBOX_TABLE.c.envelope).where(OUTBOX_TABLE.c.subject == goal_id)
            .order_by(OUTBOX_TABLE.c.position))
        return [row[0]["data"] for row in rows]


async def audit_trail(api: GoalsApi, goal_id: str, actor: str) -> set[tuple[str, str]]:
    await api.client.app.state.kit.audit.flush()  # type: ignore[attr-defined]
    trail = await api.client.get("/v1/audit-events", params={"record_id": goal_id,
                                                             "actor": actor},
                                 headers=api.auth(api.tokens.admin("auditor", [])))
    assert trail.status_code == 200, trail.text
    return {(e["action"], e["outcome"]) for e in trail.json()["items"]}


# --- creating: a practitioner's proposal ------------------------------------------------------


async def test_a_goal_sent_by_an_ehr_becomes_the_practitioners_proposal(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    sent = goal_from_ehr(
        person, category=categories((fhir.LIFE_AREA_SYSTEM, "leisure_and_creativity"),
                                    (fhir.CHIME_SYSTEM, "hope"),
                                    ("http://terminology.hl7.org/CodeSystem/goal-category",
                                     "behavioral")),
        target=[{"dueDate": "2031-04-30"}],
        extension=[team_extension("team-a"),
                   {"url": fhir.STRENGTH, "valueString": "green fingers"},
                   {"url": "https://ehr.example.org/ext/ward", "valueCode": "w3"}])
    response = await post(api, staff, sent, **FORWARDED)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == FHIR_JSON
    created = response.json()
    FhirGoal.model_validate(created)
    goal_id = created["id"]
    assert response.headers["location"] == f"{PUBLIC_BASE}/Goal/{goal_id}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert created["text"]["status"] == "generated"
    # What the EHR said of status and authorship is the platform's to decide.
    assert created["lifecycleStatus"] == "proposed"
    assert "achievementStatus" not in created and "startDate" not in created
    assert created["expressedBy"] == {"reference": "Practitioner/staff-1"}
    assert created["subject"] == {"reference": f"Patient/{person}",
                                  "identifier": {"system": PATIENT_IDS, "value": person}}
    assert created["target"] == [{"dueDate": "2031-04-30"}]
    assert {(c["coding"][0]["system"], c["coding"][0]["code"]) for c in created["category"]} == {
        (fhir.GOAL_KIND_SYSTEM, "life"), (fhir.LIFE_AREA_SYSTEM, "leisure_and_creativity"),
        (fhir.CHIME_SYSTEM, "hope")}
    # The same goal the goals API knows, which the person then answers there.
    rest = (await api.read(staff, goal_id)).json()
    assert (rest["lifecycle_status"], rest["expressed_by"], rest["proposed_by"]) == (
        "proposed", "staff", "staff-1")
    assert (rest["team_id"], rest["strengths"]) == ("team-a", ["green fingers"])
    accepted = await api.send("POST", f"/v1/goals/{goal_id}/accept",
                              api.tokens.service_user(person), etag='"1"')
    assert accepted.status_code == 200, accepted.text
    read = await api.client.get(f"/fhir/Goal/{goal_id}", headers=api.auth(staff))
    assert read.json()["lifecycleStatus"] == "active"


async def test_a_goals_person_may_be_named_by_the_ehrs_identifier_alone(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    by_identifier = goal_from_ehr(person, subject={
        "identifier": {"system": PATIENT_IDS, "value": person}})
    response = await post(api, staff, by_identifier)
    assert response.status_code == 201, response.text
    assert response.json()["subject"]["reference"] == f"Patient/{person}"
    both = goal_from_ehr(person, subject={
        "reference": f"https://ehr.example.org/fhir/Patient/{person}", "type": "Patient",
        "identifier": {"system": PATIENT_IDS, "value": person}, "display": "Someone"})
    assert (await post(api, staff, both)).status_code == 201
    assert await goal_count(api, person) == 2


async def test_a_proposal_without_a_team_is_in_the_one_team_of_the_token(api: GoalsApi) -> None:
    person = unique("su")
    one_team = api.tokens.clinician("staff-2", ["team-b"])
    response = await post(api, one_team, goal_from_ehr(person))
    assert response.status_code == 201, response.text
    assert (await api.read(one_team, response.json()["id"])).json()["team_id"] == "team-b"
    two_teams = api.tokens.clinician("staff-3", ["team-a", "team-b"])
    outcome = assert_outcome(await post(api, two_teams, goal_from_ehr(person)), 422)
    assert outcome["issue"][1]["expression"] == [f"Goal.extension('{TEAM}')"]
    named = await post(api, two_teams, goal_from_ehr(person, extension=[team_extension("team-a")]))
    assert named.status_code == 201, named.text
    elsewhere = await post(api, one_team, goal_from_ehr(person,
                                                        extension=[team_extension("team-a")]))
    assert_outcome(elsewhere, 403, "a team not in the token")
    assert await goal_count(api, person) == 2


async def test_a_goal_sent_through_fhir_follows_the_goals_rules(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    therapeutic = goal_from_ehr(person, category=categories((fhir.GOAL_KIND_SYSTEM,
                                                             "therapeutic")))
    outcome = assert_outcome(await post(api, staff, therapeutic), 422, "serves nothing")
    assert outcome["issue"][1]["expression"] == [f"Goal.extension('{fhir.SERVES_LIFE_GOAL}')"]
    life = (await post(api, staff, goal_from_ehr(person))).json()
    serves = {"url": fhir.SERVES_LIFE_GOAL,
              "valueReference": {"reference": f"Goal/{life['id']}"}}
    response = await post(api, staff, {**therapeutic, "extension": [serves]})
    assert response.status_code == 201, response.text
    assert response.json()["extension"][1] == serves


async def test_only_staff_propose_goals_through_fhir(api: GoalsApi) -> None:
    person = unique("su")
    refused = {
        # The person's own goal is theirs: never recorded as a practitioner's proposal.
        "the person": api.tokens.service_user(person),
        "a partner system": api.tokens.system("partner-1", scope="system/Goal.cruds"),
    }
    for who, token in refused.items():
        response = await post(api, token, goal_from_ehr(person,
                                                        extension=[team_extension("team-a")]))
        assert_outcome(response, 403, who)
    read_only = api.tokens.clinician("staff-1", ["team-a"], scope="user/Goal.rs")
    assert_outcome(await post(api, read_only, goal_from_ehr(person)), 403, "no Goal.c")
    assert await goal_count(api, person) == 0


async def test_a_fhir_proposal_publishes_and_audits_as_one_made_through_the_goals_api(
        api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    through_rest = await api.create(staff, service_user_id=person, team_id="team-a",
                                    description="Get back to the allotment",
                                    life_area="home", target_date="2031-01-01")
    through_fhir = (await post(api, staff, goal_from_ehr(
        person, category=categories((fhir.LIFE_AREA_SYSTEM, "home")),
        target=[{"dueDate": "2031-01-01"}]))).json()
    assert await events_about(api.client, through_fhir["id"]) == ["recovery.goals.goal.proposed"]
    (rest_event,) = await event_data(api, through_rest["id"])
    (fhir_event,) = await event_data(api, through_fhir["id"])
    different = {"goal_id", "occurred_at"}
    assert {k: v for k, v in fhir_event.items() if k not in different} == {
        k: v for k, v in rest_event.items() if k not in different}
    assert ("create", "allowed") in await audit_trail(api, through_fhir["id"], "staff-1")


async def test_a_proposal_retried_under_its_idempotency_key_is_answered_again(
        api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    first = await sent_twice(api.client, "/fhir/Goal", headers=api.auth(staff),
                             json=goal_from_ehr(person))
    assert first.headers["content-type"] == FHIR_JSON
    assert await goal_count(api, person) == 1
    assert await events_about(api.client, first.json()["id"]) == [
        "recovery.goals.goal.proposed"]
    await assert_the_key_is_documented(api.client, "/fhir/Goal")


# --- conditional create -----------------------------------------------------------------------


async def test_if_none_exist_creates_only_when_nothing_matches(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    own = await api.create(api.tokens.service_user(person), service_user_id=person,
                           team_id="team-a", description="Swim")
    # Nothing matches: created.
    criteria = f"patient=Patient/{person}&lifecycle-status=proposed"
    made = await post(api, staff, goal_from_ehr(person), **{"If-None-Exist": criteria},
                      **FORWARDED)
    assert made.status_code == 201, made.text
    assert made.headers["location"].startswith(f"{PUBLIC_BASE}/Goal/")
    created = made.json()
    # One match: it is the answer, and nothing more is made or announced.
    again = await post(api, staff, goal_from_ehr(person), **{"If-None-Exist": criteria})
    assert again.status_code == 200, again.text
    assert again.headers["etag"] == 'W/"1"'
    FhirGoal.model_validate(again.json())
    assert again.json()["id"] == created["id"]
    by_id = await post(api, staff, goal_from_ehr(person), **{
        "If-None-Exist": f"patient={person}&_id={own['id']}"})
    assert (by_id.status_code, by_id.json()["id"]) == (200, own["id"])
    # Several match: nothing is chosen for the client.
    several = await post(api, staff, goal_from_ehr(person), **{
        "If-None-Exist": f"patient={person}"})
    assert_outcome(several, 412, "two goals match")
    assert await goal_count(api, person) == 2
    assert await events_about(api.client, created["id"]) == ["recovery.goals.goal.proposed"]
    # A goal the caller may not see matches nothing (nor is it revealed): the goal is made.
    bob = unique("su")
    refused = await post(api, api.tokens.clinician("staff-9", ["team-z"]),
                         goal_from_ehr(bob), **{"If-None-Exist": f"_id={own['id']}"})
    assert refused.status_code == 201, refused.text


# --- updating ---------------------------------------------------------------------------------


async def proposal_as_fhir(api: GoalsApi, person: str, staff: str, **body: Any) -> dict[str, Any]:
    goal = await api.create(staff, service_user_id=person, team_id="team-a",
                            description="Volunteer at the library", **body)
    read = await api.client.get(f"/fhir/Goal/{goal['id']}", headers=api.auth(staff))
    resource: dict[str, Any] = read.json()
    return resource


async def test_an_update_needs_the_version_it_changes(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    goal = await proposal_as_fhir(api, person, staff)
    changed = {**goal, "target": [{"dueDate": "2031-09-01"}]}
    assert_outcome(await put(api, staff, changed, None), 428, "no If-Match")
    assert_outcome(await put(api, staff, changed, 'W/"2"'), 412, "a version to come")
    response = await put(api, staff, changed, 'W/"1"')
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    assert response.headers["etag"] == 'W/"2"'
    assert response.headers["last-modified"].endswith(" GMT")
    updated = response.json()
    FhirGoal.model_validate(updated)
    assert updated["text"]["status"] == "generated"
    assert (updated["meta"]["versionId"], updated["target"]) == ("2", [{"dueDate": "2031-09-01"}])
    assert_outcome(await put(api, staff, changed, 'W/"1"'), 412, "the version before")
    assert_outcome(await api.client.put(f"/fhir/Goal/{unique('goal')}",
                                        json={**changed, "id": "no-such-goal"},
                                        headers=api.auth(staff, 'W/"1"')), 400)


async def test_an_update_replaces_what_the_goal_says_with_the_same_event_as_rest(
        api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    goal = await proposal_as_fhir(api, person, staff, life_area="home", chime_tags=["hope"],
                                  target_date="2031-01-01", why_it_matters="Quiet")
    # The EHR rewords its proposal, moves it to another life area and drops the target date;
    # it keeps none of our extensions, which therefore stay as they are.
    changed = {**goal, "description": {"text": "Volunteer two mornings a week"},
               "category": categories((fhir.LIFE_AREA_SYSTEM, "community_and_citizenship")),
               "extension": []}
    del changed["target"]
    response = await put(api, staff, changed, 'W/"1"')
    assert response.status_code == 200, response.text
    rest = (await api.read(staff, goal["id"])).json()
    assert (rest["description"], rest["life_area"], rest["chime_tags"], rest["target_date"],
            rest["why_it_matters"], rest["team_id"], rest["kind"]) == (
        "Volunteer two mornings a week", "community_and_citizenship", [], None, "Quiet",
        "team-a", "life")
    *_, updated = await event_data(api, goal["id"])
    assert await events_about(api.client, goal["id"]) == ["recovery.goals.goal.proposed",
                                                          "recovery.goals.goal.updated"]
    assert updated["changed_fields"] == ["chime_tags", "description", "life_area",
                                         "target_date"]
    assert (updated["version"], updated["changed_by"]) == (2, "staff-1")
    assert ("update", "allowed") in await audit_trail(api, goal["id"], "staff-1")
    # Sending it back as it now is changes nothing: no version, no event.
    same = await put(api, staff, {**response.json(), "extension": []}, 'W/"2"')
    assert (same.status_code, same.headers["etag"]) == (200, 'W/"2"')
    assert len(await events_about(api.client, goal["id"])) == 2


async def test_an_update_leaves_the_persons_own_words_to_them(api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician("staff-1", ["team-a"])
    made = await api.create(own, service_user_id=person, team_id="team-a",
                            description="See my brother", why_it_matters="Family",
                            strengths=["patient"])
    goal = (await api.client.get(f"/fhir/Goal/{made['id']}", headers=api.auth(staff))).json()
    reworded = {**goal, "description": {"text": "Reconnect with family"}}
    outcome = assert_outcome(await put(api, staff, reworded, 'W/"1"'), 403, "their words")
    assert outcome["issue"][1]["expression"] == ["Goal.description.text"]
    # Staff may still change the rest; the person may change their words.
    later = {**goal, "target": [{"dueDate": "2031-12-24"}],
             "extension": [e for e in goal["extension"] if e["url"] != fhir.STRENGTH]
             + [{"url": fhir.STRENGTH, "valueString": "determined"}]}
    assert (await put(api, staff, later, 'W/"1"')).status_code == 200
    theirs = await put(api, own, {**later, "description": {"text": "Visit my brother"}},
                       'W/"2"')
    assert theirs.status_code == 200, theirs.text
    rest = (await api.read(own, made["id"])).json()
    assert (rest["description"], rest["strengths"], rest["why_it_matters"]) == (
        "Visit my brother", ["determined"], "Family")


async def test_an_update_does_not_move_a_goal_or_change_its_status(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a", "team-b"])
    goal = await proposal_as_fhir(api, person, staff)
    moves = {
        "Goal.subject": {"subject": {"reference": f"Patient/{unique('su')}"}},
        f"Goal.extension('{TEAM}')": {"extension": [team_extension("team-b")]},
        "Goal.lifecycleStatus": {"lifecycleStatus": "completed"},
        "Goal.achievementStatus": {"achievementStatus": {"coding": [
            {"system": fhir.ACHIEVEMENT_SYSTEM, "code": "achieved"}]}},
    }
    for element, move in moves.items():
        outcome = assert_outcome(await put(api, staff, {**goal, **move}, 'W/"1"'), 422, element)
        assert outcome["issue"][1]["expression"] == [element]
    after = await api.client.get(f"/fhir/Goal/{goal['id']}", headers=api.auth(staff))
    assert after.headers["etag"] == 'W/"1"'
    assert await events_about(api.client, goal["id"]) == ["recovery.goals.goal.proposed"]


async def test_partner_systems_and_read_only_tokens_do_not_update(api: GoalsApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    goal = await proposal_as_fhir(api, person, staff)
    changed = {**goal, "target": [{"dueDate": "2031-09-01"}]}
    for who, token in {
        "a read-only token": api.tokens.clinician("staff-1", ["team-a"], scope="user/Goal.rs"),
        "a partner system that may write": api.tokens.system("partner-1",
                                                             scope="system/Goal.cruds"),
    }.items():
        assert_outcome(await put(api, token, changed, 'W/"1"'), 403, who)
    assert (await api.read(staff, goal["id"])).json()["version"] == 1
