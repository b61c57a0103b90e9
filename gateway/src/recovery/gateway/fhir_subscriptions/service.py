"""What the Subscription routes do: create (the rules, the caller's access asked of the owning
service, the handshake), read, list and delete a caller's own subscriptions."""

import re
from dataclasses import dataclass
from datetime import datetime

import structlog
from pydantic import ValidationError

from recovery.common.auth import Principal, Verb, require_scope
from recovery.common.events.bus import EventBus
from recovery.common.ids import new_id
from recovery.common.problems import InvalidParam, Problem
from recovery.common.rules import Refusal, refuse
from recovery.common.settings import Settings
from recovery.common.timeutil import utcnow
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.fhir_subscriptions import rules
from recovery.gateway.fhir_subscriptions.delivery import Deliveries
from recovery.gateway.fhir_subscriptions.models import (
    FILTER_CRITERIA,
    HEARTBEAT_PERIOD,
    MAX_COUNT,
    PAYLOAD_CONTENT,
    TIMEOUT,
    Status,
    StoredSubscription,
    Subscriber,
    SubscriptionIn,
)
from recovery.gateway.fhir_subscriptions.notifier import Notifier
from recovery.gateway.fhir_subscriptions.store import StoreUnavailableError, SubscriptionStore
from recovery.gateway.fhir_subscriptions.topics import TOPICS, Topic
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.upstream import Upstreams

log = structlog.get_logger(__name__)

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: How long a request waits for the bucket when NATS has just (re)connected.
READY_WAIT_SECONDS = 2.0
#: The answers of the owning service that mean "not for you" (its rules decided).
REFUSED_CODES = frozenset({ErrorCode.forbidden, ErrorCode.not_found,
                           ErrorCode.unauthenticated, ErrorCode.invalid})


@dataclass
class Subscriptions:
    """The parts of FHIR subscriptions in one process: the bucket, the notifier and the
    deliveries; without NATS (``events_enabled`` off) there is no store and routes say so."""

    gateway: GatewaySettings
    upstreams: Upstreams
    store: SubscriptionStore | None
    notifier: Notifier | None
    deliveries: Deliveries

    @classmethod
    def build(cls, settings: Settings, gateway: GatewaySettings, upstreams: Upstreams,
              bus: EventBus | None) -> "Subscriptions":
        deliveries = Deliveries(gateway.fhir_subscription_retry_seconds)
        if bus is None:
            return cls(gateway, upstreams, None, None, deliveries)
        store = SubscriptionStore(bus, replicas=settings.stream_replicas)
        return cls(gateway, upstreams, store, Notifier(bus, store, deliveries), deliveries)

    @property
    def ready(self) -> bool:
        return self.notifier is not None and self.notifier.ready

    def start(self) -> None:
        if self.store is not None and self.notifier is not None:
            self.store.start()
            self.notifier.start()

    async def stop(self) -> None:
        if self.notifier is not None:
            await self.notifier.stop()
        if self.store is not None:
            await self.store.stop()
        await self.deliveries.close()


def unavailable() -> Problem:
    return Problem(503, "Subscriptions cannot be reached just now; try again shortly.",
                   kind="unavailable", headers={"Retry-After": "5"})


async def ready_parts(subscriptions: Subscriptions) -> tuple[SubscriptionStore, Notifier]:
    store, notifier = subscriptions.store, subscriptions.notifier
    if store is None or notifier is None:
        raise Problem(503, "FHIR subscriptions need NATS, which this server runs without.",
                      kind="unavailable")
    if not await store.wait_ready(READY_WAIT_SECONDS) or not store.ready:
        raise unavailable()
    return store, notifier


def parsed(body: bytes) -> SubscriptionIn:
    try:
        return SubscriptionIn.model_validate_json(body)
    except ValidationError as exc:
        params = [InvalidParam(name=".".join(str(p) for p in error["loc"]),
                               reason=error["msg"]) for error in exc.errors()]
        raise Problem(400, "The body is not a Subscription this server can read; see "
                           "invalid-params.", kind="invalid-subscription",
                      invalid_params=params) from exc


def first_refusal(request: SubscriptionIn, topic: Topic, gateway: GatewaySettings,
                  now: datetime) -> Refusal | None:
    """What the request itself asks that is not offered (before anyone's access is asked)."""
    channel = request.channel
    filters = [e.valueString or "" for e in request.criteria_element.values(FILTER_CRITERIA)]
    refusals = (
        rules.filter_refusal(topic, filters),
        rules.channel_refusal(channel.type),
        rules.payload_refusal(channel.payload, channel.payload_element.values(PAYLOAD_CONTENT)),
        rules.endpoint_refusal(channel.endpoint, environment=gateway.environment,
                               allowed=gateway.fhir_subscription_endpoints),
        rules.heartbeat_refusal(channel.extension_of(HEARTBEAT_PERIOD)),
        rules.timeout_refusal(channel.extension_of(TIMEOUT)),
        rules.max_count_refusal(channel.extension_of(MAX_COUNT)),
        rules.header_refusal(channel.header),
        rules.end_refusal(request.end, now),
    )
    return next((r for r in refusals if r is not None), None)


