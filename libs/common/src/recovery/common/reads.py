"""The kit's read path for request handlers: on PostgreSQL a short async session; on SQLite
a synchronous read-only connection used in the event loop itself (``kit.reads``).

Every aiosqlite call is a hand-off to its worker thread and back (about six per query with
SQLAlchemy); under load those hand-offs, not SQLite, were most of a read. In WAL mode a reader
never waits for a writer, so a short indexed read in the loop costs tens of microseconds and
blocks nothing. Writes stay on the async engine: a writer can wait for the database lock,
which must never happen in the loop. Use it for short, indexed reads only: a long scan here
stalls every other request of the process.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import is_sqlite

__all__ = ["Reads", "SessionReads", "SqliteInLoopReads", "reads_for_url"]


class Reads(Protocol):
    async def all(self, statement: Executable,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Every row the statement selects (rows unpack like tuples)."""
        ...

    def close(self) -> None:
        """Release the connection, if the read path holds one."""
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

    def close(self) -> None:
        """The sessions belong to the kit, which disposes of its engine itself."""


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


def reads_for_url(url: str, sessions: async_sessionmaker[AsyncSession]) -> Reads:
    """The in-loop reader for an SQLite file; the kit's sessions otherwise (an in-memory
    SQLite database is private to its connection, so it is read through the sessions too)."""
    on_disk = is_sqlite(url) and make_url(url).database not in (None, "", ":memory:")
    return SqliteInLoopReads(url) if on_disk else SessionReads(sessions)
