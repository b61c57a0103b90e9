"""The workforce domain rules: plain functions over plain data, no HTTP and no database.

A rule answers ``None`` when an action is fine or a ``Refusal`` saying why not; the figures
(peer share, skill-mix, billable units, readiness) are computed here from plain rows.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from recovery.common.rules import Refusal as Refusal  # re-exported: callers say rules.Refusal
from recovery.workforce.models import ContactMode, RoleType
from recovery.workforce.options import UnitRounding

# --- staff --------------------------------------------------------------------------------


def in_post(start_date: date, end_date: date | None, on: date) -> bool:
    """In post on a day: started by then and not yet past the last day."""
    return start_date <= on and (end_date is None or end_date >= on)


def move_refusal(*, current_team: str, new_team: str, start_date: date,
                 end_date: date | None, effective_date: date) -> Refusal | None:
    if end_date is not None:
        return Refusal(409, "staff-left", "This member of staff has left; they cannot move team.")
    if new_team == current_team:
        return Refusal(422, "same-team", "The person is already in that team.", "team_id")
    if effective_date < start_date:
        return Refusal(422, "before-start", "A move cannot take effect before the person "
                                            "started.", "effective_date")
    return None


def leave_refusal(*, start_date: date, end_date: date | None, leaving_on: date) -> Refusal | None:
    if end_date is not None:
        return Refusal(409, "staff-left", "This member of staff has already left.")
    if leaving_on < start_date:
        return Refusal(422, "before-start", "The last day in post cannot be before the first.",
                       "end_date")
    return None


def contact_refusal(*, start_date: date, end_date: date | None,
                    occurred_on: date, today: date) -> Refusal | None:
    """Care is logged once it has happened, by someone in post that day."""
    if occurred_on > today:
        return Refusal(422, "contact-in-future", "A care contact is logged once it has "
                                                 "happened.", "occurred_on")
    if not in_post(start_date, end_date, occurred_on):
        return Refusal(422, "not-in-post", "The member of staff was not in post that day.",
                       "occurred_on")
    return None


def supervision_refusal(*, staff_id: str, supervisor_id: str, held_on: date,
                        today: date) -> Refusal | None:
    if staff_id == supervisor_id:
        return Refusal(422, "self-supervision", "Supervision is given by someone else.",
                       "supervisor_id")
    if held_on > today:
        return Refusal(422, "in-future", "A session is recorded once it has happened.",
                       "held_on")
    return None


def is_peer(role_type: str) -> bool:
    return role_type == RoleType.peer_specialist.value


# --- peer share ---------------------------------------------------------------------------


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_ending(last: date, count: int) -> list[str]:
    """``count`` months, oldest first, ending with the month of ``last``."""
    year, month = last.year, last.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class ShareFigures:
    trend: list[tuple[str, int, int]]  # (month, peer minutes, all minutes)
    peer_minutes: int
    total_minutes: int
    share: float | None
    meets_target: bool | None


def peer_share(rows: Iterable[tuple[str, bool, int]], months: list[str],
               target: float) -> ShareFigures:
    """From (month, by peer, minutes) rows, the share per month and over the whole window."""
    peer: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for month, by_peer, minutes in rows:
        total[month] += int(minutes)
        if by_peer:
            peer[month] += int(minutes)
    trend = [(month, peer[month], total[month]) for month in months]
    peer_minutes = sum(p for _, p, _ in trend)
    total_minutes = sum(t for _, _, t in trend)
    overall = share(peer_minutes, total_minutes)
    return ShareFigures(trend, peer_minutes, total_minutes, overall,
                        None if overall is None else overall >= target)


# --- skill-mix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillMixFigures:
    staff_in_post: int
    fte_total: float
    fte_by_profession: dict[str, float]
    fte_by_role_type: dict[str, float]
    peer_fte: float
    professional_fte: float
    ratio: float | None


def skill_mix(rows: Iterable[tuple[str, str, float, int]]) -> SkillMixFigures:
    """From (profession, role type, FTE, headcount) rows of staff in post."""
    by_profession: dict[str, float] = defaultdict(float)
    by_role: dict[str, float] = defaultdict(float)
    people = 0
    for profession, role_type, fte, count in rows:
        by_profession[profession] += float(fte)
        by_role[role_type] += float(fte)
        people += int(count)
    peer = round(by_role.get(RoleType.peer_specialist.value, 0.0), 3)
    professional = round(by_role.get(RoleType.professional.value, 0.0), 3)
    return SkillMixFigures(
        staff_in_post=people, fte_total=round(sum(by_role.values()), 3),
        fte_by_profession={k: round(v, 3) for k, v in sorted(by_profession.items())},
        fte_by_role_type={k: round(v, 3) for k, v in sorted(by_role.items())},
        peer_fte=peer, professional_fte=professional,
        ratio=round(peer / professional, 3) if professional else None)


# --- billable peer support ----------------------------------------------------------------


def units_for(minutes: int, *, unit_minutes: int, rounding: UnitRounding) -> int:
    """Billable units for a day's minutes under the configured rounding rule."""
    whole, rest = divmod(minutes, unit_minutes)
    if rounding is UnitRounding.down:
        return whole
    if rounding is UnitRounding.up:
        return whole + (1 if rest else 0)
    # Midpoint: a part unit counts once it is more than half a unit (8 of 15 minutes).
    return whole + (1 if rest and rest > unit_minutes / 2 else 0)


