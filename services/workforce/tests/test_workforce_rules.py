"""The workforce domain rules, without HTTP or a database."""

from datetime import date
from typing import Any

import pytest

from recovery.workforce import rules
from recovery.workforce.models import ContactMode
from recovery.workforce.options import UnitRounding

D = date(2026, 3, 10)


def test_someone_is_in_post_from_their_first_to_their_last_day() -> None:
    assert rules.in_post(date(2026, 3, 10), None, D)
    assert not rules.in_post(date(2026, 3, 11), None, D)
    assert rules.in_post(date(2025, 1, 1), D, D)
    assert not rules.in_post(date(2025, 1, 1), date(2026, 3, 9), D)


def test_a_move_is_refused_after_leaving_into_the_same_team_or_before_starting() -> None:
    ok: dict[str, Any] = {"current_team": "a", "new_team": "b",
                          "start_date": date(2025, 1, 1), "end_date": None,
                          "effective_date": D}
    assert rules.move_refusal(**ok) is None
    left = rules.move_refusal(**{**ok, "end_date": D})
    assert left is not None and left.kind == "staff-left"
    same = rules.move_refusal(**{**ok, "new_team": "a"})
    assert same is not None and same.kind == "same-team" and same.field == "team_id"
    early = rules.move_refusal(**{**ok, "effective_date": date(2024, 1, 1)})
    assert early is not None and early.kind == "before-start"


def test_leaving_twice_or_before_starting_is_refused() -> None:
    assert rules.leave_refusal(start_date=date(2025, 1, 1), end_date=None, leaving_on=D) is None
    twice = rules.leave_refusal(start_date=date(2025, 1, 1), end_date=D, leaving_on=D)
    assert twice is not None and twice.status == 409
    early = rules.leave_refusal(start_date=D, end_date=None, leaving_on=date(2026, 1, 1))
    assert early is not None and early.kind == "before-start"


def test_care_is_logged_once_it_has_happened_by_someone_in_post_that_day() -> None:
    start = date(2026, 1, 1)
    assert rules.contact_refusal(start_date=start, end_date=None, occurred_on=D, today=D) is None
    future = rules.contact_refusal(start_date=start, end_date=None,
                                   occurred_on=date(2026, 3, 11), today=D)
    assert future is not None and future.kind == "contact-in-future"
    gone = rules.contact_refusal(start_date=start, end_date=date(2026, 2, 1), occurred_on=D,
                                 today=D)
    assert gone is not None and gone.kind == "not-in-post"


def test_nobody_supervises_themselves() -> None:
    refusal = rules.supervision_refusal(staff_id="s", supervisor_id="s", held_on=D, today=D)
    assert refusal is not None and refusal.field == "supervisor_id"
    assert rules.supervision_refusal(staff_id="s", supervisor_id="t", held_on=D, today=D) is None


def test_months_end_with_the_current_month_and_cross_years() -> None:
    assert rules.months_ending(date(2026, 2, 14), 4) == ["2025-11", "2025-12", "2026-01",
                                                         "2026-02"]
    assert rules.month_of(date(2026, 2, 14)) == "2026-02"


def test_peer_share_is_peer_minutes_over_all_minutes_per_month_and_overall() -> None:
    rows = [("2026-01", True, 30), ("2026-01", False, 70), ("2026-02", True, 100),
            ("2025-06", True, 999)]  # outside the window
    figures = rules.peer_share(rows, ["2026-01", "2026-02", "2026-03"], target=0.5)
    assert figures.trend == [("2026-01", 30, 100), ("2026-02", 100, 100), ("2026-03", 0, 0)]
    assert (figures.peer_minutes, figures.total_minutes) == (130, 200)
    assert figures.share == 0.65 and figures.meets_target is True
    assert rules.peer_share(rows, ["2026-01"], target=0.5).meets_target is False
    nothing = rules.peer_share([], ["2026-03"], target=0.5)
    assert nothing.share is None and nothing.meets_target is None


def test_skill_mix_sums_fte_and_compares_peer_with_professional() -> None:
    mix = rules.skill_mix([("peer_support", "peer_specialist", 1.5, 2),
                           ("nursing", "professional", 2.0, 2),
                           ("psychology", "professional", 1.0, 1),
                           ("management", "manager", 1.0, 1)])
    assert mix.staff_in_post == 6 and mix.fte_total == 5.5
    assert mix.fte_by_role_type == {"manager": 1.0, "peer_specialist": 1.5,
                                    "professional": 3.0}
    assert mix.ratio == 0.5
    assert rules.skill_mix([("peer_support", "peer_specialist", 1.0, 1)]).ratio is None


