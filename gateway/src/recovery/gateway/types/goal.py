"""Goal: a personal life goal in the person's own words (the goals service)."""

from datetime import date, datetime
from typing import Any

import strawberry

from recovery.gateway.types.enums import (
    ChimeTag,
    ExpressedBy,
    GoalAchievementStatus,
    GoalKind,
    GoalLifecycleStatus,
    LifeArea,
)
from recovery.gateway.types.node import Node
from recovery.gateway.types.values import to_date, to_datetime


@strawberry.type(description="A goal of a service user, in their own words. Staff may "
                             "propose one; it becomes active only when the person accepts it.")
class Goal(Node):
    service_user_id: strawberry.ID = strawberry.field(description="Whose goal it is.")
    team_id: strawberry.ID = strawberry.field(description="The team supporting it.")
    kind: GoalKind = strawberry.field(description="A life goal, or a therapeutic one (a "
                                                  "means to an end).")
    description: str = strawberry.field(description="The goal, in the person's words.")
    life_area: LifeArea | None = strawberry.field(description="The area of life it belongs to.")
    chime_tags: list[ChimeTag] = strawberry.field(description="CHIME framework tags.")
    why_it_matters: str | None = strawberry.field(description="Why it matters to the person.")
    strengths: list[str] = strawberry.field(description="Strengths to draw on.")
    target_date: date | None = strawberry.field(description="When the person aims to get "
                                                            "there.")
    serves_goal_ids: list[strawberry.ID] = strawberry.field(
        description="The life goals a therapeutic goal serves.")
    expressed_by: ExpressedBy = strawberry.field(
        description="Whose words: the person's or staff's.")
    proposed_by: str | None = strawberry.field(description="The member of staff who "
                                                           "proposed it, if any.")
    lifecycle_status: GoalLifecycleStatus = strawberry.field(
        description="FHIR Goal lifecycle status.")
    achievement_status: GoalAchievementStatus | None = strawberry.field(
        description="FHIR Goal achievement.")
    created_at: datetime = strawberry.field(description="When it was written.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    accepted_at: datetime | None = strawberry.field(description="When the person accepted it.")
    last_reviewed_on: date | None = strawberry.field(description="The last progress review.")
    version: int = strawberry.field(description="The version; send it as `ifMatch` to change "
                                                "the goal.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "Goal":
        return cls(
            local_id=strawberry.ID(data["id"]),
            service_user_id=strawberry.ID(data["service_user_id"]),
            team_id=strawberry.ID(data["team_id"]), kind=data["kind"],
            description=data["description"], life_area=data.get("life_area"),
            chime_tags=list(data.get("chime_tags") or []),
            why_it_matters=data.get("why_it_matters"),
            strengths=list(data.get("strengths") or []),
            target_date=to_date(data.get("target_date")),
            serves_goal_ids=[strawberry.ID(i) for i in data.get("serves_goal_ids") or []],
            expressed_by=data["expressed_by"], proposed_by=data.get("proposed_by"),
            lifecycle_status=data["lifecycle_status"],
            achievement_status=data.get("achievement_status"),
            created_at=to_datetime(data["created_at"]),  # type: ignore[arg-type]
            updated_at=to_datetime(data["updated_at"]),  # type: ignore[arg-type]
            accepted_at=to_datetime(data.get("accepted_at")),
            last_reviewed_on=to_date(data.get("last_reviewed_on")),
            version=int(data["version"]),
        )
