"""Who is acting on a person's record, refusals as problem documents, and how far a caller's
lists reach: shared by every service's rules and lists."""

from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.dialects import sqlite

from recovery.common.auth import Principal, Verb
from recovery.common.reach import Reach, reach_condition, reach_of
from recovery.common.rules import (
    ENTERED_IN_ERROR,
    Actor,
    ActorKind,
    Refusal,
    actor_for,
    closed_refusal,
    entered_in_error_refusal,
    refuse,
)


def principal(sub: str, *roles: str, scope: str, patient: str | None = None,
              teams: str = "") -> Principal:
    return Principal.from_claims({"sub": sub, "roles": list(roles), "scope": scope,
                                  "patient": patient, "teams": teams})


SERVICE_USER = principal("su-1", "service_user", scope="patient/Goal.rs", patient="su-1")
CLINICIAN = principal("staff-1", "clinician", scope="user/Goal.cruds", teams="team-a,team-b")
PEER = principal("staff-2", "peer_specialist", scope="user/Goal.rs", teams="team-a")
PARTNER = principal("ehr-1", "system", scope="system/Goal.rs")

NOTES = Table("note", MetaData(), Column("service_user_id", String), Column("team_id", String))


def test_the_person_acts_as_themselves_only_on_their_own_record() -> None:
    assert actor_for(SERVICE_USER, "su-1") == Actor(ActorKind.person, "su-1")
    assert actor_for(SERVICE_USER, "su-2").kind is ActorKind.system


def test_clinicians_are_staff_unless_the_domain_sets_them_apart() -> None:
    assert actor_for(CLINICIAN, "su-1").kind is ActorKind.staff
    assert actor_for(CLINICIAN, "su-1", clinicians_apart=True) == Actor(ActorKind.clinician,
                                                                          "staff-1")
    assert actor_for(PEER, "su-1", clinicians_apart=True).kind is ActorKind.staff
    assert actor_for(PARTNER, "su-1", clinicians_apart=True).kind is ActorKind.system


def test_a_refusal_naming_a_field_becomes_a_problem_with_that_invalid_param() -> None:
    problem = refuse(Refusal(422, "not-a-life-goal", "Serve a life goal.", "serves_goal_ids"))
    assert (problem.status, problem.kind, problem.detail) == (422, "not-a-life-goal",
                                                              "Serve a life goal.")
    assert [(p.name, p.reason) for p in problem.invalid_params or []] == [
        ("serves_goal_ids", "Serve a life goal.")]
    assert refuse(Refusal(403, "forbidden", "No.")).invalid_params is None


def test_reach_follows_the_scopes_and_claims_of_the_caller() -> None:
    assert reach_of(SERVICE_USER, "Goal", Verb.search) == Reach(False, frozenset({"su-1"}),
                                                                frozenset())
    assert reach_of(CLINICIAN, "Goal", Verb.search) == Reach(
        False, frozenset(), frozenset({"team-a", "team-b"}))
    assert reach_of(PARTNER, "Goal", Verb.search).everyone
    # A scope on another resource type reaches nothing.
    assert reach_of(CLINICIAN, "CarePlan", Verb.search) == Reach(False, frozenset(),
                                                                 frozenset())


def _where(reach: Reach, service_user_id: str | None = None,
           team_id: str | None = None) -> str | bool | None:
    condition = reach_condition(reach, person_column=NOTES.c.service_user_id,
                                team_column=NOTES.c.team_id, service_user_id=service_user_id,
                                team_id=team_id)
    if condition is None or condition is False:
        return condition
    query = select(NOTES).where(condition)
    return str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
               ).split("WHERE ", 1)[1]


def test_a_list_is_kept_to_the_people_and_teams_the_caller_reaches() -> None:
    clinician = reach_of(CLINICIAN, "Goal", Verb.search)
    assert _where(clinician) == "note.team_id IN ('team-a', 'team-b')"
    assert _where(reach_of(PEER, "Goal", Verb.search)) == "note.team_id = 'team-a'"
    assert _where(reach_of(SERVICE_USER, "Goal", Verb.search)) == (
        "note.service_user_id = 'su-1'")


def test_a_filter_inside_the_reach_needs_no_condition_and_one_outside_matches_nothing() -> None:
    clinician = reach_of(CLINICIAN, "Goal", Verb.search)
    assert _where(clinician, team_id="team-a") is None
    assert _where(reach_of(PARTNER, "Goal", Verb.search), service_user_id="su-9") is None
    assert _where(clinician, team_id="team-z") is False
    assert _where(reach_of(SERVICE_USER, "Goal", Verb.search), service_user_id="su-2") is False


def test_only_staff_mark_a_record_entered_in_error_and_only_once() -> None:
    for kind in (ActorKind.staff, ActorKind.clinician):
        assert entered_in_error_refusal(Actor(kind, "staff-1"), "draft", "plan") is None
    for kind in (ActorKind.person, ActorKind.system):
        refusal = entered_in_error_refusal(Actor(kind, "su-1"), "draft", "plan")
        assert refusal is not None and (refusal.status, refusal.kind) == (
            403, "only-staff-mark-errors")
    again = entered_in_error_refusal(Actor(ActorKind.staff, "staff-1"), ENTERED_IN_ERROR, "plan")
    assert again is not None and (again.status, again.kind) == (409, "entered-in-error")


def test_a_record_marked_entered_in_error_is_closed_to_change() -> None:
    assert closed_refusal("agreed", "plan") is None
    closed = closed_refusal(ENTERED_IN_ERROR, "crisis plan")
    assert closed is not None and closed.status == 409
    assert closed.detail.startswith("This crisis plan was marked entered-in-error")
