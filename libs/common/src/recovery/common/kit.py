"""The kit's running parts for one service process (engine, verifier, audit, events)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import AuditTrail
from recovery.common.auth import TokenVerifier
from recovery.common.db import (
    background_engine,
    create_engine,
    session_factory,
    wal_fold,
)
from recovery.common.events.bus import EventBus
from recovery.common.events.consumer import ConsumerRunner, EventHandler
from recovery.common.events.outbox import WAKE_RELAY
from recovery.common.events.relay import OutboxRelay
from recovery.common.reads import Reads, reads_for_url
from recovery.common.settings import Settings
from recovery.common.writes import Writes, writes_for


@dataclass
class ServiceKit:
    """Everything the kit runs for one service process; lives on ``app.state.kit``."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    #: The WAL checkpoints' engine (``db.background_engine``).
    background_engine: AsyncEngine
    #: Short transactions of prebuilt statements for request handlers and the audit trail
    #: (see ``recovery.common.writes``); connections opened on first use, closed with the app.
    writes: Writes
    verifier: TokenVerifier
    audit: AuditTrail
    bus: EventBus
    relay: OutboxRelay
    consumers: ConsumerRunner
    migrations_dir: Path
    extras: dict[str, Any] = field(default_factory=dict)
    _reads: Reads | None = field(default=None, init=False, repr=False)

    @property
    def reads(self) -> Reads:
        """Short indexed reads for request handlers (see ``recovery.common.reads``); made on
        first use, closed with the app."""
        if self._reads is None:
            self._reads = reads_for_url(self.settings.database_url, self.sessions)
        return self._reads

    def close_connections(self) -> None:
        """Close the connections of ``reads`` and ``writes``."""
        if self._reads is not None:
            self._reads.close()
        self._reads = None
        self.writes.close()


def build_kit(settings: Settings, migrations_dir: Path,
              handlers: Sequence[EventHandler] = ()) -> ServiceKit:
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    batch_engine = background_engine(engine)
    bus = EventBus(settings)
    sessions = session_factory(engine)
    fold_log = wal_fold(batch_engine)
    relay = OutboxRelay(sessions, bus,
                        poll_seconds=settings.outbox_poll_seconds,
                        batch_size=settings.outbox_batch_size)
    sessions.configure(info={WAKE_RELAY: relay.wake})
    writes = writes_for(engine, sessions, relay.wake)
    return ServiceKit(
        settings=settings,
        engine=engine,
        sessions=sessions,
        background_engine=batch_engine,
        writes=writes,
        verifier=TokenVerifier(settings),
        audit=AuditTrail(writes, flush_every=settings.audit_flush_seconds,
                         fold_log=fold_log),
        bus=bus,
        relay=relay,
        consumers=ConsumerRunner(bus, sessions, settings, handlers),
        migrations_dir=migrations_dir,
    )
