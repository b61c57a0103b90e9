"""Where goal reads run. On PostgreSQL: an async session of the kit. On SQLite: a synchronous
read-only connection used in the event loop itself.

Every aiosqlite call is a hand-off to its worker thread and back (about six per query with
SQLAlchemy); under load those hand-offs, not SQLite, were most of a goal read. In WAL mode a
reader never waits for a writer, so a short indexed read in the loop costs tens of
microseconds and blocks nothing. Writes stay on the async engine: a writer can wait for
the database lock, which must never happen in the loop.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.app import ServiceKit
from recovery.common.db import is_sqlite

EXTRA = "goal_reads"


class Reads(Protocol):
    async def all(self, statement: Executable,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Every row the statement selects (rows unpack like tuples)."""
        ...


class SessionReads:
    """Reads through a short async session of the kit (PostgreSQL with asyncpg)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def all(self, statement: Executable,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        async with self.sessions() as session:
            result = await session.exec(statement, params=params)  # type: ignore[call-overload]
            rows: Sequence[Any] = result.all()
            return rows


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=1000")
    # WAL is what lets this reader never wait; the kit's engine sets it too, but a read may
    # come first.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


class SqliteInLoopReads:
    """Reads on one synchronous, read-only SQLite connection, in the event loop."""

    def __init__(self, async_url: str) -> None:
        url = make_url(async_url).set(drivername="sqlite")
        self.engine: Engine = create_engine(url, poolclass=StaticPool,
                                            connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", _read_only)
        # Autocommit: each SELECT is its own read transaction, so it sees every commit so far.
        self.connection = self.engine.execution_options(isolation_level="AUTOCOMMIT").connect()

    async def all(self, statement: Executable,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        return self.connection.execute(statement, params).all()

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


def reads_for(kit: ServiceKit) -> Reads:
    """The read path of this service process, made on first use."""
    reads: Reads | None = kit.extras.get(EXTRA)
    if reads is None:
        url = kit.settings.database_url
        on_disk = is_sqlite(url) and make_url(url).database not in (None, "", ":memory:")
        reads = SqliteInLoopReads(url) if on_disk else SessionReads(kit.sessions)
        kit.extras[EXTRA] = reads
    return reads
