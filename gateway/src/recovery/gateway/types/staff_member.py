"""StaffMember: a member of a team (workforce), with their foundation training (training)."""

from datetime import date
from typing import Any

import strawberry

from recovery.common.auth import Principal
from recovery.gateway.access import check_training_record
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.types.enums import FoundationTrainingStatus, Profession, RoleType
from recovery.gateway.types.node import Node
from recovery.gateway.types.values import to_date

#: Foundation enrolments by learner, or the error that kept them from being read.
FoundationEnrolments = dict[str, dict[str, Any]] | GatewayError


@strawberry.type(description="Where a member of staff stands with the foundation course on "
                             "recovery principles.")
class TrainingStatus:
    status: FoundationTrainingStatus = strawberry.field(
        description="Their best enrolment's status, or NOT_ENROLLED.")
    completed_on: date | None = strawberry.field(description="When they completed it.")
    run_id: strawberry.ID | None = strawberry.field(description="The run they are on.")

    @classmethod
    def from_enrolment(cls, data: dict[str, Any] | None) -> "TrainingStatus":
        if data is None:
            return cls(status=FoundationTrainingStatus.NOT_ENROLLED, completed_on=None,
                       run_id=None)
        run = data.get("run_id")
        return cls(status=data["status"], completed_on=to_date(data.get("completed_on")),
                   run_id=strawberry.ID(run) if run else None)


@strawberry.type(description="A member of staff as colleagues see them (never a lived "
                             "experience declaration).")
class StaffMember(Node):
    team_id: strawberry.ID = strawberry.field(description="Their team.")
    display_name: str = strawberry.field(description="Their name as shown.")
    profession: Profession = strawberry.field(description="Their profession.")
    grade: str = strawberry.field(description="Grade or level.")
    role_type: RoleType = strawberry.field(description="The kind of role they hold.")
    fte: float = strawberry.field(description="Full-time equivalent.")
    start_date: date = strawberry.field(description="First day in post.")
    end_date: date | None = strawberry.field(description="Last day, if they have left.")
    in_post: bool = strawberry.field(description="Whether they are in post today.")
    #: This member's foundation course record as the caller may see it, or why not: decided
    #: by the staff list for everyone at once, so each member's status is read without an
    #: await or a resolver context of its own.
    training: strawberry.Private[TrainingStatus | GatewayError | None] = None

    @strawberry.field(description="The foundation course (the person, the college and the "
                                  "team's managers); one call for the whole team.")
    def training_status(self) -> TrainingStatus | None:
        if self.training is None:
            raise GatewayError(ErrorCode.upstream_error,
                               "Training status was not fetched with this list.")
        if isinstance(self.training, GatewayError):
            raise self.training
        return self.training

    @classmethod
    def from_service(cls, data: dict[str, Any], principal: Principal | None = None,
                     foundation: FoundationEnrolments | None = None) -> "StaffMember":
        """The member; with ``foundation`` (and the caller), their training status too."""
        staff_id, team_id = str(data["id"]), str(data["team_id"])
        training: TrainingStatus | GatewayError | None = None
        if foundation is not None and principal is not None:
            try:
                check_training_record(principal, staff_id, team_id)
                if isinstance(foundation, GatewayError):
                    raise foundation
                training = TrainingStatus.from_enrolment(foundation.get(staff_id))
            except GatewayError as refused:
                training = refused
        return cls(
            local_id=strawberry.ID(staff_id), team_id=strawberry.ID(team_id),
            display_name=data["display_name"], profession=data["profession"],
            grade=data["grade"], role_type=data["role_type"], fte=float(data["fte"]),
            start_date=to_date(data["start_date"]),  # type: ignore[arg-type]
            end_date=to_date(data.get("end_date")), in_post=bool(data.get("in_post")),
            training=training,
        )
