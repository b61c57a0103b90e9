"""Notifications from the services' events, handshakes and heartbeats.

Each topic's stream is read by one durable JetStream consumer that every gateway replica
shares (one durable name), so each event is handled once across replicas. The consumer lets
one event be outstanding at a time (``max_ack_pending`` 1) and an event is acknowledged only
once every matching subscription's POST succeeded or was given up on: the next event is not
handed to any replica before that, so each subscription receives a stream's events in the
stream's order. A replica that dies with an event unacknowledged leaves it to be delivered
again after ``ack_wait``; it is sent again under the number it was given (at least once).
"""

import asyncio
import contextlib
from datetime import datetime

import nats
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError
from pydantic import ValidationError

from recovery.common.auth import Verb, can_reach_record
from recovery.common.events.bus import EventBus, stream_subjects
from recovery.common.events.envelope import CloudEvent
from recovery.common.events.tasks import cancel_and_wait
from recovery.common.timeutil import utcnow
from recovery.gateway.fhir_subscriptions.delivery import Deliveries
from recovery.gateway.fhir_subscriptions.models import (
    NotificationType,
    Status,
    StoredSubscription,
)
from recovery.gateway.fhir_subscriptions.resources import NotificationEvent, notification_bundle
from recovery.gateway.fhir_subscriptions.store import StoreUnavailableError, SubscriptionStore
from recovery.gateway.fhir_subscriptions.topics import STREAMS, TOPICS, Topic, topic_raised

log = structlog.get_logger(__name__)

#: The consumers' name on every topic stream, shared by all replicas: keep it stable, as a
#: new name starts a consumer of its own.
DURABLE = "gateway-fhir-subscriptions"
#: An event not acknowledged for this long goes to another replica; while its POSTs are
#: under way, the consumer is told every third of it that work goes on.
ACK_WAIT_SECONDS = 30.0
#: An event whose handling failed this often (NATS or the bucket, never an endpoint, whose
#: failures are given up on per subscription) is dropped, and the drop is logged.
MAX_EVENT_DELIVERIES = 20
HEARTBEAT_TICK_SECONDS = 0.5
#: Idle pulls between checks that the consumer still exists (a deleted one is only silent).
IDLE_PULLS_PER_CHECK = 30


