"""Care contacts and supervision recorded under an ``Idempotency-Key`` and sent again are
answered the same, counted once, on SQLite and on PostgreSQL."""

from datetime import date

from sqlalchemy import func, select
from workforce_api import WorkforceApi, auth

from recovery.common.kit import ServiceKit
from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    rows_with,
    sent_twice,
)
from recovery.common.testing.plugin import unique
from recovery.workforce.models import (
    Appraisal,
    CareContact,
    CareMinutes,
    RecruitmentPanel,
    Staff,
    Team,
)


async def test_a_retried_care_contact_answers_the_first_and_counts_its_minutes_once(
        api: WorkforceApi) -> None:
    team = await api.team()
    staff = await api.staff(team, role_type="peer_specialist")
    first = await sent_twice(api.client, "/v1/care-contacts",
                             headers=auth(api.tokens.clinician("staff-logger", [team])),
                             json={"staff_id": staff["id"], "service_user_id": "su-1",
                                   "minutes": 45, "mode": "individual",
                                   "occurred_on": date.today().isoformat()})
    kit: ServiceKit = api.client.app.state.kit  # type: ignore[attr-defined]
    async with kit.engine.connect() as connection:
        contacts = (await connection.execute(select(func.count()).select_from(CareContact)
                                             .where(CareContact.team_id == team))).scalar_one()
        minutes = (await connection.execute(select(func.sum(CareMinutes.minutes))
                                            .where(CareMinutes.team_id == team))).scalar_one()
    assert (contacts, minutes) == (1, 45)
    assert await events_about(api.client, first.json()["id"]) == []


async def test_a_retried_supervision_answers_the_first_with_one_session(
        api: WorkforceApi) -> None:
    team = await api.team()
    person, supervisor = await api.staff(team), await api.staff(team)
    manager = api.manager(team)
    first = await sent_twice(api.client, "/v1/supervision-sessions", headers=auth(manager),
                             json={"staff_id": person["id"], "supervisor_id": supervisor["id"],
                                   "held_on": date.today().isoformat(),
                                   "recovery_focused": True, "quality": 4})
    listed = await api.get(f"/v1/staff/{person['id']}/supervision-sessions", manager)
    assert [item["id"] for item in listed["items"]] == [first.json()["id"]]


async def test_retried_teams_staff_appraisals_and_panels_answer_the_first_and_count_once(
        api: WorkforceApi) -> None:
    team = unique("team")
    manager = auth(api.manager(team))
    await sent_twice(api.client, "/v1/teams", headers=manager,
                     json={"id": team, "name": "Assertive outreach"})
    assert await rows_with(api.client, Team.__table__.c.id, team) == 1  # type: ignore[attr-defined]
    staff = await sent_twice(api.client, "/v1/staff", headers=manager, json={
        "team_id": team, "display_name": "Sam Jones", "profession": "nursing",
        "grade": "band-6", "role_type": "professional", "fte": 1.0,
        "start_date": "2024-01-01"})
    assert await rows_with(api.client, Staff.__table__.c.team_id, team) == 1  # type: ignore[attr-defined]
    assert await events_about(api.client, staff.json()["id"]) == [
        "recovery.workforce.staff.joined"]
    today = date.today().isoformat()
    await sent_twice(api.client, "/v1/appraisals", headers=manager, json={
        "staff_id": staff.json()["id"], "held_on": today,
        "service_user_feedback_included": True})
    assert await rows_with(api.client, Appraisal.__table__.c.team_id, team) == 1  # type: ignore[attr-defined]
    await sent_twice(api.client, "/v1/recruitment-panels", headers=manager, json={
        "team_id": team, "role_type": "peer_specialist", "held_on": today,
        "members": ["staff", "service_user"]})
    assert await rows_with(api.client, RecruitmentPanel.__table__.c.team_id, team) == 1  # type: ignore[attr-defined]


async def test_the_workforce_endpoints_that_create_document_the_key(api: WorkforceApi) -> None:
    await assert_the_key_is_documented(api.client, "/v1/care-contacts",
                                       "/v1/supervision-sessions", "/v1/teams", "/v1/staff",
                                       "/v1/appraisals", "/v1/recruitment-panels")
