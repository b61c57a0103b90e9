"""The goals domain rules, as plain functions: no HTTP, no database."""

import pytest

from recovery.goals import rules
from recovery.goals.models import AchievementStatus, ExpressedBy, GoalKind, LifecycleStatus
from recovery.goals.rules import Actor, ActorKind, FigureRow, LinkedGoal

S = LifecycleStatus
PERSON = Actor(ActorKind.person, "su-1")
STAFF = Actor(ActorKind.staff, "staff-1")
SYSTEM = Actor(ActorKind.system, "partner-1")


def life_goal(goal_id: str = "g-life", person: str = "su-1",
              status: LifecycleStatus = S.active) -> LinkedGoal:
    return LinkedGoal(goal_id, person, GoalKind.life, status)


def test_a_goal_the_person_writes_is_active_and_in_their_words() -> None:
    state = rules.initial_state(PERSON)
    assert isinstance(state, rules.InitialState)
    assert state.lifecycle_status is S.active
    assert state.expressed_by is ExpressedBy.service_user
    assert state.achievement_status is AchievementStatus.in_progress
    assert state.agreed


def test_a_goal_staff_write_is_only_proposed() -> None:
    state = rules.initial_state(STAFF)
    assert isinstance(state, rules.InitialState)
    assert state.lifecycle_status is S.proposed
    assert state.expressed_by is ExpressedBy.staff
    assert not state.agreed


def test_partner_systems_do_not_write_goals() -> None:
    refusal = rules.initial_state(SYSTEM)
    assert isinstance(refusal, rules.Refusal) and refusal.status == 403


def test_therapeutic_goal_must_serve_a_life_goal() -> None:
    refusal = rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", [], {})
    assert refusal is not None
    assert (refusal.status, refusal.kind) == (422, "therapeutic-goal-needs-life-goal")
    assert refusal.field == "serves_goal_ids"


def test_therapeutic_goal_serving_a_life_goal_of_the_person_is_fine() -> None:
    linked = {"g-life": life_goal()}
    assert rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", ["g-life"],
                                          linked) is None


def test_therapeutic_goal_cannot_serve_another_persons_goal() -> None:
    linked = {"g-life": life_goal(person="su-2")}
    refusal = rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", ["g-life"], linked)
    assert refusal is not None and refusal.kind == "served-goal-not-found"


def test_therapeutic_goal_cannot_serve_an_unknown_goal() -> None:
    refusal = rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", ["nope"], {})
    assert refusal is not None and refusal.kind == "served-goal-not-found"


def test_therapeutic_goal_cannot_serve_another_therapeutic_goal() -> None:
    linked = {"g-t": LinkedGoal("g-t", "su-1", GoalKind.therapeutic, S.active)}
    refusal = rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", ["g-t"], linked)
    assert refusal is not None and refusal.kind == "served-goal-not-life-goal"


@pytest.mark.parametrize("status", [S.entered_in_error, S.rejected, S.cancelled])
def test_therapeutic_goal_cannot_serve_a_life_goal_that_is_gone(status: LifecycleStatus) -> None:
    linked = {"g-life": life_goal(status=status)}
    refusal = rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", ["g-life"], linked)
    assert refusal is not None and refusal.kind == "served-goal-closed"


def test_one_bad_link_among_good_ones_is_refused() -> None:
    linked = {"a": life_goal("a"), "b": life_goal("b", person="su-9")}
    assert rules.therapeutic_link_refusal(GoalKind.therapeutic, "su-1", ["a", "b"],
                                          linked) is not None


def test_a_life_goal_serves_no_other_goal() -> None:
    refusal = rules.therapeutic_link_refusal(GoalKind.life, "su-1", ["g-life"],
                                             {"g-life": life_goal()})
    assert refusal is not None and refusal.status == 422


def test_only_the_person_accepts_or_declines() -> None:
    assert rules.decision_refusal(PERSON, S.proposed) is None
    staff = rules.decision_refusal(STAFF, S.proposed)
    assert staff is not None and staff.status == 403
    system = rules.decision_refusal(SYSTEM, S.proposed)
    assert system is not None and system.status == 403


@pytest.mark.parametrize("status", [s for s in S if s is not S.proposed])
def test_only_a_proposed_goal_is_accepted_or_declined(status: LifecycleStatus) -> None:
    refusal = rules.decision_refusal(PERSON, status)
    assert refusal is not None and refusal.status == 409


