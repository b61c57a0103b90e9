"""The smaller records mutations return: a goal review, an enrolment, a care contact, a
supervision session."""

from datetime import date
from typing import Any

import strawberry

from recovery.gateway.types.enums import EnrolmentStatus, GoalAchievementStatus
from recovery.gateway.types.node import Node
from recovery.gateway.types.values import to_date


@strawberry.type(description="A progress review of a goal.")
class GoalReview:
    id: strawberry.ID = strawberry.field(description="The review's id.")
    goal_id: strawberry.ID = strawberry.field(description="The goal reviewed.")
    reviewed_on: date = strawberry.field(description="When.")
    achievement_status: GoalAchievementStatus = strawberry.field(
        description="Where the goal stands.")
    rating: int | None = strawberry.field(description="The person's own rating, 0 to 10.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "GoalReview":
        return cls(id=strawberry.ID(data["id"]), goal_id=strawberry.ID(data["goal_id"]),
                   reviewed_on=to_date(data["reviewed_on"]),  # type: ignore[arg-type]
                   achievement_status=data["achievement_status"], rating=data.get("rating"))


@strawberry.type(description="A learner's place on a course (or on its waiting list).")
class Enrolment(Node):
    course_id: strawberry.ID = strawberry.field(description="The course.")
    run_id: strawberry.ID | None = strawberry.field(description="The run, once placed.")
    learner_id: strawberry.ID = strawberry.field(description="The learner.")
    status: EnrolmentStatus = strawberry.field(description="Where the enrolment stands.")
    completed_on: date | None = strawberry.field(description="When they completed it.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "Enrolment":
        run = data.get("run_id")
        return cls(local_id=strawberry.ID(data["id"]), course_id=strawberry.ID(data["course_id"]),
                   run_id=strawberry.ID(run) if run else None,
                   learner_id=strawberry.ID(data["learner_id"]), status=data["status"],
                   completed_on=to_date(data.get("completed_on")))


@strawberry.type(description="Care delivered: minutes with a service user, by whom.")
class CareContact:
    id: strawberry.ID = strawberry.field(description="The contact's id.")
    team_id: strawberry.ID = strawberry.field(description="The team of the staff member.")
    staff_id: strawberry.ID = strawberry.field(description="Who delivered the care.")
    service_user_id: strawberry.ID = strawberry.field(description="With whom.")
    occurred_on: date = strawberry.field(description="When.")
    minutes: int = strawberry.field(description="How long.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "CareContact":
        return cls(id=strawberry.ID(data["id"]), team_id=strawberry.ID(data["team_id"]),
                   staff_id=strawberry.ID(data["staff_id"]),
                   service_user_id=strawberry.ID(data["service_user_id"]),
                   occurred_on=to_date(data["occurred_on"]),  # type: ignore[arg-type]
                   minutes=int(data["minutes"]))


@strawberry.type(description="A supervision session, recovery-focused or not.")
class SupervisionSession:
    id: strawberry.ID = strawberry.field(description="The session's id.")
    staff_id: strawberry.ID = strawberry.field(description="Who was supervised.")
    supervisor_id: strawberry.ID = strawberry.field(description="Who supervised.")
    held_on: date = strawberry.field(description="When.")
    recovery_focused: bool = strawberry.field(description="Whether it was recovery-focused.")
    quality: int = strawberry.field(description="1 poor to 5 excellent, as rated.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "SupervisionSession":
        return cls(id=strawberry.ID(data["id"]), staff_id=strawberry.ID(data["staff_id"]),
                   supervisor_id=strawberry.ID(data["supervisor_id"]),
                   held_on=to_date(data["held_on"]),  # type: ignore[arg-type]
                   recovery_focused=bool(data["recovery_focused"]),
                   quality=int(data["quality"]))
