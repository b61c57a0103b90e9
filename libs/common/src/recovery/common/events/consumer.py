"""Durable pull consumers: explicit ack, bounded redelivery with back-off, dead letters,
idempotent handling, and recovery from NATS restarts."""

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import nats
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header
from nats.js.errors import BadRequestError
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import Column, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import UTCDateTime, is_outage
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
                inbox = await self._subscribe(handler)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_subscribe_failed", consumer=handler.durable,
                            error=type(exc).__name__)
                await asyncio.sleep(self._retry_seconds)
                continue
            log.info("consumer_subscribed", consumer=handler.durable, stream=handler.stream)
            try:
                await self._pull_until_reconnect(handler, inbox, generation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_pull_failed", consumer=handler.durable,
                            error=type(exc).__name__)
                await asyncio.sleep(self._retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await inbox.unsubscribe()

    async def _pull_until_reconnect(self, handler: EventHandler, inbox: Subscription,
                                    generation: int) -> None:
        """Ask for a batch, handle each message the moment it arrives, ask again.

        nats-py's ``fetch`` waits for a whole batch (or its timeout) once it has to linger,
        which would put its timeout into every event's latency; this loop does not.
        """
        client = self.bus.client
        assert client is not None
        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{handler.stream}.{handler.durable}"
        request = json.dumps({"batch": self._fetch_batch,
                              "expires": int(self._fetch_seconds * 1e9)}).encode()
        idle = 0
        while self.bus.generation == generation and self.bus.connected:
            await client.publish(next_subject, request, reply=inbox.subject)
            handled = await self._take_batch(handler, inbox)
            idle = 0 if handled else idle + 1
            # A consumer deleted behind our back shows only as silence: check now and then.
            if idle and idle % 30 == 0:
                await self.bus.js.consumer_info(handler.stream,  # type: ignore[union-attr]
                                                handler.durable)

    async def _take_batch(self, handler: EventHandler, inbox: Subscription) -> int:
        """Handle the messages one pull request brings; how many there were.

        Messages are handled as soon as they arrive; those already waiting together are
        handled together, in one transaction.
        """
        taken = 0
        # The server ends every request with a status (408 expired, 404 none) or the batch;
        # the grace covers a request lost with a server restart.
        deadline = time.monotonic() + self._fetch_seconds + 0.5
        while taken < self._fetch_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            arrived: list[Msg] = []
            ended = False
            try:
                message: Msg | None = await inbox.next_msg(timeout=remaining)
                while message is not None:
                    status = message.headers.get(Header.STATUS) if message.headers else None
                    if status is None:
                        arrived.append(message)
                    elif status != "100":  # 100 is a heartbeat
                        ended = True
                        await self._request_ended(handler, message, status)
                        break
                    more = inbox.pending_msgs > 0 and taken + len(arrived) < self._fetch_batch
                    message = await inbox.next_msg(timeout=1) if more else None
            except (TimeoutError, nats.errors.TimeoutError):
                ended = True
            if arrived:
                await self._receive(handler, arrived)
                taken += len(arrived)
            if ended:
                break
        return taken

    async def _request_ended(self, handler: EventHandler, message: Msg, status: str) -> None:
        description = (message.headers or {}).get(Header.DESCRIPTION, "").lower()
        # 503: no one answers for the consumer any more; 409 "consumer deleted" says so.
        if status == "503" or (status == "409" and "deleted" in description):
            raise ConsumerGoneError(handler.durable)
        # 404 no messages, 408 request expired: ask again at once; others after a pause.
        if status not in ("404", "408"):
            log.warning("consumer_pull_status", consumer=handler.durable, status=status)
            await asyncio.sleep(self._retry_seconds)

    async def _subscribe(self, handler: EventHandler) -> Subscription:
        js, client = self.bus.js, self.bus.client
        assert js is not None and client is not None
        # A restarted server with fresh storage has lost the stream and the consumer.
        await self.bus.ensure_stream_exists(handler.stream, stream_subjects(handler.stream))
        # The dead-letter stream is the kit's own: provisioned (and given its copies) here.
        await self.bus.ensure_stream(DEADLETTER_STREAM, [f"{DEADLETTER_PREFIX}.>"])
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
        return await client.subscribe(client.new_inbox())

    async def _deliver(self, handler: EventHandler, message: Msg) -> None:
        await self._receive(handler, [message])

    async def _receive(self, handler: EventHandler, messages: Sequence[Msg]) -> None:
        """Handle messages in delivery order; ack, retry later, or dead-letter each."""
        pending: list[tuple[Msg, CloudEvent]] = []
        for message in messages:
            attempt = message.metadata.num_delivered
            try:
                event = CloudEvent.from_json(message.data)
            except ValidationError:
                await self._dead_letter(handler, message, None, attempt, "malformed")
                continue
            if attempt > self.max_deliver:
                # The handler already had its attempts (the process died during the last
                # one, or dead-lettering failed): dead-letter without running it again.
                await self._dead_letter(handler, message, event, attempt, "attempts-exhausted")
                continue
            pending.append((message, event))
        outages = 0
        while pending:
            try:
                async with asyncio.timeout(self._handler_timeout) as limit:
                    ran = await self._handle_all_once(handler, [event for _, event in pending])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc.error if isinstance(exc, HandlerFailedError) else exc
                if is_outage(error) and not limit.expired():
                    # The database (or a network) is down: wait it out without counting the
                    # attempt, or an outage would dead-letter every event that arrives.
                    outages += 1
                    await self._wait_out_outage(handler, pending, error, outages)
                    continue
                if isinstance(exc, HandlerFailedError):
                    # Only this event failed: the others go again in a fresh transaction.
                    message, event = pending.pop(exc.index)
                    await self._attempt_failed(handler, message, event, error)
                    continue
                if len(pending) == 1:
                    message, event = pending[0]
                    await self._attempt_failed(handler, message, event, error)
                    return
                # The commit failed (e.g. a replica handled one at the same moment): one by
                # one, to tell which.
                for message, _ in pending:
                    await self._receive(handler, [message])
                return
            for (message, _), done in zip(pending, ran, strict=True):
                await message.ack()
                CONSUMED.labels(handler.durable, "handled" if done else "duplicate").inc()
            return

    async def _wait_out_outage(self, handler: EventHandler,
                               pending: Sequence[tuple[Msg, CloudEvent]], error: BaseException,
                               outages: int) -> None:
        if outages & (outages - 1) == 0:  # 1, 2, 4, 8...: visible without flooding the log
            log.warning("consumer_waiting_out_outage", consumer=handler.durable,
                        error=type(error).__name__, tries=outages)
        for message, _ in pending:
            # Tell JetStream we are still on it, so it does not redeliver meanwhile.
            with contextlib.suppress(Exception):
                await message.in_progress()
        await asyncio.sleep(min(self._retry_seconds * outages, 5.0))

    async def _attempt_failed(self, handler: EventHandler, message: Msg, event: CloudEvent,
                              error: BaseException) -> None:
        attempt = message.metadata.num_delivered
        # The type only: exception messages may quote clinical text.
        log.warning("consumer_handler_failed", consumer=handler.durable, event_id=event.id,
                    event_type=event.type, attempt=attempt, error=type(error).__name__)
        if attempt >= self.max_deliver:
            await self._dead_letter(handler, message, event, attempt, type(error).__name__)
        else:
            CONSUMED.labels(handler.durable, "retried").inc()
            await message.nak(delay=self.backoff_for(attempt))

    async def _handle_all_once(self, handler: EventHandler,
                               events: Sequence[CloudEvent]) -> list[bool]:
        """Run the handler for each event not yet processed, recording each, in one
        transaction; per event, whether it ran (False: a duplicate)."""
        if len(events) == 1:
            return [await self._handle_once(handler, events[0])]
        async with self.sessions() as session:
            ids = [event.id for event in events]
            seen = set((await session.exec(
                select(ProcessedEvent.event_id)
                .where(ProcessedEvent.consumer == handler.durable)
                .where(col(ProcessedEvent.event_id).in_(ids))
            )).all())
            ran: list[bool] = []
            for index, event in enumerate(events):
                if event.id in seen:
                    ran.append(False)
                    continue
                try:
                    await handler.handle(session, event)
                except Exception as exc:
                    raise HandlerFailedError(index, exc) from exc
                seen.add(event.id)
                session.add(ProcessedEvent(consumer=handler.durable, event_id=event.id))
                ran.append(True)
            await session.commit()
            return ran

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


class ConsumerGoneError(Exception):
    """The server deleted the durable consumer; the runner provisions it again."""


class HandlerFailedError(Exception):
    """The handler failed on the event at ``index`` of a batch."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"handler failed on event {index} of the batch")
        self.index = index
        self.error = error
