"""What every service's domain rules share: who is acting on a person's record, and a
refusal that says why an action is not allowed, turned into a problem document at the edge."""

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from recovery.common.auth import Principal, Role
from recovery.common.problems import InvalidParam, Problem


class ActorKind(StrEnum):
    person = "person"  # the service user the record belongs to
    clinician = "clinician"  # a clinician, where the domain lets clinicians sign
    staff = "staff"
    system = "system"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    sub: str


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused: HTTP-neutral, turned into a problem document by the service."""

    status: int
    kind: str
    detail: str
    field: str | None = None


def actor_for(principal: Principal, service_user_id: str, *,
              clinicians_apart: bool = False) -> Actor:
    """The person themselves, staff (clinicians apart when the domain needs them), or a
    partner system, as far as this person's record is concerned."""
    if principal.is_service_user and principal.own_person() == service_user_id:
        return Actor(ActorKind.person, principal.sub)
    if clinicians_apart and Role.clinician in principal.roles:
        return Actor(ActorKind.clinician, principal.sub)
    if principal.is_staff:
        return Actor(ActorKind.staff, principal.sub)
    return Actor(ActorKind.system, principal.sub)


#: The status of a clinical record marked made in error (FHIR's word): never deleted, kept
#: readable by id, left out of lists, closed to change.
ENTERED_IN_ERROR = "entered-in-error"


def closed_refusal(status: str, what: str) -> Refusal | None:
    """A record marked entered-in-error is kept as it was and changes no more."""
    if status == ENTERED_IN_ERROR:
        return Refusal(409, "entered-in-error",
                       f"This {what} was marked entered-in-error; it can no longer be changed "
                       "or signed.")
    return None


class ErrorReason(StrEnum):
    """Why a record was marked entered-in-error: a code, never a sentence, since it travels
    in events, which hold nothing clinical."""

    wrong_person = "wrong-person"  # it was recorded for someone else
    duplicate = "duplicate"  # the person has this record already
    recorded_by_mistake = "recorded-by-mistake"  # it should not have been made at all


class EnteredInError(BaseModel):
    """What marking a record entered-in-error says: why (kept with the record)."""

    model_config = ConfigDict(extra="forbid")

    reason: ErrorReason = Field(description="wrong-person, duplicate or recorded-by-mistake")


def entered_in_error_refusal(actor: Actor, status: str, what: str) -> Refusal | None:
    """Staff of the team mark a record made in error; the person and partner systems do not
    (the person withdraws their agreement instead)."""
    if actor.kind not in (ActorKind.clinician, ActorKind.staff):
        return Refusal(403, "only-staff-mark-errors",
                       f"Only staff of the team mark a {what} entered-in-error.")
    return closed_refusal(status, what)


def refuse(refusal: Refusal) -> Problem:
    """The problem document for a refusal, naming the field at fault when there is one."""
    params = ([InvalidParam(name=refusal.field, reason=refusal.detail)]
              if refusal.field else None)
    return Problem(refusal.status, refusal.detail, kind=refusal.kind, invalid_params=params)
