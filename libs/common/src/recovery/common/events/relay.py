"""The outbox relay: publishes committed events to JetStream, in order, exactly once.

Woken at commit and polling as a safety net. Each message carries ``Nats-Msg-Id`` = event id,
so a batch published again (after a crash between publish and mark, or by a second relay)
is dropped by JetStream as a duplicate. On PostgreSQL a transaction-scoped advisory lock
lets one relay of a service publish at a time, so replicas neither race nor reorder.

The relay reads and marks with prebuilt statements on the kit's read and write paths (on an
SQLite file: its own in-loop connections, queued on the process's write lock to mark), and
hands each envelope to JetStream as the text stored, never decoded and encoded again. A
service publishes an event or two per change, so the relay mostly moves a few rows at a time
and what it costs is what it costs per batch (decision 26).
"""

import asyncio
import contextlib
import itertools
import json
import time
import zlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import Header
from nats.js.client import NO_RESPONDERS_STATUS
from prometheus_client import Counter
from sqlalchemy import Text, bindparam, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.data import Writes
from recovery.common.db import UTCDateTime
from recovery.common.events.bus import EventBus
from recovery.common.events.outbox import OutboxEvent
from recovery.common.events.tasks import cancel_and_wait
from recovery.common.timeutil import utcnow

log = structlog.get_logger(__name__)

PUBLISHED = Counter("recovery_outbox_published_total", "Outbox events published to JetStream",
                    ["stream"])
PUBLISH_FAILURES = Counter("recovery_outbox_publish_failures_total",
                           "Outbox batches that were not fully acknowledged", ["stream"])

#: Positions marked per transaction.
MARK_CHUNK = 1000

#: The unpublished events in order: position, id, type and the envelope as stored (text).
PENDING = (
    select(col(OutboxEvent.position), col(OutboxEvent.event_id), col(OutboxEvent.type),
           cast(col(OutboxEvent.envelope), Text))
    .where(col(OutboxEvent.published_at).is_(None))
    .order_by(col(OutboxEvent.position))
    .limit(bindparam("limit")))
MARK_PUBLISHED = (
    update(OutboxEvent)
    .where(col(OutboxEvent.position) == bindparam("marked"))
    .values(published_at=bindparam("at", type_=UTCDateTime())))
#: Every service has its own database, so one fixed advisory-lock key per database suffices.
RELAY_LOCK_KEY = zlib.crc32(b"recovery.outbox_relay")