@pytest.mark.parametrize(("current", "target"), [
    (S.active, S.on_hold), (S.on_hold, S.active), (S.active, S.completed),
    (S.on_hold, S.completed), (S.completed, S.active), (S.active, S.cancelled),
    (S.cancelled, S.active), (S.planned, S.active), (S.accepted, S.active),
    (S.rejected, S.entered_in_error), (S.proposed, S.entered_in_error),
])
def test_allowed_transitions_of_an_agreed_goal(current: LifecycleStatus,
                                               target: LifecycleStatus) -> None:
    assert rules.transition_refusal(STAFF, current, target, agreed=True) is None
    assert rules.transition_refusal(PERSON, current, target, agreed=True) is None


@pytest.mark.parametrize(("current", "target"), [
    (S.proposed, S.active), (S.proposed, S.rejected), (S.proposed, S.accepted),
    (S.proposed, S.completed), (S.rejected, S.active), (S.entered_in_error, S.active),
    (S.completed, S.on_hold), (S.active, S.proposed), (S.active, S.rejected),
])
def test_transitions_that_skip_the_lifecycle_are_refused(current: LifecycleStatus,
                                                         target: LifecycleStatus) -> None:
    refusal = rules.transition_refusal(PERSON, current, target, agreed=True)
    assert refusal is not None and refusal.status == 409


def test_entered_in_error_is_final() -> None:
    assert rules.TRANSITIONS[S.entered_in_error] == frozenset()


def test_every_status_can_be_marked_entered_in_error_except_itself() -> None:
    for status in S:
        if status is not S.entered_in_error:
            assert S.entered_in_error in rules.TRANSITIONS[status]


def test_a_transition_to_the_same_status_is_no_change() -> None:
    refusal = rules.transition_refusal(STAFF, S.active, S.active, agreed=True)
    assert refusal is not None and refusal.kind == "no-change"


def test_staff_withdraw_their_proposal_but_the_person_declines_instead() -> None:
    assert rules.transition_refusal(STAFF, S.proposed, S.cancelled, agreed=False) is None
    refusal = rules.transition_refusal(PERSON, S.proposed, S.cancelled, agreed=False)
    assert refusal is not None and refusal.status == 409


def test_staff_cannot_take_up_a_goal_the_person_never_agreed() -> None:
    # A withdrawn proposal stays withdrawn unless the person takes it up themselves.
    refusal = rules.transition_refusal(STAFF, S.cancelled, S.active, agreed=False)
    assert refusal is not None and refusal.kind == "only-the-person-decides"
    assert rules.transition_refusal(PERSON, S.cancelled, S.active, agreed=False) is None


def test_completing_publishes_completed_and_other_changes_status_changed() -> None:
    assert rules.event_verb_for_status(S.completed) == "completed"
    assert rules.event_verb_for_status(S.on_hold) == "status-changed"
    assert rules.event_verb_for_status(S.entered_in_error) == "status-changed"


def test_staff_may_not_rewrite_the_persons_own_words_once_agreed() -> None:
    refusal = rules.edit_refusal(STAFF, S.active, ["description"], agreed=True)
    assert refusal is not None and refusal.kind == "persons-own-words"
    refusal = rules.edit_refusal(STAFF, S.active, ["why_it_matters"], agreed=True)
    assert refusal is not None and refusal.status == 403


def test_staff_may_shape_the_words_of_a_proposal_not_yet_agreed() -> None:
    assert rules.edit_refusal(STAFF, S.proposed, ["description"], agreed=False) is None


def test_staff_may_change_supporters_steps_and_dates_of_an_agreed_goal() -> None:
    assert rules.edit_refusal(STAFF, S.active, ["supporters", "target_date", "steps"],
                              agreed=True) is None


def test_the_person_may_change_their_own_words() -> None:
    assert rules.edit_refusal(PERSON, S.active, ["description", "why_it_matters"],
                              agreed=True) is None


@pytest.mark.parametrize("status", [S.entered_in_error, S.rejected])
def test_closed_goals_cannot_be_edited(status: LifecycleStatus) -> None:
    refusal = rules.edit_refusal(PERSON, status, ["target_date"], agreed=True)
    assert refusal is not None and refusal.status == 409


def test_partner_systems_do_not_edit_goals() -> None:
    refusal = rules.edit_refusal(SYSTEM, S.active, ["target_date"], agreed=True)
    assert refusal is not None and refusal.status == 403


@pytest.mark.parametrize("status", [S.planned, S.accepted, S.active, S.on_hold, S.completed])
def test_goals_under_way_can_be_reviewed(status: LifecycleStatus) -> None:
    assert rules.review_refusal(status) is None


