"""The kit's running parts for one service process (engine, verifier, audit, events)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import AuditTrail
from recovery.common.auth import TokenVerifier
from recovery.common.data import Reads, Writes
from recovery.common.db import create_engine, session_factory
from recovery.common.events.bus import EventBus
from recovery.common.events.consumer import ConsumerRunner, EventHandler
from recovery.common.events.outbox import WAKE_RELAY
from recovery.common.events.relay import OutboxRelay
from recovery.common.settings import Settings


@dataclass
class ServiceKit:
    """Everything the kit runs for one service process; lives on ``app.state.kit``."""

    settings: Settings
    #: The service's engine: transactions (``writes``, ``sessions``), migrations, readiness.
    engine: AsyncEngine
    #: The same database in autocommit, for ``reads``.
    read_engine: AsyncEngine
    #: ORM sessions, for changes that load and change records.
    sessions: async_sessionmaker[AsyncSession]
    #: Short reads and write transactions of prebuilt statements (``recovery.common.data``).
    reads: Reads
    writes: Writes
    verifier: TokenVerifier
    audit: AuditTrail
    bus: EventBus
    relay: OutboxRelay
    consumers: ConsumerRunner
    migrations_dir: Path
    extras: dict[str, Any] = field(default_factory=dict)


def build_kit(settings: Settings, migrations_dir: Path,
              handlers: Sequence[EventHandler] = ()) -> ServiceKit:
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    read_engine = create_engine(settings.database_url, pool_size=settings.database_pool_size,
                                autocommit=True)
    bus = EventBus(settings)
    sessions = session_factory(engine)
    relay = OutboxRelay(sessions, bus, poll_seconds=settings.outbox_poll_seconds,
                        batch_size=settings.outbox_batch_size)
    sessions.configure(info={WAKE_RELAY: relay.wake})
    writes = Writes(engine, relay.wake)
    return ServiceKit(
        settings=settings,
        engine=engine,
        read_engine=read_engine,
        sessions=sessions,
        reads=Reads(read_engine),
        writes=writes,
        verifier=TokenVerifier(settings),
        audit=AuditTrail(writes, flush_every=settings.audit_flush_seconds),
        bus=bus,
        relay=relay,
        consumers=ConsumerRunner(bus, sessions, settings, handlers),
        migrations_dir=migrations_dir,
    )
