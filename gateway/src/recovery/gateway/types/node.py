"""Relay Global Object Identification: the `Node` interface and its opaque global ids.

A record's `id` is global (base64url of ``"TypeName:localId"``), so a client can fetch any
record again by its `id` alone; `localId` keeps the id the record has in its own service."""

import base64
import binascii
from typing import NamedTuple

import strawberry

from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.upstream import ID_PATTERN, segment

#: Every type that implements `Node`: a global id naming another type is not one of ours.
NODE_TYPES = frozenset({"Goal", "CrisisPlan", "RiskAssessment", "Course", "CourseRun",
                        "Enrolment", "Team", "StaffMember", "ServiceUser"})
#: The longest global id (the longest local id with the longest type name, encoded).
MAX_GLOBAL_ID = 4 * (64 + len("RiskAssessment:") + 2) // 3


class GlobalId(NamedTuple):
    """A record's type (its GraphQL name) and its id in its own service."""

    type_name: str
    local_id: str

    def encode(self) -> str:
        raw = f"{self.type_name}:{self.local_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def read(cls, text: str) -> "GlobalId | None":
        """The global id ``text`` is, or None when it is not one this API gives."""
        if len(text) > MAX_GLOBAL_ID:
            return None
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_",
                                   validate=True).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        type_name, _, local = raw.partition(":")
        if type_name not in NODE_TYPES or not ID_PATTERN.fullmatch(local) \
                or local in {".", ".."}:
            return None
        found = cls(type_name, local)
        # One spelling per id: a re-padded or re-cased variant is not one we gave.
        return found if found.encode() == text else None

    @classmethod
    def decode(cls, text: str) -> "GlobalId":
        """The global id ``text`` is, or an INVALID error."""
        found = cls.read(text)
        if found is None:
            raise GatewayError(ErrorCode.invalid, "That is not an id this API gave.")
        return found


def local_id(value: object, type_name: str) -> str:
    """The local id an argument naming a ``type_name`` record stands for, safe to stand in a
    service path: the argument is its global id or (for clients that came from REST or
    FHIR) its local id. Text that reads as a global id is one, and must be of that type;
    anything else is taken as the local id as it is."""
    text = str(value)
    found = GlobalId.read(text)
    if found is None:
        return segment(text)
    if found.type_name != type_name:
        raise GatewayError(ErrorCode.invalid, f"That id is not a {type_name}'s id.")
    return found.local_id


@strawberry.interface(description="A record a client can fetch again by its `id` alone, "
                                  "with `node(id:)` or `nodes(ids:)` (Relay Global Object "
                                  "Identification).")
class Node:
    #: Made from the local id when the record is built: a plain value, so answering it
    #: costs a lookup, not a resolver call, on every record of a long list.
    id: strawberry.ID = strawberry.field(
        default=strawberry.ID(""),
        description="Opaque global id: pass it to `node(id:)`, or as the `id` of a mutation "
                    "on this record. Keep it as it is; never build or parse it.")
    local_id: strawberry.ID = strawberry.field(
        description="The id this record has in its own service: the one its REST and FHIR "
                    "paths use, and that fields such as `goalId` or `serviceUserId` hold (for "
                    "a service user the EHR's patient id, for a team or a member of staff the "
                    "organisation's).")

    def __post_init__(self) -> None:
        self.id = strawberry.ID(GlobalId(type(self).__name__, self.local_id).encode())
