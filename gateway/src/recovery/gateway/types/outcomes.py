"""The typed refusals a mutation answers with, instead of a generic failure."""

import strawberry
from strawberry.scalars import JSON

from recovery.gateway.errors import ErrorCode, GatewayError


@strawberry.type(description="The record changed since the version you sent: read it again, "
                             "then retry with its current version.")
class StaleVersion:
    message: str = strawberry.field(description="What happened, in words.")
    version_required: bool = strawberry.field(
        description="True when no version was sent at all (send `ifMatch`).")


@strawberry.type(description="You may not do this (your role, scopes or teams do not allow "
                             "it, or you are not signed in).")
class NotAllowed:
    message: str = strawberry.field(description="Why not, in words.")


@strawberry.type(description="The request is not acceptable as it stands; nothing changed.")
class Invalid:
    message: str = strawberry.field(description="What is wrong, in words.")
    invalid_params: JSON | None = strawberry.field(
        description="Each field that is wrong and why, when the service said.")


@strawberry.type(description="No such record, or none you may see.")
class NotFound:
    message: str = strawberry.field(description="What was not found.")


Refusal = StaleVersion | NotAllowed | Invalid | NotFound


def refusal_of(error: GatewayError) -> Refusal:
    """The typed refusal for a service's answer; outages stay errors (nothing was decided)."""
    code = error.code
    message = str(error.message)
    if code in {ErrorCode.stale_version, ErrorCode.version_required}:
        return StaleVersion(message=message,
                            version_required=code is ErrorCode.version_required)
    if code in {ErrorCode.forbidden, ErrorCode.unauthenticated}:
        return NotAllowed(message=message)
    if code in {ErrorCode.invalid, ErrorCode.conflict}:
        return Invalid(message=message,
                       invalid_params=(error.extensions or {}).get("invalidParams"))
    if code is ErrorCode.not_found:
        return NotFound(message=message)
    raise error
