"""Team: its staff and figures, composed from workforce and training in parallel."""

from collections.abc import Sequence
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import GatewayError
from recovery.gateway.types.arguments import After, First
from recovery.gateway.types.connection import Connection, service_list, with_nodes
from recovery.gateway.types.enums import ReadinessFactorName, ReadinessLevel
from recovery.gateway.types.node import Node
from recovery.gateway.types.staff_member import FoundationEnrolments, StaffMember
from recovery.gateway.upstream import segment

IncludeLeft = Annotated[bool, strawberry.argument(
    description="Also staff who have left the team.")]


@strawberry.type(description="FTE by profession and role type, and the peer to professional "
                             "ratio.")
class SkillMix:
    staff_in_post: int = strawberry.field(description="Staff in post.")
    fte_total: float = strawberry.field(description="Total FTE.")
    fte_by_profession: JSON = strawberry.field(description="FTE per profession.")
    fte_by_role_type: JSON = strawberry.field(description="FTE per role type.")
    peer_fte: float = strawberry.field(description="Peer specialist FTE.")
    professional_fte: float = strawberry.field(description="Professional FTE.")
    peer_to_professional_ratio: float | None = strawberry.field(
        description="Peer FTE per professional FTE.")


@strawberry.type(description="Share of care minutes delivered by peer specialists, against "
                             "the organisation's target.")
class PeerShare:
    share: float | None = strawberry.field(description="Peer minutes over all minutes.")
    target: float = strawberry.field(description="The organisation's target.")
    meets_target: bool | None = strawberry.field(description="Whether the share meets it.")
    peer_minutes: int = strawberry.field(description="Minutes of care by peers.")
    total_minutes: int = strawberry.field(description="All minutes of care.")
    trend: JSON = strawberry.field(description="Month by month.")


@strawberry.type(description="Foundation course coverage of the team's staff.")
class TrainingCoverage:
    staff: int = strawberry.field(description="Staff in post.")
    completed: int = strawberry.field(description="Of whom completed the foundation course.")
    coverage: float = strawberry.field(description="Completed over staff.")
    by_group: JSON = strawberry.field(description="By team, profession and grade.")


@strawberry.type(description="One of the four interdependent readiness factors.")
class ReadinessFactor:
    name: ReadinessFactorName = strawberry.field(description="Which factor.")
    score: float = strawberry.field(description="0 to 1.")
    level: ReadinessLevel = strawberry.field(description="The level in words.")
    explanation: str = strawberry.field(description="Why, from which records.")


@strawberry.type(description="Implementation readiness, limited by the weakest factor.")
class Readiness:
    score: float = strawberry.field(description="0 to 1: the weakest factor's score.")
    level: ReadinessLevel = strawberry.field(description="The level in words.")
    weakest_factor: ReadinessFactorName = strawberry.field(
        description="The factor that limits the team.")
    factors: list[ReadinessFactor] = strawberry.field(description="All four factors.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "Readiness":
        return cls(score=float(data["score"]), level=data["level"],
                   weakest_factor=data["weakest_factor"],
                   factors=[ReadinessFactor(name=f["name"], score=float(f["score"]),
                                            level=f["level"], explanation=f["explanation"])
                            for f in data.get("factors") or []])


@strawberry.type(description="A team of staff, its skill mix, peer share, training and "
                             "readiness.")
class Team(Node):
    name: str = strawberry.field(description="Its name.")
    recovery_lead_staff_id: strawberry.ID | None = strawberry.field(
        description="The named recovery lead.")

    @strawberry.field(description="Staff of the team, by id.")
    async def staff(self, info: strawberry.Info[GatewayContext, None], first: First = None,
                    after: After = None, include_left: IncludeLeft = False
                    ) -> Connection[StaffMember]:
        foundation: FoundationEnrolments | None = None
        wants_training = asks_for(info.selected_fields, "trainingStatus")
        if wants_training:
            # Both lists at once: the team's enrolments do not wait for its staff list.
            enrolments = info.context.loaders.foundation_enrolments(self.local_id)
        page = await service_list(info.context, "workforce",
                                  f"/v1/teams/{segment(self.local_id)}/staff", _row, first, after,
                                  {"include_left": include_left})
        if wants_training:
            try:
                foundation = await enrolments
            except GatewayError as error:
                # Each member's trainingStatus answers with it; the staff list still arrives.
                foundation = error
        principal = info.context.principal
        return with_nodes(page, lambda row: StaffMember.from_service(row, principal,
                                                                     foundation))

    @strawberry.field(description="FTE by profession and role type.")
    async def skill_mix(self, info: strawberry.Info[GatewayContext, None]) -> SkillMix | None:
        body = (await info.context.call("workforce", "GET",
                                        f"/v1/teams/{segment(self.local_id)}/skill-mix")).body
        return SkillMix(
            staff_in_post=body["staff_in_post"], fte_total=body["fte_total"],
            fte_by_profession=body["fte_by_profession"],
            fte_by_role_type=body["fte_by_role_type"], peer_fte=body["peer_fte"],
            professional_fte=body["professional_fte"],
            peer_to_professional_ratio=body.get("peer_to_professional_ratio"))

    @strawberry.field(description="Peer share of care delivery over recent months.")
    async def peer_share(self, info: strawberry.Info[GatewayContext, None]) -> PeerShare | None:
        body = (await info.context.call("workforce", "GET",
                                        f"/v1/teams/{segment(self.local_id)}/peer-share")).body
        return PeerShare(share=body.get("share"), target=body["target"],
                         meets_target=body.get("meets_target"),
                         peer_minutes=body["peer_minutes"], total_minutes=body["total_minutes"],
                         trend=JSON(body.get("trend") or []))

    @strawberry.field(description="Foundation course coverage (the training service).")
    async def training_coverage(self, info: strawberry.Info[GatewayContext, None]
                                ) -> TrainingCoverage | None:
        body = (await info.context.call("training", "GET",
                                        f"/v1/teams/{segment(self.local_id)}/foundation-coverage")).body
        return TrainingCoverage(staff=body["staff"], completed=body["completed"],
                                coverage=body["coverage"], by_group=JSON(body.get("by_team") or []))

    @strawberry.field(description="Implementation readiness from the four factors.")
    async def readiness(self, info: strawberry.Info[GatewayContext, None]) -> Readiness | None:
        body = (await info.context.call("workforce", "GET",
                                        f"/v1/teams/{segment(self.local_id)}/readiness")).body
        return Readiness.from_service(body)

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "Team":
        lead = data.get("recovery_lead_staff_id")
        return cls(local_id=strawberry.ID(data["id"]), name=data["name"],
                   recovery_lead_staff_id=strawberry.ID(lead) if lead else None)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return row


def asks_for(selections: Sequence[Any], name: str) -> bool:
    """Whether the query selects ``name`` anywhere under these fields."""
    for selection in selections:
        if getattr(selection, "name", None) == name:
            return True
        if asks_for(getattr(selection, "selections", ()), name):
            return True
    return False
