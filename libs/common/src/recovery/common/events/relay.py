"""The outbox relay: publishes committed events to JetStream, in order, exactly once.

Woken at commit and polling as a safety net. One transaction per batch reads the unpublished
rows, publishes them, waits for JetStream's acknowledgements and marks the acknowledged ones
published. On PostgreSQL that transaction first takes an advisory lock, so one replica of a
service publishes at a time and the next one reads only what the last one left unmarked: no
row goes out twice and the events of a record keep their order. On SQLite (development, one
process) the same transaction runs without it.

Each message carries ``Nats-Msg-Id`` = event id, so a batch published again after a crash
between publish and commit is dropped by JetStream as a duplicate. The envelope goes out as
the text stored, never decoded and encoded again.
"""

import asyncio
import contextlib
import time
import zlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from nats.js.api import Header, PubAck
from nats.js.errors import NoStreamResponseError
from prometheus_client import Counter
from sqlalchemy import Text, bindparam, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

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

#: The unpublished events in order: position, id, type and the envelope as stored (text).
PENDING = (
    select(col(OutboxEvent.position), col(OutboxEvent.event_id), col(OutboxEvent.type),
           cast(col(OutboxEvent.envelope), Text))
    .where(col(OutboxEvent.published_at).is_(None))
    .order_by(col(OutboxEvent.position))
    .limit(bindparam("limit")))
MARK_PUBLISHED = (
    update(OutboxEvent)
    .where(col(OutboxEvent.position).in_(bindparam("positions", expanding=True)))
    .values(published_at=bindparam("at", type_=UTCDateTime())))
#: nats-py's JetStream context holds up to 4,000 publishes awaiting their acknowledgement (its
#: default); a batch stays within that, so no publish of a batch waits for room.
MAX_BATCH_SIZE = 4000
#: Every service has its own database, so one fixed advisory-lock key per database suffices.
RELAY_LOCK_KEY = zlib.crc32(b"recovery.outbox_relay")
TAKE_RELAY_LOCK = select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))


class OutboxRelay:
    """Publishes unpublished outbox rows in position order, a batch at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventBus, *,
                 poll_seconds: float = 0.5, batch_size: int = 500,
                 ack_timeout: float = 5.0,
                 retention: timedelta = timedelta(days=7),
                 prune_every_seconds: float = 600.0) -> None:
        self._sessions = sessions
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._batch_size = min(batch_size, MAX_BATCH_SIZE)
        self._ack_timeout = ack_timeout
        self._retention = retention
        self._prune_every = prune_every_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        # A backlog written while NATS was down goes out as soon as it is back.
        bus.on_connected(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many were published.

        Only the acknowledged prefix of a batch is marked published, in the transaction
        that read it, so a refusal part-way never lets a later event overtake an earlier
        one: the refused event and those after it are read again by the next batch.
        """
        if self._bus.js is None or not self._bus.connected:
            return 0
        async with self._sessions() as session:
            connection = await session.connection()
            if (connection.dialect.name == "postgresql"
                    and not (await connection.execute(TAKE_RELAY_LOCK)).scalar_one()):
                return 0  # another replica is publishing; its batches take these rows too
            rows = (await connection.execute(PENDING, {"limit": self._batch_size})).all()
            if not rows:
                return 0
            acked = await self._publish(rows)
            if acked:
                await self._mark_published(connection, rows[:acked])
            # Releases the advisory lock: the next reader sees these rows marked.
            await session.commit()
        if acked:
            self.published += acked
            PUBLISHED.labels(self._bus.settings.stream_name).inc(acked)
        if acked < len(rows):
            PUBLISH_FAILURES.labels(self._bus.settings.stream_name).inc()
            raise PublishIncompleteError(acked, len(rows))
        return acked

    @staticmethod
    async def _mark_published(connection: AsyncConnection, rows: Sequence[Any]) -> None:
        await connection.execute(MARK_PUBLISHED,
                                 {"positions": [row[0] for row in rows], "at": utcnow()})

    async def _publish(self, rows: Sequence[Any]) -> int:
        """Publish rows (position, event id, type, envelope text) to JetStream; the length of
        the prefix JetStream acknowledged."""
        js = self._bus.js
        assert js is not None
        acks: list[asyncio.Future[PubAck]] = []
        try:
            for _, event_id, event_type, envelope in rows:
                # No ``wait_stall``: waiting for room with a timeout returns to the event loop
                # at every publish, so the batch would leave one message per socket write.
                acks.append(await js.publish_async(
                    event_type, envelope.encode(), headers={Header.MSG_ID: event_id}))
        except Exception as exc:  # what went out before the failure may still be stored
            log.warning("outbox_publish_failed", error=type(exc).__name__)
        try:
            await self._wait_for_acks(acks)
        finally:
            for ack in acks:
                ack.cancel()  # no answer in time: published again with the next batch
        # Every answer is looked at, so asyncio reports none as lost.
        refusals = [None if ack.cancelled() else ack.exception() for ack in acks]
        stored = next((place for place, ack in enumerate(acks)
                       if ack.cancelled() or refusals[place] is not None), len(acks))
        if stored < len(acks) and isinstance(refusals[stored], NoStreamResponseError):
            # The server lost the stream (fresh storage after a restart): provision it.
            await self._bus.provision_own_stream()
        return stored

    async def _wait_for_acks(self, acks: list[asyncio.Future[PubAck]]) -> None:
        """Wait for JetStream's answers, at most ``ack_timeout``; answers lost with a dropped
        connection never come, so stop waiting when it drops."""
        deadline = time.monotonic() + self._ack_timeout
        waiting = {ack for ack in acks if not ack.done()}
        while waiting and self._bus.connected:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            _, waiting = await asyncio.wait(waiting, timeout=min(left, 0.1))

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
                while await self.publish_pending() == self._batch_size:
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

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None


class PublishIncompleteError(Exception):
    """JetStream acknowledged only part of a batch; the rest stays in the outbox."""

    def __init__(self, acked: int, total: int) -> None:
        super().__init__(f"{acked} of {total} events acknowledged")
        self.acked = acked
        self.total = total