@pytest.mark.parametrize(("minutes", "midpoint", "down", "up"), [
    (0, 0, 0, 0), (7, 0, 0, 1), (8, 1, 0, 1), (15, 1, 1, 1), (22, 1, 1, 2), (23, 2, 1, 2),
    (30, 2, 2, 2), (38, 3, 2, 3), (60, 4, 4, 4)])
def test_units_follow_the_configured_rounding_rule(minutes: int, midpoint: int, down: int,
                                                   up: int) -> None:
    for rounding, expected in ((UnitRounding.midpoint, midpoint), (UnitRounding.down, down),
                               (UnitRounding.up, up)):
        assert rules.units_for(minutes, unit_minutes=15, rounding=rounding) == expected


def test_the_daily_cap_is_per_person_and_day_with_individual_support_first() -> None:
    rows = [("su-1", D, "group", 120, 1), ("su-1", D, "individual", 150, 2),
            ("su-2", D, "group", 30, 1)]
    days = rules.billable_days(rows, unit_minutes=15, rounding=UnitRounding.midpoint,
                               daily_cap=12)
    lines = {(d.service_user_id, d.mode): d for d in days}
    assert lines[("su-1", ContactMode.individual)].units == 10
    assert not lines[("su-1", ContactMode.individual)].capped
    assert lines[("su-1", ContactMode.group)].units == 2
    assert lines[("su-1", ContactMode.group)].capped
    assert lines[("su-2", ContactMode.group)].units == 2
    assert [d.service_user_id for d in days] == ["su-1", "su-1", "su-2"]


def test_a_training_fact_changes_only_for_a_newer_version() -> None:
    facts = rules.TrainingFacts()
    assert rules.apply_completion(facts, completed_on=D, version=3)
    assert not rules.apply_completion(facts, completed_on=date(2020, 1, 1), version=3)
    assert not rules.apply_completion(facts, completed_on=date(2020, 1, 1), version=2)
    assert facts.completed_on == D
    assert rules.apply_rating(facts, rating=4, version=5)
    assert not rules.apply_rating(facts, rating=1, version=4)
    assert facts.rating == 4


def test_training_factor_is_coverage_held_back_by_poor_feedback() -> None:
    unrated = rules.training_factor(staff_in_post=4, completed_foundation=3, ratings=0,
                                    mean_rating=None)
    assert unrated.score == 0.75 and unrated.level == "ready"
    poorly_rated = rules.training_factor(staff_in_post=4, completed_foundation=4, ratings=3,
                                         mean_rating=2.0)
    assert poorly_rated.score == 0.25 and poorly_rated.level == "low"
    assert rules.training_factor(staff_in_post=0, completed_foundation=0, ratings=0,
                                 mean_rating=None).score == 0


def test_supervision_factor_is_the_weakest_of_coverage_focus_and_quality() -> None:
    factor = rules.supervision_factor(staff_in_post=10, supervised=9, sessions=10,
                                      recovery_focused=5, mean_quality=5.0, window_days=90)
    assert factor.score == 0.5
    assert factor.records["recovery_focused_share"] == 0.5
    none = rules.supervision_factor(staff_in_post=10, supervised=0, sessions=0,
                                    recovery_focused=0, mean_quality=None, window_days=90)
    assert none.score == 0


def test_leadership_needs_a_lead_in_post_who_is_trained() -> None:
    assert rules.leadership_factor(lead_staff_id=None, lead_in_post=False,
                                   lead_trained=False).score == 0
    assert rules.leadership_factor(lead_staff_id="s", lead_in_post=False,
                                   lead_trained=True).score == 0
    assert rules.leadership_factor(lead_staff_id="s", lead_in_post=True,
                                   lead_trained=False).score == 0.5
    assert rules.leadership_factor(lead_staff_id="s", lead_in_post=True,
                                   lead_trained=True).score == 1


def test_culture_is_the_climate_survey_mean_on_a_0_to_1_scale() -> None:
    assert rules.culture_factor(responses=3, mean_score=4.0, window_days=365).score == 0.75
    assert rules.culture_factor(responses=0, mean_score=None, window_days=365).score == 0


def test_readiness_is_named_after_its_weakest_factor_ties_in_order() -> None:
    factors = [rules.Factor("training", 0.9, ""), rules.Factor("supervision", 0.3, ""),
               rules.Factor("leadership", 0.3, ""), rules.Factor("culture", 0.8, "")]
    assert rules.weakest_factor(factors).name == "supervision"
    assert rules.level(0.69) == "developing" and rules.level(0.39) == "low"
