"""What a subscriber sends (an R4 Subscription with the backport IG's extensions) and what the
gateway keeps of each subscription in its key-value bucket."""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recovery.common.auth import Principal, Scope
from recovery.common.timeutil import utcnow

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
FILTER_CRITERIA = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/backport-timeout"
MAX_COUNT = f"{BACKPORT}/backport-max-count"
#: Scope letters in SMART's order, to write a scope back as it is read.
VERB_ORDER = "cruds"


class Status(StrEnum):
    """FHIR's subscription-status codes the gateway uses."""

    requested = "requested"
    active = "active"
    error = "error"
    off = "off"


class NotificationType(StrEnum):
    handshake = "handshake"
    heartbeat = "heartbeat"
    event_notification = "event-notification"
    query_status = "query-status"


# The subset of an R4 Subscription the gateway reads; other elements are ignored.

class Extension(BaseModel):
    url: str
    valueString: str | None = None  # noqa: N815 (FHIR's JSON names)
    valueCode: str | None = None  # noqa: N815
    valueUnsignedInt: int | None = None  # noqa: N815
    valuePositiveInt: int | None = None  # noqa: N815


class Element(BaseModel):
    """The extensions FHIR JSON carries beside a primitive, as ``_criteria``."""

    extension: list[Extension] = []

    def values(self, url: str) -> list[Extension]:
        return [e for e in self.extension if e.url == url]


class ChannelIn(BaseModel):
    type: str
    endpoint: str | None = None
    payload: str | None = None
    payload_element: Element = Field(default_factory=Element, alias="_payload")
    header: list[str] = []
    extension: list[Extension] = []

    def extension_of(self, url: str) -> Extension | None:
        return next((e for e in self.extension if e.url == url), None)


class SubscriptionIn(BaseModel):
    """A Subscription as posted: its topic (``criteria``), filter and channel."""

    model_config = ConfigDict(populate_by_name=True)

    resourceType: Literal["Subscription"]  # noqa: N815
    reason: str = Field(min_length=1, max_length=500)
    criteria: str = Field(min_length=1, max_length=500)
    criteria_element: Element = Field(default_factory=Element, alias="_criteria")
    end: datetime | None = None
    channel: ChannelIn


class Subscriber(BaseModel):
    """Who subscribed, as their token said then: never the token itself."""

    sub: str
    roles: list[str]
    patient: str | None
    teams: list[str]
    scopes: list[str]

    @classmethod
    def of(cls, principal: Principal) -> "Subscriber":
        return cls(sub=principal.sub, roles=sorted(principal.roles), patient=principal.patient,
                   teams=sorted(principal.teams),
                   scopes=[f"{s.context}/{s.resource}."
                           + "".join(v for v in VERB_ORDER if v in s.verbs)
                           for s in principal.scopes])

    def principal(self) -> Principal:
        """The caller as a ``Principal`` (without a token) for the kit's access rules."""
        return Principal(sub=self.sub, roles=frozenset(self.roles), patient=self.patient,
                         teams=frozenset(self.teams),
                         scopes=tuple(s for s in map(Scope.parse, self.scopes) if s))


class StoredSubscription(BaseModel):
    """One subscription as the bucket keeps it: encoded once by ``encoded``."""

    id: str
    subscriber: Subscriber
    topic: str
    person: str
    reason: str
    endpoint: str
    headers: list[str]
    heartbeat_seconds: int | None
    timeout_seconds: int
    max_count: int | None
    end: datetime | None
    #: The public FHIR base (``https://…/fhir``) the subscription's links and its
    #: notifications' focus URLs are made from: where the subscriber reached the gateway.
    fhir_base: str
    status: Status
    error: str | None = None
    created_at: datetime
    #: The Subscription resource's version: it moves when what a read shows (its status,
    #: its error) changes, not with each notification.
    version: int = 1
    updated_at: datetime | None = None
    #: Events notified so far; each notification's number is this count after it.
    events_since_start: int = 0
    #: The topic stream's sequence when it became active: earlier events are not its own.
    start_sequence: int = 0
    #: The stream sequence of the last event given a number, and that number: a
    #: redelivered event is sent again under the same number.
    last_sequence: int = 0
    last_event_number: int = 0
    #: When a notification last went out, for heartbeats.
    last_sent_at: datetime | None = None

    def changed(self, **update: object) -> "StoredSubscription":
        """A copy with ``update`` applied as a new version of the resource."""
        return self.model_copy(update={**update, "version": self.version + 1,
                                       "updated_at": utcnow()})

    def encoded(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decoded(cls, value: bytes) -> "StoredSubscription":
        return cls.model_validate_json(value)

    def status_at(self, now: datetime) -> Status:
        """Its status now: an active subscription past its ``end`` is off."""
        if self.status is Status.active and self.end is not None and now >= self.end:
            return Status.off
        return self.status

    def live(self, now: datetime) -> bool:
        return self.status_at(now) is Status.active

    def heartbeat_due(self, now: datetime) -> bool:
        if self.heartbeat_seconds is None or not self.live(now):
            return False
        last = self.last_sent_at or self.created_at
        return now - last >= timedelta(seconds=self.heartbeat_seconds)
