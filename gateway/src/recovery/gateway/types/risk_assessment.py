"""RiskAssessment: a risk co-assessment, the person's view beside the clinician's."""

from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from recovery.gateway.types.crisis_plan import Signature
from recovery.gateway.types.enums import (
    RiskArea,
    RiskAssessmentStatus,
    RiskAssessmentVersionStatus,
    SigningParty,
)
from recovery.gateway.types.node import Node
from recovery.gateway.types.values import to_date, to_datetime


@strawberry.type(description="A risk co-assessment made with the person: for each area their "
                             "view in their words, the clinician's, strengths, and whether "
                             "they agree; and the safety plan they hold. No risk scores.")
class RiskAssessment(Node):
    service_user_id: strawberry.ID = strawberry.field(description="Whose it is.")
    team_id: strawberry.ID = strawberry.field(description="The team that holds it.")
    status: RiskAssessmentStatus = strawberry.field(description="Where it stands.")
    version: int = strawberry.field(description="The latest version; send it as `ifMatch`.")
    version_status: RiskAssessmentVersionStatus = strawberry.field(
        description="Whether the latest version is agreed.")
    content: JSON = strawberry.field(description="Areas with both views, strengths, and the "
                                                 "safety plan.")
    signatures: list[Signature] = strawberry.field(description="Signatures on the latest "
                                                               "version.")
    missing_parties: list[SigningParty] = strawberry.field(description="Who has yet to sign.")
    active_version: int | None = strawberry.field(description="The agreed version in force.")
    differences: list[RiskArea] = strawberry.field(description="Areas where the views differ.")
    review_date: date | None = strawberry.field(description="When it is to be reviewed.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @strawberry.field(description="The safety plan the person holds, if one was made.")
    def safety_plan(self) -> JSON | None:
        return self.content.get("safety_plan") if isinstance(self.content, dict) else None

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "RiskAssessment":
        return cls(
            local_id=strawberry.ID(data["id"]),
            service_user_id=strawberry.ID(data["service_user_id"]),
            team_id=strawberry.ID(data["team_id"]), status=data["status"],
            version=int(data["version"]), version_status=data["version_status"],
            content=JSON(data.get("content") or {}),
            signatures=[Signature.from_service(s) for s in data.get("signatures") or []],
            missing_parties=list(data.get("missing_parties") or []),
            active_version=data.get("active_version"),
            differences=list(data.get("differences") or []),
            review_date=to_date(data.get("review_date")),
            updated_at=to_datetime(data["updated_at"]),  # type: ignore[arg-type]
        )
