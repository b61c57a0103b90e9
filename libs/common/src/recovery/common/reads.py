"""The kit's read path for request handlers: on PostgreSQL a short async session; on SQLite
a synchronous read-only connection used in the event loop itself (``kit.reads``).

The kit's SQLite engine runs its statements in the loop too (``db.InLoopSqliteConnection``);
this reader adds a connection of its own in autocommit, so a read never queues behind a write
transaction's lock, and runs ``Prepared`` statements on the driver directly, without
SQLAlchemy's per-execution work. In WAL mode a reader never waits for a writer, so a short
indexed read costs tens of microseconds and blocks nothing. Use it for short, indexed reads
only: a long scan here stalls every other request of the process.
"""

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import Dialect, Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import JSON_CODEC, is_sqlite

__all__ = ["DriverPlan", "Prepared", "Reads", "SessionReads", "SqliteInLoopReads", "driver_plan",
           "reads_for_url"]


class Prepared:
    """A statement built once and run many times (a module constant), which the SQLite
    paths compile once and then run on the driver directly, skipping SQLAlchemy's
    per-execution work (a fifth of a one-row read, most of a short write). Its parameters
    are ``bindparam``s given at each call."""

    __slots__ = ("plan", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        #: How the driver runs it, or False where the driver path does not apply; None
        #: until the first run.
        self.plan: DriverPlan | bool | None = None


Statement = Executable | Prepared
Processor = Callable[[Any], Any] | None


class DriverPlan:
    """A compiled statement's SQL, its parameters in order (with the value each takes when
    not given, and the conversion SQLAlchemy would apply on the way in), and the conversion
    of each result column on the way out: what SQLAlchemy does per execution, done once."""

    __slots__ = ("binds", "results", "sql")

    def __init__(self, sql: str, binds: tuple[tuple[str, Any, Processor], ...],
                 results: tuple[Processor, ...] | None) -> None:
        self.sql, self.binds, self.results = sql, binds, results

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> "DriverPlan | None":
        """The plan, or None when the statement needs SQLAlchemy at each run (an expanding
        ``IN``, literal parameters)."""
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        if (compiled.post_compile_params or compiled.literal_execute_params
                or compiled.positiontup is None):
            return None
        processors = compiled._bind_processors
        defaults = compiled.params
        binds = tuple((name, defaults.get(name), processors.get(name))
                      for name in compiled.positiontup)
        results = tuple(column[3].dialect_impl(dialect).result_processor(dialect, None)
                        for column in compiled._result_columns)
        return cls(compiled.string, binds,
                   results if any(p is not None for p in results) else None)

    def values(self, params: dict[str, Any] | None) -> list[Any]:
        given = params or {}
        return [given.get(name, default) if process is None else process(given.get(name, default))
                for name, default, process in self.binds]

    def rows(self, driver: Any, params: dict[str, Any] | None) -> list[Any]:
        cursor = driver.cursor()
        try:
            rows: list[Any] = cursor.execute(self.sql, self.values(params)).fetchall()
        finally:
            cursor.close()
        if self.results is None:
            return rows
        processors = self.results
        return [tuple(value if p is None else p(value)
                      for p, value in zip(processors, row, strict=True)) for row in rows]

    def run(self, driver: Any, params: dict[str, Any] | None) -> int:
        """Execute a write; the number of rows it changed."""
        cursor = driver.cursor()
        try:
            return int(cursor.execute(self.sql, self.values(params)).rowcount)
        finally:
            cursor.close()


def driver_plan(statement: Prepared, dialect: Dialect) -> DriverPlan | None:
    """The statement's driver plan, made on first use for ``dialect``."""
    if statement.plan is None:
        statement.plan = DriverPlan.of(statement.statement, dialect) or False
    return statement.plan if isinstance(statement.plan, DriverPlan) else None


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
            # Core's execution, not the session's: rows as tuples, one column or many.
            connection = await session.connection()
            rows: Sequence[Any] = (await connection.execute(statement, params)).all()
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
                                            connect_args={"check_same_thread": False},
                                            **JSON_CODEC)
        event.listen(self.engine, "connect", _read_only)
        # Autocommit: each SELECT is its own read transaction, so it sees every commit so far.
        self.connection = self.engine.execution_options(isolation_level="AUTOCOMMIT").connect()
        self.driver: Any = self.connection.connection.dbapi_connection

    async def all(self, statement: Statement,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        if isinstance(statement, Prepared):
            plan = driver_plan(statement, self.engine.dialect)
            if plan is not None:
                return plan.rows(self.driver, params)
            statement = statement.statement
        return self.connection.execute(statement, params).all()

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


def reads_for_url(url: str, sessions: async_sessionmaker[AsyncSession]) -> Reads:
    """The in-loop reader for an SQLite file; the kit's sessions otherwise (an in-memory
    SQLite database is private to its connection, so it is read through the sessions too)."""
    on_disk = is_sqlite(url) and make_url(url).database not in (None, "", ":memory:")
    return SqliteInLoopReads(url) if on_disk else SessionReads(sessions)