@pytest.mark.parametrize("status", [S.proposed, S.rejected, S.cancelled, S.entered_in_error])
def test_goals_not_under_way_are_not_reviewed(status: LifecycleStatus) -> None:
    refusal = rules.review_refusal(status)
    assert refusal is not None and refusal.status == 409


def row(status: LifecycleStatus = S.active, kind: GoalKind = GoalKind.life,
        by: ExpressedBy = ExpressedBy.service_user, work: bool = False, recent: bool = False,
        count: int = 1) -> FigureRow:
    return FigureRow(status, kind, by, work, recent, count)


def test_team_figures_share_life_and_therapeutic_goals() -> None:
    figures = rules.team_figures([row(count=3), row(kind=GoalKind.therapeutic, count=1)])
    assert (figures.goals, figures.life_goals, figures.therapeutic_goals) == (4, 3, 1)
    assert figures.share(figures.life_goals) == 0.75
    assert figures.share(figures.therapeutic_goals) == 0.25


def test_team_figures_count_goals_in_the_persons_own_words() -> None:
    figures = rules.team_figures([row(count=2), row(by=ExpressedBy.staff, count=2)])
    assert figures.expressed_by_service_user == 2
    assert figures.share(figures.expressed_by_service_user) == 0.5


def test_team_figures_count_employment_and_education_goals() -> None:
    figures = rules.team_figures([row(work=True, count=1), row(count=4)])
    assert figures.employment_and_education_goals == 1
    assert figures.share(figures.employment_and_education_goals) == 0.2


def test_team_figures_leave_out_mistakes_declined_and_withdrawn_goals() -> None:
    figures = rules.team_figures([row(), row(status=S.entered_in_error, count=5),
                                  row(status=S.rejected, count=2),
                                  row(status=S.cancelled, count=1)])
    assert figures.goals == 1
    assert figures.by_status["entered-in-error"] == 5
    assert figures.by_status["rejected"] == 2


def test_recently_reviewed_share_is_of_open_goals() -> None:
    figures = rules.team_figures([row(recent=True), row(), row(status=S.completed, recent=True),
                                  row(status=S.proposed, by=ExpressedBy.staff)])
    assert figures.open_goals == 2
    assert figures.reviewed_recently == 1
    assert figures.share(figures.reviewed_recently, figures.open_goals) == 0.5


def test_team_without_goals_has_no_shares_rather_than_zero() -> None:
    figures = rules.team_figures([])
    assert figures.goals == 0
    assert figures.share(figures.life_goals) is None
    assert set(figures.by_status) == {s.value for s in S}


def test_a_life_goal_that_therapeutic_goals_serve_stays_a_life_goal() -> None:
    refusal = rules.kind_change_refusal(GoalKind.life, GoalKind.therapeutic, ["g-t"])
    assert refusal is not None and (refusal.status, refusal.field) == (409, "kind")
    assert rules.kind_change_refusal(GoalKind.life, GoalKind.therapeutic, []) is None
    assert rules.kind_change_refusal(GoalKind.therapeutic, GoalKind.life, ["g-t"]) is None


def test_a_goal_sent_from_an_ehr_is_a_practitioners_proposal() -> None:
    assert rules.proposal_refusal(STAFF) is None
    # The person's own goal is theirs from the first word, never someone's proposal.
    mine = rules.proposal_refusal(PERSON)
    assert mine is not None and (mine.status, mine.kind) == (403, "proposals-come-from-staff")
    partner = rules.proposal_refusal(SYSTEM)
    assert partner is not None and partner.status == 403


def test_an_update_that_states_the_goal_as_it_is_is_fine() -> None:
    current = {"service_user_id": "su-1", "team_id": "team-a", "lifecycle_status": "active",
               "achievement_status": None}
    assert rules.unchangeable_refusal({}, current) is None
    assert rules.unchangeable_refusal({"service_user_id": "su-1", "team_id": "team-a",
                                       "lifecycle_status": "active"}, current) is None


@pytest.mark.parametrize(("field", "value"), [("service_user_id", "su-2"),
                                              ("team_id", "team-b"),
                                              ("lifecycle_status", "completed"),
                                              ("achievement_status", "achieved")])
def test_an_update_does_not_move_a_goal_or_change_its_status(field: str, value: str) -> None:
    current = {"service_user_id": "su-1", "team_id": "team-a", "lifecycle_status": "active",
               "achievement_status": "in-progress"}
    refusal = rules.unchangeable_refusal({**current, field: value}, current)
    assert refusal is not None
    assert (refusal.status, refusal.kind, refusal.field) == (422, "not-changed-by-update", field)
