"""Events the workforce service publishes (staff joined, moved, left) and the training
events it consumes for the training factor of readiness (documented in ``docs/asyncapi.yaml``).

Published payloads carry ids, codes and dates only: never names, never a lived-experience
declaration.
"""

from datetime import date
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.events import CloudEvent, EventHandler
from recovery.common.timeutil import utcnow
from recovery.workforce import rules
from recovery.workforce.models import Staff, TrainingRecord

PREFIX = "recovery.workforce.staff."


class StaffEvent(StrEnum):
    joined = PREFIX + "joined"
    moved = PREFIX + "moved"
    left = PREFIX + "left"


def staff_event_data(staff: Staff, *, effective_date: date,
                     previous_team_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "staff_id": staff.id,
        "team_id": staff.team_id,
        "profession": staff.profession,
        "grade": staff.grade,
        "role_type": staff.role_type,
        "effective_date": effective_date.isoformat(),
        "version": staff.version,
    }
    if previous_team_id is not None:
        data["previous_team_id"] = previous_team_id
    return data


# --- consuming training's events ----------------------------------------------------------

TRAINING_STREAM = "TRAINING"
ENROLMENT_CREATED = "recovery.training.enrolment.created"
COURSE_COMPLETED = "recovery.training.course.completed"
FEEDBACK_RECORDED = "recovery.training.feedback.recorded"


def _version(data: dict[str, Any]) -> int:
    version = data.get("version")
    return version if isinstance(version, int) and version > 0 else 1


async def _record_for(session: AsyncSession, data: dict[str, Any]) -> TrainingRecord | None:
    """The stored facts of the event's enrolment, made on first sight; None for learners who
    are not staff (service users and carers learn at the college too)."""
    if data.get("learner_kind", "staff") != "staff":
        return None
    enrolment_id, staff_id = str(data["enrolment_id"]), str(data["staff_id"])
    record = await session.get(TrainingRecord, enrolment_id)
    if record is None:
        record = TrainingRecord(enrolment_id=enrolment_id, staff_id=staff_id,
                                course_id=str(data.get("course_id") or "unknown"),
                                foundation=bool(data.get("foundation", False)))
        session.add(record)
    return record


async def on_training_event(session: AsyncSession, event: CloudEvent) -> None:
    """Keep the facts of staff training that readiness needs; late or repeated events change
    nothing newer (each fact keeps the version it came with)."""
    data = event.data
    record = await _record_for(session, data)
    if record is None:
        return
    facts = rules.TrainingFacts(record.completed_on, record.completed_version, record.rating,
                                record.rating_version)
    changed = False
    if event.type == COURSE_COMPLETED:
        completed = data.get("completed_on")
        completed_on = date.fromisoformat(completed) if completed else event.time.date()
        changed = rules.apply_completion(facts, completed_on=completed_on,
                                         version=_version(data))
    elif event.type == FEEDBACK_RECORDED and data.get("rating") is not None:
        changed = rules.apply_rating(facts, rating=float(data["rating"]),
                                     version=_version(data))
    if changed:
        record.completed_on, record.completed_version = facts.completed_on, \
            facts.completed_version
        record.rating, record.rating_version = facts.rating, facts.rating_version
        record.updated_at = utcnow()
        session.add(record)


HANDLERS = [
    EventHandler(durable="workforce-training-facts", stream=TRAINING_STREAM,
                 subjects=(ENROLMENT_CREATED, COURSE_COMPLETED, FEEDBACK_RECORDED),
                 handle=on_training_event),
]