@dataclass(frozen=True)
class BillableDay:
    service_user_id: str
    service_date: date
    mode: ContactMode
    minutes: int
    units: int
    capped: bool
    contacts: int


def billable_days(rows: Iterable[tuple[str, date, str, int, int]], *, unit_minutes: int,
                  rounding: UnitRounding, daily_cap: int) -> list[BillableDay]:
    """From (service user, day, mode, minutes, contacts) of peer contacts, one line per
    person, day and mode. The payer's daily cap is per person and day across both modes;
    individual support takes its units first, group support what is left."""
    by_day: dict[tuple[str, date], dict[ContactMode, tuple[int, int]]] = defaultdict(dict)
    for person, day, mode, minutes, contacts in rows:
        by_day[(person, day)][ContactMode(mode)] = (int(minutes), int(contacts))
    lines = []
    for (person, day), modes in sorted(by_day.items()):
        left = daily_cap
        for mode in (ContactMode.individual, ContactMode.group):
            if mode not in modes:
                continue
            minutes, contacts = modes[mode]
            units = units_for(minutes, unit_minutes=unit_minutes, rounding=rounding)
            billed = min(units, left)
            left -= billed
            lines.append(BillableDay(person, day, mode, minutes, billed, billed < units,
                                     contacts))
    return lines


# --- training facts from training's events ------------------------------------------------


@dataclass
class TrainingFacts:
    """What is known of one enrolment, each fact with the version it came with."""

    completed_on: date | None = None
    completed_version: int = 0
    rating: float | None = None
    rating_version: int = 0


def apply_completion(facts: TrainingFacts, *, completed_on: date, version: int) -> bool:
    """A course completed; ignored unless newer than the completion already known."""
    if version <= facts.completed_version:
        return False
    facts.completed_on, facts.completed_version = completed_on, version
    return True


def apply_rating(facts: TrainingFacts, *, rating: float, version: int) -> bool:
    if version <= facts.rating_version:
        return False
    facts.rating, facts.rating_version = rating, version
    return True


# --- implementation readiness -------------------------------------------------------------

FACTORS = ("training", "supervision", "leadership", "culture")
READY, DEVELOPING = 0.7, 0.4


def level(score: float) -> str:
    if score >= READY:
        return "ready"
    return "developing" if score >= DEVELOPING else "low"


def scale_1_to_5(mean: float) -> float:
    """A mean on a 1-5 scale as 0 to 1."""
    return max(0.0, min(1.0, (mean - 1) / 4))


