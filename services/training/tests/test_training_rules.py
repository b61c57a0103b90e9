"""The Recovery Education Centre's rules, without HTTP or a database."""

from datetime import date

from recovery.common.auth import Principal
from recovery.training import rules
from recovery.training.rules import Cohort, Facilitator


def person(role: str, sub: str = "x", teams: tuple[str, ...] = (),
           patient: str | None = None) -> Principal:
    return Principal(sub=sub, roles=frozenset({role}), teams=frozenset(teams), patient=patient)


def test_a_run_needs_an_educator_with_lived_experience() -> None:
    refusal = rules.co_delivery_refusal([Facilitator("a", False), Facilitator("b", False)])
    assert refusal is not None and refusal.status == 422
    assert "lived experience" in refusal.detail and refusal.field == "facilitator_ids"


def test_a_run_needs_one_other_facilitator_besides() -> None:
    assert rules.co_delivery_refusal([Facilitator("a", True)]) is not None
    # The same educator named twice is still one person.
    assert rules.co_delivery_refusal([Facilitator("a", True), Facilitator("a", True)])


def test_two_educators_with_lived_experience_co_deliver() -> None:
    assert rules.is_co_delivered([Facilitator("a", True), Facilitator("b", True)])
    assert rules.is_co_delivered([Facilitator("a", True), Facilitator("b", False)])


def test_newcomers_get_a_place_while_there_is_one_then_wait() -> None:
    assert rules.place_or_wait(0, 1) == "enrolled"
    assert rules.place_or_wait(1, 1) == "waiting"


def test_freed_places_go_to_as_many_waiting_as_fit() -> None:
    assert rules.places_to_promote(places_taken=8, capacity=10, waiting=5) == 2
    assert rules.places_to_promote(places_taken=8, capacity=10, waiting=1) == 1
    assert rules.places_to_promote(places_taken=10, capacity=10, waiting=3) == 0


def test_the_learner_the_college_and_the_teams_managers_see_an_enrolment() -> None:
    assert rules.may_see_enrolment(person("clinician", "s1"), learner_id="s1", team_id="t")
    assert rules.may_see_enrolment(person("educator"), learner_id="s1", team_id="t")
    assert rules.may_see_enrolment(person("manager", teams=("t",)), learner_id="s1",
                                   team_id="t")
    assert not rules.may_see_enrolment(person("manager", teams=("u",)), learner_id="s1",
                                       team_id="t")
    assert not rules.may_see_enrolment(person("clinician", "s2", ("t",)), learner_id="s1",
                                       team_id="t")
    assert rules.may_see_enrolment(person("service_user", "p1", patient="p1"),
                                   learner_id="p1", team_id=None)


def test_people_enrol_themselves_and_the_college_enrols_anyone() -> None:
    assert rules.may_enrol(person("peer_specialist", "s1"), learner_id="s1")
    assert not rules.may_enrol(person("peer_specialist", "s1"), learner_id="s2")
    assert rules.may_enrol(person("admin"), learner_id="carer-7")


def test_only_a_newer_staff_record_changes_the_roster() -> None:
    assert rules.is_newer(1, None)
    assert rules.is_newer(3, 2)
    assert not rules.is_newer(2, 2)  # a duplicate
    assert not rules.is_newer(1, 2)  # late


def test_staff_in_post_are_enrolled_in_the_foundation_course_once() -> None:
    assert rules.needs_foundation_enrolment(active=True, already_enrolled=False)
    assert not rules.needs_foundation_enrolment(active=True, already_enrolled=True)
    assert not rules.needs_foundation_enrolment(active=False, already_enrolled=False)


def test_coverage_adds_up_cohorts_per_group() -> None:
    cohorts = [Cohort("t1", "nursing", "b5", 1, 1), Cohort("t1", "nursing", "b6", 1, 0),
               Cohort("t2", None, "b6", 1, 1)]
    assert rules.coverage(cohorts, "team_id") == [("t1", 2, 1), ("t2", 1, 1)]
    assert rules.coverage(cohorts, "profession") == [("nursing", 2, 1), ("unknown", 1, 1)]
    assert rules.coverage(cohorts, "grade") == [("b5", 1, 1), ("b6", 2, 1)]
    assert rules.share(1, 3) == 0.3333 and rules.share(0, 0) == 0.0


def test_completion_needs_a_place_on_a_run_attendance_and_a_started_run() -> None:
    day = date(2030, 3, 2)
    ok = {"status": "enrolled", "run_id": "r", "attended": True, "completed_on": day,
          "run_starts_on": date(2030, 3, 1)}
    assert rules.completion_refusal(**ok) is None  # type: ignore[arg-type]
    for change, kind in (({"status": "waiting"}, "not-enrolled"), ({"run_id": None}, "no-run"),
                         ({"attended": False}, "not-attended"),
                         ({"completed_on": date(2030, 2, 1)}, "before-run")):
        refusal = rules.completion_refusal(**{**ok, **change})  # type: ignore[arg-type]
        assert refusal is not None and refusal.kind == kind


def test_who_delivered_a_run_is_recorded_once_when_it_has_started() -> None:
    day = date(2030, 3, 1)
    assert rules.delivery_refusal(starts_on=day, today=day, delivered_by=None) is None
    early = rules.delivery_refusal(starts_on=day, today=date(2030, 2, 28), delivered_by=None)
    assert early is not None and (early.status, early.kind) == (422, "before-run")
    again = rules.delivery_refusal(starts_on=day, today=day, delivered_by=["a", "b"])
    assert again is not None and (again.status, again.kind) == (409, "delivery-recorded")