async def check_reads_records(subscriptions: Subscriptions, principal: Principal,
                              topic: Topic, person: str) -> None:
    """Ask the owning service, with the caller's own token, for the person's records: its
    rules decide. Staff must see at least one (their teams' records); a person acting for
    themselves and a partner system need only be answered. Every refusal reads the same."""
    path, query = topic.records_of(person)
    try:
        answer = await subscriptions.upstreams.call(topic.service, "GET", path,
                                                    principal.token, params=query)
    except GatewayError as error:
        if error.code in REFUSED_CODES:
            raise refuse(rules.NOT_YOURS) from error
        timeout = error.code is ErrorCode.upstream_timeout
        raise Problem(504 if timeout else 502,
                      f"The {topic.service} service could not be asked whether you may read "
                      "these records; try again shortly.",
                      kind="upstream-timeout" if timeout else "upstream-unavailable") from error
    items = answer.body.get("items") if isinstance(answer.body, dict) else None
    if principal.own_person() is None and not principal.is_system and not items:
        raise refuse(rules.NOT_YOURS)


async def create(subscriptions: Subscriptions, principal: Principal, body: bytes,
                 base: str) -> StoredSubscription:
    """A new subscription: refused, or stored as requested, then active once the endpoint
    has accepted the handshake (in error when it has not)."""
    store, notifier = await ready_parts(subscriptions)
    request = parsed(body)
    if (refusal := rules.topic_refusal(request.criteria)) is not None:
        raise refuse(refusal)
    topic = TOPICS[request.criteria]
    now = utcnow()
    if (refusal := first_refusal(request, topic, subscriptions.gateway, now)) is not None:
        raise refuse(refusal)
    person = rules.filtered_person(
        topic, [e.valueString or "" for e in request.criteria_element.values(FILTER_CRITERIA)])
    assert person is not None  # filter_refusal said so
    require_scope(principal, topic.focus, Verb.read)
    if (refusal := rules.subscriber_refusal(principal, person)) is not None:
        raise refuse(refusal)
    await check_reads_records(subscriptions, principal, topic, person)
    channel = request.channel
    heartbeat, timeout, max_count = (channel.extension_of(url)
                                     for url in (HEARTBEAT_PERIOD, TIMEOUT, MAX_COUNT))
    entry = StoredSubscription(
        id=new_id(), subscriber=Subscriber.of(principal), topic=topic.canonical,
        person=person, reason=request.reason, endpoint=channel.endpoint or "",
        headers=[h.strip() for h in channel.header],
        heartbeat_seconds=heartbeat.valueUnsignedInt if heartbeat else None,
        timeout_seconds=(timeout.valueUnsignedInt if timeout and timeout.valueUnsignedInt
                         else rules.DEFAULT_TIMEOUT_SECONDS),
        max_count=max_count.valuePositiveInt if max_count else None,
        end=request.end, fhir_base=base, status=Status.requested, created_at=now)
    try:
        await store.create(entry)
        settled = await notifier.handshake(entry)
    except StoreUnavailableError as exc:
        raise unavailable() from exc
    log.info("fhir_subscription_created", subscription=entry.id, topic=topic.canonical,
             status=settled.status.value)
    return settled


async def read_own(subscriptions: Subscriptions, principal: Principal,
                   subscription_id: str) -> StoredSubscription:
    """The caller's subscription; another's reads as missing."""
    store, _ = await ready_parts(subscriptions)
    try:
        found = await store.read(subscription_id) if FHIR_ID.fullmatch(subscription_id) \
            else None
    except StoreUnavailableError as exc:
        raise unavailable() from exc
    if found is None or found[0].subscriber.sub != principal.sub:
        raise Problem(404, f"There is no Subscription {subscription_id} of yours here.",
                      kind="not-found")
    return found[0]


async def list_own(subscriptions: Subscriptions,
                   principal: Principal) -> list[StoredSubscription]:
    """The caller's subscriptions, oldest first."""
    store, _ = await ready_parts(subscriptions)
    try:
        await store.caught_up()
    except StoreUnavailableError as exc:
        raise unavailable() from exc
    return sorted((e for e in store.held.values() if e.subscriber.sub == principal.sub),
                  key=lambda e: (e.created_at, e.id))


async def delete_own(subscriptions: Subscriptions, principal: Principal,
                     subscription_id: str) -> None:
    """Nothing more is sent once it is gone (an event being sent to it now may still be)."""
    entry = await read_own(subscriptions, principal, subscription_id)
    store, _ = await ready_parts(subscriptions)
    try:
        await store.delete(entry.id)
    except StoreUnavailableError as exc:
        raise unavailable() from exc
    log.info("fhir_subscription_deleted", subscription=entry.id)
