"""The Recovery Education Centre's rules as plain functions over plain data: co-delivery,
places and waiting lists, who may do what, the roster kept from workforce events, figures."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from recovery.common.auth import Principal, Role
from recovery.common.rules import Refusal as Refusal  # re-exported: callers say rules.Refusal

#: Roles that run the college: they keep the prospectus, runs, educators and records.
COLLEGE_ROLES = frozenset({Role.educator, Role.admin})


@dataclass(frozen=True)
class Facilitator:
    educator_id: str
    lived_experience: bool


def co_delivery_refusal(facilitators: Sequence[Facilitator]) -> Refusal | None:
    """A run is co-delivered: one educator with lived experience and at least one other."""
    distinct = {f.educator_id: f for f in facilitators}
    if not any(f.lived_experience for f in distinct.values()):
        return Refusal(422, "not-co-delivered",
                       "Every run needs at least one educator with lived experience among its "
                       "facilitators (co-delivery).", "facilitator_ids")
    if len(distinct) < 2:
        return Refusal(422, "not-co-delivered",
                       "Every run needs at least one other facilitator besides the educator "
                       "with lived experience (co-delivery).", "facilitator_ids")
    return None


def is_co_delivered(facilitators: Sequence[Facilitator]) -> bool:
    return co_delivery_refusal(facilitators) is None


def delivery_refusal(*, starts_on: date, today: date,
                     delivered_by: Sequence[str] | None) -> Refusal | None:
    """Who facilitated is recorded once, when the run has started. It is recorded as it
    happened, co-delivered or not: the quality figures show whether co-delivery was kept."""
    if delivered_by is not None:
        return Refusal(409, "delivery-recorded", "Who delivered this run is recorded already.")
    if today < starts_on:
        return Refusal(422, "before-run", "Who delivered a run is recorded once it has "
                       "started.", "delivered_by")
    return None


def place_or_wait(places_taken: int, capacity: int) -> str:
    """A newcomer to a run gets a place while there is one, else joins the waiting list."""
    return "enrolled" if places_taken < capacity else "waiting"


def places_to_promote(places_taken: int, capacity: int, waiting: int) -> int:
    """How many of the waiting list (first come, first served) move up into free places."""
    return max(0, min(capacity - places_taken, waiting))


# --- who may do what ----------------------------------------------------------------------


def runs_the_college(principal: Principal) -> bool:
    return bool(principal.roles & COLLEGE_ROLES)


def learner_identity(principal: Principal) -> str | None:
    """The learner id a caller enrols as: their staff id, or their EHR patient id."""
    if principal.is_service_user:
        return principal.own_person()
    if principal.is_staff:
        return principal.sub
    return None


def may_see_enrolment(principal: Principal, *, learner_id: str, team_id: str | None) -> bool:
    """The learner, the college, and managers of the learner's team; no one else."""
    if learner_identity(principal) == learner_id or runs_the_college(principal):
        return True
    if principal.is_system:
        return True
    return (Role.manager in principal.roles and team_id is not None
            and team_id in principal.teams)


def may_enrol(principal: Principal, *, learner_id: str) -> bool:
    """People enrol themselves; the college enrols anyone (carers among them)."""
    return runs_the_college(principal) or learner_identity(principal) == learner_id


def may_see_educator(principal: Principal, *, staff_id: str | None) -> bool:
    """An educator's own training, supervision and support: the college and the educator."""
    return runs_the_college(principal) or (staff_id is not None and principal.sub == staff_id)


# --- the roster, from workforce events ----------------------------------------------------


class StaffChange:
    joined = "joined"
    moved = "moved"
    left = "left"


def is_newer(event_version: int, stored_version: int | None) -> bool:
    """Workforce's version of the staff record decides: an older or equal one changes
    nothing (duplicates, late and out-of-order deliveries)."""
    return stored_version is None or event_version > stored_version


def needs_foundation_enrolment(*, active: bool, already_enrolled: bool) -> bool:
    """Every member of staff in post is enrolled in the foundation course, once."""
    return active and not already_enrolled


# --- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Staff in post who share a team, profession and grade, and how many of them have
    completed the foundation course."""

    team_id: str | None
    profession: str | None
    grade: str | None
    staff: int
    completed: int


def coverage(cohorts: Iterable[Cohort], key: str) -> list[tuple[str, int, int]]:
    """(group, staff, completed foundation) per value of ``key``, sorted by group."""
    totals: dict[str, list[int]] = {}
    for cohort in cohorts:
        group = getattr(cohort, key) or "unknown"
        counts = totals.setdefault(group, [0, 0])
        counts[0] += cohort.staff
        counts[1] += cohort.completed
    return [(group, c[0], c[1]) for group, c in sorted(totals.items())]


def share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def completion_refusal(*, status: str, run_id: str | None, attended: bool | None,
                       completed_on: date, run_starts_on: date | None) -> Refusal | None:
    """A course is completed by someone with a place on a run who attended it."""
    if status != "enrolled":
        return Refusal(409, "not-enrolled", f"This enrolment is {status}; only a learner "
                       "with a place can complete the course.")
    if run_id is None:
        return Refusal(409, "no-run", "Place the learner on a run before completing it.")
    if attended is not True:
        return Refusal(409, "not-attended", "Record attendance before completion.")
    if run_starts_on is not None and completed_on < run_starts_on:
        return Refusal(422, "before-run", "A course cannot be completed before its run "
                       "starts.", "completed_on")
    return None
