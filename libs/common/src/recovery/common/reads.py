"""The kit's read path for request handlers: on PostgreSQL a short async session; on SQLite
a synchronous read-only connection used in the event loop itself (``kit.reads``).

The kit's SQLite engine runs its statements in the loop too (``db.InLoopSqliteConnection``);
this reader adds a connection of its own in autocommit, so a read never queues behind a write
transaction's lock, and runs ``Prepared`` statements on the driver directly, without
SQLAlchemy's per-execution work. In WAL mode a reader never waits for a writer, so a short
indexed read costs tens of microseconds and blocks nothing. Use it for short, indexed reads
only: a long scan here stalls every other request of the process.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import is_sqlite

__all__ = ["Prepared", "Reads", "SessionReads", "SqliteInLoopReads", "reads_for_url"]


class Prepared:
    """A statement built once and run many times (a module constant), which the SQLite
    reader compiles once and then runs on the driver directly, skipping SQLAlchemy's
    per-execution work (a fifth of a one-row read). Its parameters are ``bindparam``s
    given at each call."""

    __slots__ = ("plan", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        #: (SQL, parameter names in order, their values when not given), or False where
        #: the driver path does not apply; None until the first run.
        self.plan: Plan | bool | None = None


Statement = Executable | Prepared
Plan = tuple[str, tuple[tuple[str, Any], ...]]


class Reads(Protocol):
    async def all(self, statement: Statement,
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

    async def all(self, statement: Statement,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        if isinstance(statement, Prepared):
            statement = statement.statement
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
        self.driver: Any = self.connection.connection.dbapi_connection

    async def all(self, statement: Statement,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        if isinstance(statement, Prepared):
            if statement.plan is None:
                statement.plan = self._plan(statement.statement)
            if isinstance(statement.plan, tuple):
                sql, binds = statement.plan
                given = params or {}
                values = [given.get(name, value) for name, value in binds]
                cursor = self.driver.cursor()
                try:
                    rows: list[Any] = cursor.execute(sql, values).fetchall()
                    return rows
                finally:
                    cursor.close()
            statement = statement.statement
        return self.connection.execute(statement, params).all()

    def _plan(self, statement: Executable) -> Plan | bool:
        """The SQL and parameter order, when no value needs SQLAlchemy's conversion on the
        way in or out (plain strings and numbers); False otherwise."""
        dialect = self.engine.dialect
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        if (compiled._bind_processors or compiled.post_compile_params
                or compiled.literal_execute_params or compiled.positiontup is None):
            return False
        for column in compiled._result_columns:
            if column[3].dialect_impl(dialect).result_processor(dialect, None) is not None:
                return False
        defaults = compiled.params
        return compiled.string, tuple((name, defaults.get(name))
                                      for name in compiled.positiontup)

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


def reads_for_url(url: str, sessions: async_sessionmaker[AsyncSession]) -> Reads:
    """The in-loop reader for an SQLite file; the kit's sessions otherwise (an in-memory
    SQLite database is private to its connection, so it is read through the sessions too)."""
    on_disk = is_sqlite(url) and make_url(url).database not in (None, "", ":memory:")
    return SqliteInLoopReads(url) if on_disk else SessionReads(sessions)
