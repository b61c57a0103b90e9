"""The outbox relay: publishes committed events to JetStream, in order, exactly once."""

import asyncio
import contextlib

import structlog
from nats.js.api import PubAck
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.events.bus import EventBus
from recovery.common.events.outbox import OutboxEvent
from recovery.common.timeutil import utcnow

log = structlog.get_logger(__name__)


class OutboxRelay:
    """Woken at commit, and polling as a safety net; publishes in batches.

    Each message carries ``Nats-Msg-Id`` = event id, so a batch republished after a crash
    between publish and mark is dropped by JetStream as a duplicate.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventBus, *,
                 poll_seconds: float = 0.5, batch_size: int = 500) -> None:
        self._sessions = sessions
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        js = self._bus.js
        if js is None or not self._bus.connected:
            return 0
        async with self._sessions() as session:
            rows = (await session.exec(
                select(OutboxEvent)
                .where(col(OutboxEvent.published_at).is_(None))
                .order_by(col(OutboxEvent.position))
                .limit(self._batch_size)
            )).all()
            if not rows:
                return 0
            from recovery.common.events.envelope import CloudEvent

            futures: list[asyncio.Future[PubAck]] = []
            for row in rows:
                payload = CloudEvent.model_validate(row.envelope).to_json()
                futures.append(await js.publish_async(
                    row.type, payload, headers={"Nats-Msg-Id": row.event_id}))
            await asyncio.gather(*futures)
            await session.exec(  # type: ignore[call-overload]
                update(OutboxEvent)
                .where(col(OutboxEvent.position).in_([r.position for r in rows]))
                .values(published_at=utcnow())
            )
            await session.commit()
            self.published += len(rows)
            return len(rows)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
            try:
                while await self.publish_pending() == self._batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_publish_failed", error=type(exc).__name__)
                await asyncio.sleep(self._poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
