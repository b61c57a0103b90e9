"""Events the goals service publishes (documented in ``docs/asyncapi.yaml``).

Payloads carry ids, statuses, codes and dates only: never the goal's words, the person's
reasons, strengths or review comments.
"""

from enum import StrEnum
from typing import Any

from recovery.goals.models import Goal

PREFIX = "recovery.goals.goal."


class GoalEvent(StrEnum):
    """Event type (also the NATS subject) for each change to a goal."""

    created = PREFIX + "created"  # the person wrote their own goal
    proposed = PREFIX + "proposed"  # staff proposed a goal to the person
    accepted = PREFIX + "accepted"
    declined = PREFIX + "declined"
    updated = PREFIX + "updated"  # content or steps changed
    status_changed = PREFIX + "status-changed"
    reviewed = PREFIX + "reviewed"
    completed = PREFIX + "completed"

    @classmethod
    def for_verb(cls, verb: str) -> "GoalEvent":
        return cls(PREFIX + verb)


def goal_event_data(goal: Goal, *, changed_by: str, previous_status: str | None = None,
                    changed_fields: list[str] | None = None,
                    review_id: str | None = None) -> dict[str, Any]:
    """The event's ``data``: enough for routing, subscriptions and team figures."""
    data: dict[str, Any] = {
        "goal_id": goal.id,
        "service_user_id": goal.service_user_id,
        "team_id": goal.team_id,
        "kind": goal.kind,
        "life_area": goal.life_area,
        "serves_goal_ids": list(goal.serves_goal_ids),
        "expressed_by": goal.expressed_by,
        "lifecycle_status": goal.lifecycle_status,
        "achievement_status": goal.achievement_status,
        "target_date": goal.target_date.isoformat() if goal.target_date else None,
        "last_reviewed_on": (goal.last_reviewed_on.isoformat()
                             if goal.last_reviewed_on else None),
        "version": goal.version,
        "changed_by": changed_by,
        "occurred_at": goal.updated_at.isoformat(),
    }
    if previous_status is not None:
        data["previous_status"] = previous_status
    if changed_fields is not None:
        data["changed_fields"] = sorted(changed_fields)
    if review_id is not None:
        data["review_id"] = review_id
    return data