@dataclass(frozen=True)
class Factor:
    name: str
    score: float
    explanation: str
    records: Mapping[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return level(self.score)


def training_factor(*, staff_in_post: int, completed_foundation: int,
                    ratings: int, mean_rating: float | None) -> Factor:
    """Coverage of the foundation course, held back by poor feedback (ratings 1-5)."""
    coverage = completed_foundation / staff_in_post if staff_in_post else 0.0
    quality = scale_1_to_5(mean_rating) if ratings and mean_rating is not None else None
    score = coverage if quality is None else min(coverage, quality)
    explanation = (f"{completed_foundation} of {staff_in_post} staff in post have completed "
                   "the foundation course")
    if quality is not None:
        explanation += f"; mean feedback rating {mean_rating:.2f} of 5 from {ratings}"
    return Factor("training", round(score, 4), explanation, {
        "staff_in_post": staff_in_post, "completed_foundation": completed_foundation,
        "coverage": round(coverage, 4), "feedback_ratings": ratings,
        "mean_rating": None if mean_rating is None else round(mean_rating, 3),
        "quality": None if quality is None else round(quality, 4)})


def supervision_factor(*, staff_in_post: int, supervised: int, sessions: int,
                       recovery_focused: int, mean_quality: float | None,
                       window_days: int) -> Factor:
    """Who is supervised, how much of it is recovery-focused, and how good it is: the
    weakest of the three."""
    coverage = supervised / staff_in_post if staff_in_post else 0.0
    focused = recovery_focused / sessions if sessions else 0.0
    quality = scale_1_to_5(mean_quality) if sessions and mean_quality is not None else 0.0
    score = min(coverage, focused, quality)
    return Factor("supervision", round(score, 4),
                  f"{supervised} of {staff_in_post} staff in post supervised in the last "
                  f"{window_days} days; {recovery_focused} of {sessions} sessions "
                  "recovery-focused", {
                      "staff_in_post": staff_in_post, "supervised": supervised,
                      "coverage": round(coverage, 4), "sessions": sessions,
                      "recovery_focused_sessions": recovery_focused,
                      "recovery_focused_share": round(focused, 4),
                      "mean_quality": None if mean_quality is None else round(mean_quality, 3),
                      "window_days": window_days})


def leadership_factor(*, lead_staff_id: str | None, lead_in_post: bool,
                      lead_trained: bool) -> Factor:
    """A named recovery lead in post, trained in recovery principles."""
    if lead_staff_id is None or not lead_in_post:
        score, explanation = 0.0, "No recovery lead in post"
    elif not lead_trained:
        score, explanation = 0.5, "The recovery lead has not completed the foundation course"
    else:
        score, explanation = 1.0, "A recovery lead in post who has completed the foundation " \
                                  "course"
    return Factor("leadership", score, explanation, {
        "recovery_lead_staff_id": lead_staff_id, "lead_in_post": lead_in_post,
        "lead_trained": lead_trained})


def culture_factor(*, responses: int, mean_score: float | None, window_days: int,
                   processes: Mapping[str, int] | None = None) -> Factor:
    """The team climate survey's mean answer (1-5) over the window. How management processes
    involve service users and peers (panels, appraisals) is shown beside it, unscored."""
    score = scale_1_to_5(mean_score) if responses and mean_score is not None else 0.0
    explanation = (f"Mean climate score {mean_score:.2f} of 5 from {responses} responses"
                   if responses and mean_score is not None
                   else f"No climate survey responses in the last {window_days} days")
    return Factor("culture", round(score, 4), explanation, {
        "responses": responses,
        "mean_score": None if mean_score is None else round(mean_score, 3),
        "window_days": window_days, **(processes or {})})


def weakest_factor(factors: Iterable[Factor]) -> Factor:
    """The factor that limits the team: the lowest score (ties in FACTORS order)."""
    ordered = sorted(factors, key=lambda f: (f.score, FACTORS.index(f.name)))
    return ordered[0]
