"""A toy service for the events tests: its tables, a change that records an event, a
consumer effect to count, and the bus, relay and consumers running against real NATS."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import AuditEvent
from recovery.common.events.bus import EventBus
from recovery.common.events.consumer import ConsumerRunner, EventHandler, ProcessedEvent
from recovery.common.events.envelope import CloudEvent
from recovery.common.events.outbox import WAKE_RELAY, OutboxEvent, record_event
from recovery.common.events.relay import OutboxRelay
from recovery.common.settings import Settings

SERVICE = "toy"
STREAM = "TOY"
CREATED = "recovery.toy.record.created"
UPDATED = "recovery.toy.record.updated"

toy_metadata = MetaData()
toy_record = Table(
    "toy_record", toy_metadata,
    Column("id", String(36), primary_key=True),
)
#: One row per time a consumer's effect ran and committed; duplicates would show here.
toy_effect = Table(
    "toy_effect", toy_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(80), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("record_id", String(36), nullable=False),
)
#: The kit's tables, as every service's first migration creates them.
KIT_TABLES = [SQLModel.metadata.tables[model.__tablename__]
              for model in (OutboxEvent, ProcessedEvent, AuditEvent)]
OUTBOX = SQLModel.metadata.tables[OutboxEvent.__tablename__]
PROCESSED = SQLModel.metadata.tables[ProcessedEvent.__tablename__]


def toy_settings(nats_url: str, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "service": SERVICE, "environment": "test", "database_url": database_url,
        "nats_url": nats_url, "consumer_max_deliver": 3,
        "consumer_backoff_seconds": [0.2, 0.4], "outbox_poll_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


async def create_toy_schema(engine: AsyncEngine) -> None:
    """The kit's tables (as a service's first migration creates them) and the toy's."""
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all, tables=KIT_TABLES)
        await connection.run_sync(toy_metadata.create_all)


@dataclass(frozen=True)
class Recorded:
    """An event a test wrote: its id and subject (the record's id)."""

    id: str
    subject: str


async def write_record(sessions: async_sessionmaker[AsyncSession], record_id: str,
                       event_type: str = CREATED, *, commit: bool = True) -> Recorded:
    """A change and its event in one transaction, as a service route does it."""
    async with sessions() as session:
        connection = await session.connection()
        if event_type == CREATED:
            await connection.execute(insert(toy_record).values(id=record_id))
        event_id = record_event(session, event_type, record_id, {"record_id": record_id})
        if commit:
            await session.commit()
        else:
            await session.rollback()
        return Recorded(event_id, record_id)


async def count_rows(sessions: async_sessionmaker[AsyncSession], table: Any,
                     *where: Any) -> int:
    async with sessions() as session:
        connection = await session.connection()
        statement = select(func.count()).select_from(table)
        for condition in where:
            statement = statement.where(condition)
        return int((await connection.execute(statement)).scalar_one())


async def unpublished(sessions: async_sessionmaker[AsyncSession]) -> int:
    return await count_rows(sessions, OUTBOX, OUTBOX.c.published_at.is_(None))


async def effects_by_record(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        connection = await session.connection()
        rows = await connection.execute(
            select(toy_effect.c.record_id, func.count()).group_by(toy_effect.c.record_id))
        return {record_id: int(count) for record_id, count in rows.all()}


@dataclass
class Attempts:
    """When a toy handler ran, per record id, and how it should behave."""

    times: dict[str, list[float]]
    failures_before_success: int = 0
    always_fail: bool = False
    #: Record ids whose events always fail.
    poisoned: frozenset[str] = frozenset()
    #: Until this monotonic time the handler finds its database unreachable.
    outage_until: float = 0.0

    def count(self, record_id: str) -> int:
        return len(self.times.get(record_id, []))


def effect_handler(durable: str, attempts: Attempts,
                   subjects: Sequence[str] = ("recovery.toy.>",)) -> EventHandler:
    """Writes one effect row per event; fails as told, after writing, to prove the rollback."""

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        tries = attempts.times.setdefault(event.subject, [])
        tries.append(time.monotonic())
        connection = await session.connection()
        await connection.execute(insert(toy_effect).values(
            consumer=durable, event_id=event.id, record_id=event.subject))
        if time.monotonic() < attempts.outage_until:
            raise OperationalError("INSERT INTO toy_effect", {}, ConnectionRefusedError())
        if (attempts.always_fail or event.subject in attempts.poisoned
                or len(tries) <= attempts.failures_before_success):
            raise RuntimeError("the toy effect failed")

    return EventHandler(durable=durable, stream=STREAM, subjects=tuple(subjects), handle=handle)


@dataclass
class Running:
    bus: EventBus
    relay: OutboxRelay
    consumers: ConsumerRunner


@asynccontextmanager
async def running_events(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                         handlers: Sequence[EventHandler] = (), *,
                         relay: bool = True,
                         ack_wait_seconds: float = 30.0) -> AsyncIterator[Running]:
    """The bus, relay and consumers as a service runs them, stopped cleanly afterwards."""
    bus = EventBus(settings, reconnect_wait=0.05, max_backoff=0.2)
    outbox_relay = OutboxRelay(sessions, bus, poll_seconds=settings.outbox_poll_seconds,
                               batch_size=settings.outbox_batch_size)
    sessions.configure(info={WAKE_RELAY: outbox_relay.wake})
    consumers = ConsumerRunner(bus, sessions, settings, handlers, fetch_seconds=0.3,
                               retry_seconds=0.1, ack_wait_seconds=ack_wait_seconds)
    bus.start()
    if relay:
        outbox_relay.start()
    consumers.start()
    try:
        yield Running(bus, outbox_relay, consumers)
    finally:
        await consumers.stop()
        await outbox_relay.stop()
        await bus.stop()
        sessions.configure(info={})


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0,
                     every: float = 0.02) -> None:
    """Wait until ``check`` holds, failing the test when it does not within the time."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(NotFoundError):  # a stream or consumer not made yet
            if await check():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


async def stream_messages(js: JetStreamContext, stream: str) -> list[RawStreamMsg]:
    """Every message the stream holds, in stream order."""
    info = await js.stream_info(stream)
    first, last = info.state.first_seq, info.state.last_seq
    if info.state.messages == 0:
        return []
    return [await js.get_msg(stream, seq) for seq in range(first, last + 1)]


@asynccontextmanager
async def every_publish(nats_url: str, subjects: str = "recovery.toy.>"
                        ) -> AsyncIterator[list[Msg]]:
    """Every message published on ``subjects`` while inside, seen on a plain NATS
    subscription: it receives the copies JetStream drops as duplicates too."""
    seen: list[Msg] = []

    async def keep(message: Msg) -> None:
        seen.append(message)

    connection = await nats.connect(nats_url)
    try:
        await connection.subscribe(subjects, cb=keep)
        await connection.flush()
        yield seen
    finally:
        await connection.drain()