class Notifier:
    """Reads the topic streams and sends each matching subscription its notifications."""

    def __init__(self, bus: EventBus, store: SubscriptionStore,
                 deliveries: Deliveries) -> None:
        self.bus = bus
        self.store = store
        self.deliveries = deliveries
        #: Streams whose consumer this replica is pulling from.
        self.subscribed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeats: dict[str, asyncio.Task[None]] = {}

    @property
    def ready(self) -> bool:
        return self.store.ready and self.subscribed == set(STREAMS)

    def start(self) -> None:
        for stream in STREAMS:
            self._tasks.append(asyncio.create_task(self._consume_forever(stream),
                                                   name=f"fhir-notifier-{stream}"))
        self._tasks.append(asyncio.create_task(self._heartbeats_forever(),
                                               name="fhir-heartbeats"))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._heartbeats.values()]:
            await cancel_and_wait(task)
        self._tasks.clear()

    # Handshakes

    async def handshake(self, entry: StoredSubscription) -> StoredSubscription:
        """POST the handshake: accepted, the subscription is active from the topic stream's
        present position on; refused, it is in error."""
        why = await self.deliveries.post(
            entry, notification_bundle(entry, NotificationType.handshake),
            NotificationType.handshake.value, attempts=1)
        now = utcnow()
        if why is None:
            start = await self._stream_position(TOPICS[entry.topic].stream)
            update = {"status": Status.active, "start_sequence": start, "last_sent_at": now}
        else:
            update = {"status": Status.error,
                      "error": f"The handshake was not accepted: the endpoint {why}."}

        def settle(current: StoredSubscription) -> StoredSubscription | None:
            return current.changed(**update) if current.status is Status.requested else None

        return await self.store.change(entry.id, settle) or entry

    async def _stream_position(self, stream: str) -> int:
        js = self._js()
        try:
            await self.bus.ensure_stream_exists(stream, stream_subjects(stream))
            return int((await js.stream_info(stream)).state.last_seq)
        except Exception as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc

    def _js(self) -> JetStreamContext:
        if self.bus.js is None or not self.bus.connected:
            raise StoreUnavailableError("not connected")
        return self.bus.js

    # Events

    async def _consume_forever(self, stream: str) -> None:
        while True:
            await self.bus.ready.wait()
            generation = self.bus.generation
            try:
                pull = await self._subscribe(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fhir_notifier_subscribe_failed", stream=stream,
                            error=type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            self.subscribed.add(stream)
            try:
                await self._pull_until_reconnect(stream, pull, generation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fhir_notifier_pull_failed", stream=stream,
                            error=type(exc).__name__)
                await asyncio.sleep(0.5)
            finally:
                self.subscribed.discard(stream)
                with contextlib.suppress(Exception):
                    await pull.unsubscribe()

    async def _subscribe(self, stream: str) -> JetStreamContext.PullSubscription:
        js = self._js()
        # A restarted server with fresh storage has lost the stream; its owner's settings
        # win when it exists.
        await self.bus.ensure_stream_exists(stream, stream_subjects(stream))
        config = ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            # Subscriptions hear of what happens from now on, not of the stream's past.
            deliver_policy=DeliverPolicy.NEW,
            ack_wait=ACK_WAIT_SECONDS,
            max_ack_pending=1,
            filter_subjects=[t for topic in STREAMS[stream] for t in topic.event_types],
        )
        try:
            await js.add_consumer(stream, config)
        except BadRequestError as exc:
            # A setting the server will not change in place; keep the consumer there is.
            log.warning("fhir_notifier_consumer_kept", stream=stream, error=type(exc).__name__)
            await js.consumer_info(stream, DURABLE)
        return await js.pull_subscribe_bind(durable=DURABLE, stream=stream)

    async def _pull_until_reconnect(self, stream: str, pull: JetStreamContext.PullSubscription,
                                    generation: int) -> None:
        idle = 0
        while self.bus.generation == generation and self.bus.connected:
            try:
                messages = await pull.fetch(1, timeout=1.0)
            except nats.errors.TimeoutError:
                idle += 1
                if idle % IDLE_PULLS_PER_CHECK == 0:
                    await self._js().consumer_info(stream, DURABLE)
                continue
            idle = 0
            for message in messages:
                await self._handle(stream, message)

    async def _handle(self, stream: str, message: Msg) -> None:
        try:
            event = CloudEvent.from_json(message.data)
        except ValidationError:
            log.warning("fhir_notifier_unreadable_event", stream=stream)
            await message.term()
            return
        topic = topic_raised(stream, event)
        if topic is None:
            await message.ack()
            return
        working = asyncio.create_task(self._keep_working(message), name="fhir-event-in-progress")
        try:
            await self.store.caught_up()
            async with asyncio.TaskGroup() as group:
                for entry in self.matching(topic, event):
                    group.create_task(self.notify_event(
                        entry.id, topic, event, message.metadata.sequence.stream))
        except asyncio.CancelledError:
            # Stopping: leave the event to the next replica at once, not after ack_wait.
            with contextlib.suppress(Exception):
                await message.nak()
            raise
        except Exception as exc:
            await self._failed(message, event, exc)
            return
        finally:
            await cancel_and_wait(working)
        await message.ack()

    async def _failed(self, message: Msg, event: CloudEvent, exc: Exception) -> None:
        errors = exc.exceptions if isinstance(exc, ExceptionGroup) else [exc]
        attempt = message.metadata.num_delivered
        log.warning("fhir_notifier_event_failed", event_id=event.id, event_type=event.type,
                    attempt=attempt, error=type(errors[0]).__name__)
        with contextlib.suppress(Exception):
            if attempt >= MAX_EVENT_DELIVERIES:
                log.error("fhir_notifier_event_dropped", event_id=event.id,
                          event_type=event.type, attempt=attempt)
                await message.term()
            else:
                await message.nak(delay=min(attempt, 5))

    async def _keep_working(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(ACK_WAIT_SECONDS / 3)
            with contextlib.suppress(Exception):
                await message.in_progress()

    def matching(self, topic: Topic, event: CloudEvent) -> list[StoredSubscription]:
        """Live subscriptions to this topic for the event's person whose subscriber may read
        the record, by the services' own object-level rule over the event's person and team
        (the subscriber as their token said when they subscribed)."""
        person = event.data.get("service_user_id")
        team = event.data.get("team_id")
        if not isinstance(person, str):
            return []
        now = utcnow()
        return [entry for entry in list(self.store.held.values())
                if entry.topic == topic.canonical and entry.person == person
                and entry.live(now)
                and can_reach_record(entry.subscriber.principal(), topic.focus, Verb.read,
                                     service_user_id=person,
                                     team_id=team if isinstance(team, str) else None)]

    async def notify_event(self, subscription_id: str, topic: Topic, event: CloudEvent,
                           sequence: int) -> None:
        """Give the event the subscription's next number (its own again, if it was given one
        before it was delivered again), then POST it."""
        now = utcnow()

        def claim(entry: StoredSubscription) -> StoredSubscription | None:
            if not entry.live(now) or sequence <= entry.start_sequence \
                    or sequence < entry.last_sequence:
                return None
            if sequence == entry.last_sequence:
                return entry.model_copy(update={"last_sent_at": now})
            number = entry.events_since_start + 1
            return entry.model_copy(update={
                "events_since_start": number, "last_sequence": sequence,
                "last_event_number": number, "last_sent_at": now})

        entry = await self.store.change(subscription_id, claim)
        if entry is None:
            return
        notification = NotificationEvent(
            number=entry.last_event_number, timestamp=event.time, focus_type=topic.focus,
            focus_id=topic.focus_id(event), created=event.type in topic.creating)
        why = await self.deliveries.post(
            entry, notification_bundle(entry, NotificationType.event_notification, notification),
            NotificationType.event_notification.value)
        if why is not None:
            await self.give_up(subscription_id, f"A notification was not delivered: the "
                                                f"endpoint {why}.")

    async def give_up(self, subscription_id: str, why: str) -> None:
        """The subscription is in error: nothing more is sent to it."""
        def failed(entry: StoredSubscription) -> StoredSubscription | None:
            return entry.changed(status=Status.error, error=why) \
                if entry.status is Status.active else None

        if await self.store.change(subscription_id, failed) is not None:
            log.warning("fhir_subscription_in_error", subscription=subscription_id)

    # Heartbeats

    async def _heartbeats_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_TICK_SECONDS)
            if not self.store.ready:
                continue
            now = utcnow()
            for entry in list(self.store.held.values()):
                if entry.heartbeat_due(now) and entry.id not in self._heartbeats:
                    self._heartbeats[entry.id] = asyncio.create_task(
                        self._heartbeat(entry.id, now), name="fhir-heartbeat")

    async def _heartbeat(self, subscription_id: str, now: datetime) -> None:
        """Claim the heartbeat (the first replica to write wins), then send it."""
        def claim(entry: StoredSubscription) -> StoredSubscription | None:
            return entry.model_copy(update={"last_sent_at": now}) \
                if entry.heartbeat_due(now) else None

        try:
            entry = await self.store.change(subscription_id, claim)
            if entry is not None:
                why = await self.deliveries.post(
                    entry, notification_bundle(entry, NotificationType.heartbeat),
                    NotificationType.heartbeat.value)
                if why is not None:
                    await self.give_up(subscription_id, f"A heartbeat was not delivered: the "
                                                        f"endpoint {why}.")
        except StoreUnavailableError as exc:
            log.warning("fhir_heartbeat_failed", subscription=subscription_id, error=str(exc))
        finally:
            self._heartbeats.pop(subscription_id, None)
