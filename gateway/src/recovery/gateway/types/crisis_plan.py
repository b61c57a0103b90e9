"""CrisisPlan: a joint crisis plan, agreed when the person and clinicians sign one version."""

from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from recovery.gateway.types.enums import CrisisPlanStatus, SigningParty
from recovery.gateway.types.node import Node
from recovery.gateway.types.values import to_date, to_datetime


@strawberry.type(description="A signature of one party on one version of a plan.")
class Signature:
    party: SigningParty = strawberry.field(description="The part they signed in.")
    signatory: str = strawberry.field(description="The id of the person who signed.")
    version: int = strawberry.field(description="The version signed.")
    signed_at: datetime | None = strawberry.field(description="When they signed.")
    withdrawn_at: datetime | None = strawberry.field(description="When they withdrew it.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "Signature":
        return cls(party=data["party"], signatory=str(data.get("signatory")),
                   version=int(data.get("version") or 0),
                   signed_at=to_datetime(data.get("signed_at")),
                   withdrawn_at=to_datetime(data.get("withdrawn_at")))


@strawberry.type(description="A joint crisis plan: the person's treatment preferences for a "
                             "future crisis, made with their care coordinator and "
                             "psychiatrist. The agreed version is the one acted on.")
class CrisisPlan(Node):
    service_user_id: strawberry.ID = strawberry.field(description="Whose plan it is.")
    team_id: strawberry.ID = strawberry.field(description="The team that holds it.")
    status: CrisisPlanStatus = strawberry.field(
        description="Where the version shown stands: DRAFT (not yet signed by every party), "
                    "AGREED, WITHDRAWN or ENTERED_IN_ERROR.")
    version: int = strawberry.field(description="This version; send it as `ifMatch` to "
                                                "change or sign the plan.")
    content_hash: str = strawberry.field(description="Fingerprint of exactly what was signed.")
    content: JSON = strawberry.field(description="The plan's sections (warning signs, what "
                                                 "helps, preferences, contacts, …).")
    signatures: list[Signature] = strawberry.field(description="Signatures on this version.")
    agreed_at: datetime | None = strawberry.field(description="When this version was agreed.")
    review_on: date | None = strawberry.field(description="When it is to be reviewed.")
    newer_draft: bool = strawberry.field(description="A newer version waits for agreement.")

    @classmethod
    def from_active(cls, data: dict[str, Any]) -> "CrisisPlan":
        return cls(
            local_id=strawberry.ID(data["plan_id"]),
            service_user_id=strawberry.ID(data["service_user_id"]),
            team_id=strawberry.ID(data["team_id"]), status=CrisisPlanStatus.AGREED,
            version=int(data["version"]),
            content_hash=data["content_hash"], content=JSON(data.get("content") or {}),
            signatures=[Signature.from_service(s) for s in data.get("signatures") or []],
            agreed_at=to_datetime(data.get("agreed_at")),
            review_on=to_date(data.get("review_on")),
            newer_draft=bool(data.get("newer_draft")),
        )

    @classmethod
    def from_plan(cls, data: dict[str, Any]) -> "CrisisPlan":
        return cls(
            local_id=strawberry.ID(data["id"]),
            service_user_id=strawberry.ID(data["service_user_id"]),
            team_id=strawberry.ID(data["team_id"]), status=data["status"],
            version=int(data["version"]),
            content_hash=data["content_hash"], content=JSON(data.get("content") or {}),
            signatures=[Signature.from_service(s) for s in data.get("signatures") or []],
            agreed_at=to_datetime(data.get("agreed_at")),
            review_on=to_date(data.get("review_on")),
            newer_draft=data.get("active_version") not in (None, data["version"]),
        )
