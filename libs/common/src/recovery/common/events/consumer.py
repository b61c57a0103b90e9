"""Durable pull consumers: explicit ack, bounded redelivery with back-off, dead letters,
idempotent handling, and recovery from NATS restarts."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import nats
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, FetchTimeoutError
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import Column, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import UTCDateTime
from recovery.common.events.bus import EventBus, stream_subjects
from recovery.common.events.envelope import CloudEvent
from recovery.common.events.tasks import cancel_and_wait
from recovery.common.settings import Settings
from recovery.common.timeutil import utcnow

log = structlog.get_logger(__name__)

#: Messages a consumer gave up on, kept for people to inspect and replay.
DEADLETTER_STREAM = "DEADLETTER"
DEADLETTER_PREFIX = "recovery.deadletter"
#: Deliveries the server allows beyond the handler's attempts, used only to dead-letter.
DEADLETTER_ATTEMPTS = 3

CONSUMED = Counter("recovery_events_consumed_total", "Events taken by consumers, by outcome",
                   ["consumer", "outcome"])


class ProcessedEvent(SQLModel, table=True):
    """An event a consumer has handled, stored in the same transaction as its effect."""

    __tablename__ = "processed_event"

    consumer: str = Field(sa_column=Column(String(80), primary_key=True))
    event_id: str = Field(sa_column=Column(String(36), primary_key=True))
    processed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


@dataclass(frozen=True)
class EventHandler:
    """What one durable consumer listens to and what it does with each event.

    ``handle`` runs inside a transaction; it must not commit. The runner records the event
    as processed in that same transaction and commits, then acks.
    """

    durable: str
    stream: str
    subjects: tuple[str, ...]
    handle: Callable[[AsyncSession, CloudEvent], Awaitable[None]]


def deadletter_subject(durable: str) -> str:
    return f"{DEADLETTER_PREFIX}.{durable}"


class ConsumerRunner:
    """Runs one durable JetStream pull consumer per handler for the life of the process.

    A pull subscription is rebuilt (stream, consumer and inbox) after every reconnection and
    after any error, because nats-py's pull subscriptions do not reliably resume on their own
    once the server restarts.
    """

    def __init__(self, bus: EventBus, sessions: async_sessionmaker[AsyncSession],
                 settings: Settings, handlers: Sequence[EventHandler], *,
                 fetch_batch: int = 64, fetch_seconds: float = 1.0,
                 ack_wait_seconds: float = 30.0, retry_seconds: float = 0.5) -> None:
        self.bus = bus
        self.sessions = sessions
        self.settings = settings
        self.handlers = tuple(handlers)
        self.max_deliver = max(1, settings.consumer_max_deliver)
        self.backoff = list(settings.consumer_backoff_seconds) or [1.0]
        self._fetch_batch = fetch_batch
        self._fetch_seconds = fetch_seconds
        self._ack_wait = ack_wait_seconds
        # A handler that hangs is a failed attempt, cut before JetStream would redeliver.
        self._handler_timeout = ack_wait_seconds * 0.8
        self._retry_seconds = retry_seconds
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for handler in self.handlers:
            self._tasks.append(asyncio.create_task(self._consume_forever(handler),
                                                   name=f"consumer-{handler.durable}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()

    def backoff_for(self, attempt: int) -> float:
        """Delay before the next attempt after attempt number ``attempt`` (1-based) failed."""
        return self.backoff[min(attempt, len(self.backoff)) - 1]

    async def _consume_forever(self, handler: EventHandler) -> None:
        while True:
            await self.bus.ready.wait()
            generation = self.bus.generation
            try:
                subscription = await self._subscribe(handler)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_subscribe_failed", consumer=handler.durable,
                            error=type(exc).__name__)
                await asyncio.sleep(self._retry_seconds)
                continue
            log.info("consumer_subscribed", consumer=handler.durable, stream=handler.stream)
            try:
                await self._pull_until_reconnect(handler, subscription, generation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_pull_failed", consumer=handler.durable,
                            error=type(exc).__name__)
                await asyncio.sleep(self._retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _pull_until_reconnect(self, handler: EventHandler,
                                    subscription: JetStreamContext.PullSubscription,
                                    generation: int) -> None:
        idle = 0
        while self.bus.generation == generation and self.bus.connected:
            try:
                messages = await subscription.fetch(self._fetch_batch,
                                                    timeout=self._fetch_seconds)
            except (TimeoutError, FetchTimeoutError, nats.errors.TimeoutError):
                idle += 1
                # A consumer deleted behind our back makes fetches time out silently.
                if idle % 30 == 0:
                    await subscription.consumer_info()
                continue
            idle = 0
            for message in messages:
                await self._deliver(handler, message)

    async def _subscribe(self, handler: EventHandler) -> JetStreamContext.PullSubscription:
        js = self.bus.js
        assert js is not None
        # A restarted server with fresh storage has lost the stream and the consumer.
        await self.bus.ensure_stream_exists(handler.stream, stream_subjects(handler.stream))
        await self.bus.ensure_stream_exists(DEADLETTER_STREAM, [f"{DEADLETTER_PREFIX}.>"])
        config = ConsumerConfig(
            durable_name=handler.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_deliver=self.max_deliver + DEADLETTER_ATTEMPTS,
            max_ack_pending=1000,
        )
        if len(handler.subjects) == 1:
            config.filter_subject = handler.subjects[0]
        else:
            config.filter_subjects = list(handler.subjects)
        try:
            await js.add_consumer(handler.stream, config)
        except BadRequestError as exc:
            # A setting the server will not change in place; keep the existing consumer.
            log.warning("consumer_config_kept", consumer=handler.durable,
                        error=type(exc).__name__)
            await js.consumer_info(handler.stream, handler.durable)
        return await js.pull_subscribe_bind(durable=handler.durable, stream=handler.stream)

    async def _deliver(self, handler: EventHandler, message: Msg) -> None:
        attempt = message.metadata.num_delivered
        try:
            event = CloudEvent.from_json(message.data)
        except ValidationError:
            await self._dead_letter(handler, message, None, attempt, "malformed")
            return
        if attempt > self.max_deliver:
            # The handler already had its attempts (the process died during the last one,
            # or dead-lettering failed): dead-letter without running it again.
            await self._dead_letter(handler, message, event, attempt, "attempts-exhausted")
            return
        try:
            ran = await asyncio.wait_for(self._handle_once(handler, event),
                                         self._handler_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The type only: exception messages may quote clinical text.
            log.warning("consumer_handler_failed", consumer=handler.durable,
                        event_id=event.id, event_type=event.type, attempt=attempt,
                        error=type(exc).__name__)
            if attempt >= self.max_deliver:
                await self._dead_letter(handler, message, event, attempt, type(exc).__name__)
            else:
                CONSUMED.labels(handler.durable, "retried").inc()
                await message.nak(delay=self.backoff_for(attempt))
            return
        await message.ack()
        CONSUMED.labels(handler.durable, "handled" if ran else "duplicate").inc()

    async def _handle_once(self, handler: EventHandler, event: CloudEvent) -> bool:
        """Run the handler and record the event in one transaction; False if already done."""
        key = (handler.durable, event.id)
        async with self.sessions() as session:
            if await session.get(ProcessedEvent, key) is not None:
                return False
            await handler.handle(session, event)
            session.add(ProcessedEvent(consumer=handler.durable, event_id=event.id))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                # Another replica handled it at the same moment: its effect stands, ours is
                # rolled back. Any other integrity error is the handler's and must surface.
                async with self.sessions() as check:
                    if await check.get(ProcessedEvent, key) is not None:
                        return False
                raise
            return True

    async def _dead_letter(self, handler: EventHandler, message: Msg, event: CloudEvent | None,
                           attempt: int, reason: str) -> None:
        """Copy the message to the dead-letter stream, then stop its redelivery."""
        js = self.bus.js
        assert js is not None
        meta = message.metadata
        headers = {
            # Dead-lettering twice (e.g. a lost term) keeps one copy.
            "Nats-Msg-Id": f"{handler.durable}:{meta.stream}:{meta.sequence.stream}",
            "Recovery-Consumer": handler.durable,
            "Recovery-Stream": meta.stream,
            "Recovery-Stream-Sequence": str(meta.sequence.stream),
            "Recovery-Original-Subject": message.subject,
            "Recovery-Deliveries": str(attempt),
            "Recovery-Failure": reason,
        }
        try:
            await js.publish(deadletter_subject(handler.durable), message.data,
                             headers=headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("consumer_deadletter_failed", consumer=handler.durable,
                        error=type(exc).__name__)
            with contextlib.suppress(Exception):
                await message.nak(delay=self.backoff_for(attempt))
            return
        await message.term()
        CONSUMED.labels(handler.durable, "dead_lettered").inc()
        log.warning("consumer_dead_lettered", consumer=handler.durable,
                    event_id=event.id if event else None, attempt=attempt, reason=reason)