class OutboxRelay:
    """Publishes unpublished outbox rows in position order, a batch at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventBus, *,
                 poll_seconds: float = 0.5, batch_size: int = 500,
                 ack_timeout: float = 5.0,
                 retention: timedelta = timedelta(days=7),
                 prune_every_seconds: float = 600.0) -> None:
        #: The kit's sessions: on PostgreSQL the read holds the advisory lock in one of them.
        self._sessions = sessions
        engine: AsyncEngine = sessions.kw["bind"]
        self._on_postgresql = engine.dialect.name == "postgresql"
        # The relay's own read and write paths (connections opened on first use, closed at
        # stop); its marks wake nobody.
        self._writes = Writes(engine, lambda: None)
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._ack_timeout = ack_timeout
        self._retention = retention
        self._prune_every = prune_every_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._marker: asyncio.Task[None] | None = None
        #: Positions JetStream acknowledged that are not yet marked published in the table.
        self._unmarked: set[int] = set()
        self._mark_wanted = asyncio.Event()
        self._mark_lock = asyncio.Lock()
        self.published = 0
        #: JetStream's answers still awaited, by batch; the reply subjects' prefix and the
        #: client it is subscribed on.
        self._awaiting: dict[str, _Replies] = {}
        self._batches = itertools.count(1)
        self._inbox_client: Client | None = None
        self._inbox = ""
        # A backlog written while NATS was down goes out as soon as it is back.
        bus.on_connected(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def publish_pending(self, *, mark_later: bool = False) -> int:
        """Publish one batch of unpublished events; returns how many were published.

        Only the acknowledged prefix of a batch counts as published, so a failure part-way
        never lets a later event overtake an earlier one. With ``mark_later`` the rows are
        marked by the relay's background marker instead of before returning, which keeps
        the marking write (and, on SQLite, its wait for the write lock) off the path of the
        next event.
        """
        js = self._bus.js
        if js is None or not self._bus.connected:
            return 0
        if len(self._unmarked) >= self._batch_size:
            await self.flush_marks()  # back-pressure: the marker must keep up
        in_flight = set(self._unmarked)  # copied before reading: see flush_marks
        limit = {"limit": self._batch_size + len(in_flight)}
        async with self._sessions() as session:
            connection = await session.connection()
            if self._on_postgresql:
                locked = (await connection.execute(
                    select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY)))).scalar_one()
                if not locked:
                    return 0  # another replica is publishing; it will get these rows too
            rows = _unpublished((await connection.execute(PENDING, limit)).all(),
                                in_flight, self._batch_size)
            acked = await self._publish(rows) if rows else 0
            # Ends the read (and releases the advisory lock) before marking.
            await session.commit()
        if not rows:
            return 0
        if acked:
            self._unmarked.update(row[0] for row in rows[:acked])
            self.published += acked
            PUBLISHED.labels(self._bus.settings.stream_name).inc(acked)
            if mark_later:
                self._mark_wanted.set()
            else:
                await self.flush_marks()
        if acked < len(rows):
            PUBLISH_FAILURES.labels(self._bus.settings.stream_name).inc()
            raise PublishIncompleteError(acked, len(rows))
        return acked

    async def flush_marks(self) -> None:
        """Mark every acknowledged event published in the table.

        A position leaves ``_unmarked`` only after its mark has committed, so a reader that
        copied the set before reading never mistakes a published row for a pending one.
        """
        async with self._mark_lock:
            while self._unmarked:
                positions = sorted(self._unmarked)[:MARK_CHUNK]
                now = utcnow()
                async with self._writes.transaction() as tx:
                    await tx.run_many(MARK_PUBLISHED,
                                      [{"marked": position, "at": now}
                                       for position in positions])
                self._unmarked.difference_update(positions)

    async def _mark_in_background(self) -> None:
        while True:
            await self._mark_wanted.wait()
            self._mark_wanted.clear()
            try:
                await self.flush_marks()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The rows stay unmarked and in ``_unmarked``; the next wake-up tries again.
                log.warning("outbox_mark_failed", error=type(exc).__name__)
                await asyncio.sleep(self._poll_seconds)
                self._mark_wanted.set()

    async def _publish(self, rows: Sequence[Any]) -> int:
        """Publish rows (position, event id, type, envelope text) to JetStream, each with a
        reply subject of the relay's own; the length of the prefix JetStream stored.

        JetStream answers a publish that names a reply subject with its acknowledgement
        there. The relay gathers a batch's answers on one subscription of its own, by their
        place in the batch: nats-py's ``publish_async`` made a future, a token and a done
        callback per message, and cost twice as much CPU per event."""
        client = self._bus.client
        assert client is not None
        inbox = await self._reply_inbox(client)
        batch = str(next(self._batches))
        replies = self._awaiting[batch] = _Replies(len(rows))
        try:
            sent = 0
            try:
                for _, event_id, event_type, envelope in rows:
                    await client.publish(event_type, envelope.encode(),
                                         reply=f"{inbox}.{batch}.{sent}",
                                         headers={Header.MSG_ID: event_id})
                    sent += 1
            except Exception as exc:
                log.warning("outbox_publish_failed", error=type(exc).__name__)
                replies.expect_only(sent)
            # Answers lost with a dropped connection never come: stop waiting when it drops.
            deadline = time.monotonic() + self._ack_timeout
            while (replies.missing and self._bus.connected
                   and time.monotonic() < deadline):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(replies.complete.wait(), 0.1)
        finally:
            del self._awaiting[batch]
        stored, first_failure = replies.stored_prefix()
        if first_failure is _NO_STREAM:
            # The server lost the stream (fresh storage after a restart): provision it.
            await self._bus.provision_own_stream()
        return stored

    async def _reply_inbox(self, client: Client) -> str:
        """The relay's reply subjects' prefix on this client, subscribed on first use."""
        if self._inbox_client is not client:
            inbox = client.new_inbox()
            await client.subscribe(f"{inbox}.*.*", cb=self._on_reply)
            self._inbox_client, self._inbox = client, inbox
        return self._inbox

    async def _on_reply(self, message: Msg) -> None:
        batch_and_place, _, place = message.subject.rpartition(".")
        replies = self._awaiting.get(batch_and_place.rpartition(".")[2])
        if replies is None or not place.isdigit():
            return  # a batch the relay stopped waiting for: it is published again
        if message.headers and message.headers.get(Header.STATUS) == NO_RESPONDERS_STATUS:
            replies.record(int(place), _NO_STREAM)
            return
        try:
            answer = json.loads(message.data)
        except ValueError:
            answer = None
        stored = isinstance(answer, dict) and "error" not in answer
        replies.record(int(place), _STORED if stored else _REFUSED)

    async def prune_published(self, older_than: timedelta | None = None) -> int:
        """Delete events published longer ago than the retention; JetStream keeps them."""
        cutoff = utcnow() - (older_than if older_than is not None else self._retention)
        async with self._sessions() as session:
            connection = await session.connection()
            result = await connection.execute(
                delete(OutboxEvent).where(col(OutboxEvent.published_at) < cutoff))
            await session.commit()
            return int(result.rowcount or 0)

    async def _run(self) -> None:
        next_prune = time.monotonic() + self._prune_every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
            try:
                while await self.publish_pending(mark_later=True) == self._batch_size:
                    pass
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self._prune_every
                    await self.prune_published()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_failed", error=type(exc).__name__)
                await asyncio.sleep(self._poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self._marker = asyncio.create_task(self._mark_in_background(), name="outbox-marker")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._marker)
        self._task = self._marker = None
        # What was published is marked before the process ends, so nothing is sent twice.
        try:
            await self.flush_marks()
        except Exception as exc:
            log.warning("outbox_mark_failed", error=type(exc).__name__)


#: What JetStream answered to one publish.
_STORED, _REFUSED, _NO_STREAM = "stored", "refused", "no-stream"


class _Replies:
    """JetStream's answers to one batch of publishes, by their place in the batch."""

    __slots__ = ("complete", "missing", "outcomes")

    def __init__(self, size: int) -> None:
        self.outcomes: list[str | None] = [None] * size
        self.missing = size
        self.complete = asyncio.Event()
        if not size:
            self.complete.set()

    def record(self, place: int, outcome: str) -> None:
        if place < len(self.outcomes) and self.outcomes[place] is None:
            self.outcomes[place] = outcome
            self.missing -= 1
            if not self.missing:
                self.complete.set()

    def expect_only(self, sent: int) -> None:
        """Only the first ``sent`` went out: the others will get no answer."""
        self.missing -= sum(outcome is None for outcome in self.outcomes[sent:])
        del self.outcomes[sent:]
        if not self.missing:
            self.complete.set()

    def stored_prefix(self) -> tuple[int, str | None]:
        """How many, from the first, JetStream stored; and what came of the next one."""
        for place, outcome in enumerate(self.outcomes):
            if outcome != _STORED:
                return place, outcome
        return len(self.outcomes), None


def _unpublished(found: Sequence[Any], in_flight: set[int], batch_size: int) -> list[Any]:
    """The batch to publish: rows read, less those published but not yet marked."""
    return [row for row in found if row[0] not in in_flight][:batch_size]


class PublishIncompleteError(Exception):
    """JetStream acknowledged only part of a batch; the rest stays in the outbox."""

    def __init__(self, acked: int, total: int) -> None:
        super().__init__(f"{acked} of {total} events acknowledged")
        self.acked = acked
        self.total = total
