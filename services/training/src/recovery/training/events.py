"""Events the training service publishes and the workforce events it consumes (both in
``docs/asyncapi.yaml``). Payloads carry ids, dates and ratings, never feedback words."""

from enum import StrEnum
from typing import Any

from recovery.training.models import Enrolment, LearnerKind


class TrainingEvent(StrEnum):
    enrolment_created = "recovery.training.enrolment.created"
    enrolment_withdrawn = "recovery.training.enrolment.withdrawn"
    course_completed = "recovery.training.course.completed"
    feedback_recorded = "recovery.training.feedback.recorded"


class WorkforceEvent(StrEnum):
    staff_joined = "recovery.workforce.staff.joined"
    staff_moved = "recovery.workforce.staff.moved"
    staff_left = "recovery.workforce.staff.left"


def enrolment_event_data(enrolment: Enrolment, *, foundation: bool) -> dict[str, Any]:
    """What workforce needs for a team's training factor: who, which team, which course."""
    return {
        "enrolment_id": enrolment.id,
        "staff_id": (enrolment.learner_id
                     if enrolment.learner_kind == LearnerKind.staff else None),
        "learner_id": enrolment.learner_id,
        "learner_kind": enrolment.learner_kind,
        "team_id": enrolment.team_id,
        "course_id": enrolment.course_id,
        "run_id": enrolment.run_id,
        "foundation": foundation,
        "status": enrolment.status,
        "completed_on": (enrolment.completed_on.isoformat()
                         if enrolment.completed_on else None),
        "rating": enrolment.rating,
        "version": enrolment.version,
        "occurred_at": enrolment.updated_at.isoformat(),
    }
