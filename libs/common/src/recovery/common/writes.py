"""The kit's write path for a request's short transaction of prebuilt statements
(``kit.writes``): on SQLite the statements run on the driver in the event loop; on
PostgreSQL through a session of the kit.

A change made with the ORM's unit of work costs a few milliseconds of CPU in SQLAlchemy
(identity map, flush ordering, one execution context per statement, the pool's checkout and
reset), while SQLite does the work itself in tens of microseconds. Here a transaction takes
the process's write lock (``db.SqliteWriteLock``, shared with the kit's engines), begins
``IMMEDIATE`` so what it reads cannot change under it, and runs ``Prepared`` statements with
the conversions SQLAlchemy would apply (``reads.DriverPlan``). Use it for a handler's few
indexed reads and writes; a long transaction here holds every other writer of the process.

Both backends run the same statements and raise the same errors: ``IntegrityError`` for a
constraint, ``StaleDataError`` when a guarded change finds the row moved on, so
``versioning.retry_lost_races`` retries either.
"""

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import SqliteWriteLock, in_loop_sqlite, sqlite_connector, write_lock_of
from recovery.common.events.outbox import OutboxEvent, outbox_row, record_event
from recovery.common.reads import Prepared, driver_plan

__all__ = ["SessionWrites", "SqliteInLoopWrites", "Transaction", "Writes", "row_of", "writes_for"]

INSERT_OUTBOX = Prepared(OutboxEvent.__table__.insert())  # type: ignore[attr-defined]


class Transaction(Protocol):
    #: The database's dialect ("sqlite", "postgresql"), for the statements built per dialect
    #: (an upsert).
    dialect: str

    async def all(self, statement: Prepared,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Every row the statement selects, as tuples."""
        ...

    async def run(self, statement: Prepared, params: dict[str, Any] | None = None, *,
                  expect: int | None = None) -> int:
        """Execute a write; the rows it changed. With ``expect``, any other count raises
        ``StaleDataError`` (a guarded update that lost its race), undoing the transaction."""
        ...

    async def run_many(self, statement: Prepared, rows: Sequence[dict[str, Any]]) -> None:
        """Execute a write once for each row (a batch of inserts)."""
        ...

    async def record_event(self, event_type: str, subject: str,
                           data: dict[str, Any]) -> str:
        """The event's outbox row, published only if the transaction commits; its id."""
        ...


class Writes(Protocol):
    def transaction(self) -> Any:
        """``async with writes.transaction() as tx``: committed when the block ends, rolled
        back when it raises."""
        ...

    def close(self) -> None:
        ...


def row_of(record: SQLModel) -> dict[str, Any]:
    """A table model's column values, as an ``INSERT`` of its table takes them."""
    table: Any = type(record).__table__  # type: ignore[attr-defined]
    return {column.key: getattr(record, column.key) for column in table.columns}


def _checked(count: int, expect: int | None, statement: Prepared) -> int:
    if expect is not None and count != expect:
        raise StaleDataError(f"{count} rows changed where {expect} were expected: "
                             f"{statement.statement}")
    return count


def _integrity_error(statement: Prepared, params: dict[str, Any] | None,
                     error: sqlite3.IntegrityError) -> IntegrityError:
    """The driver's constraint error as SQLAlchemy raises it on the session path. (Caught
    where it is raised: a context manager around each statement cost a signature ~8 µs.)"""
    return IntegrityError(str(statement.statement), params, error)


class _SqliteTransaction:
    __slots__ = ("driver", "events", "sql_dialect")
    dialect = "sqlite"

    def __init__(self, driver: sqlite3.Connection, sql_dialect: Dialect) -> None:
        self.driver, self.sql_dialect, self.events = driver, sql_dialect, 0

    def _plan(self, statement: Prepared) -> Any:
        plan = driver_plan(statement, self.sql_dialect)
        if plan is None:
            raise TypeError("a statement of kit.writes runs on the driver: no expanding or "
                            f"literal parameters ({statement.statement})")
        return plan

    async def all(self, statement: Prepared,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        rows: Sequence[Any] = self._plan(statement).rows(self.driver, params)
        return rows

    async def run(self, statement: Prepared, params: dict[str, Any] | None = None, *,
                  expect: int | None = None) -> int:
        try:
            count = self._plan(statement).run(self.driver, params)
        except sqlite3.IntegrityError as exc:
            raise _integrity_error(statement, params, exc) from exc
        return _checked(count, expect, statement)

    async def run_many(self, statement: Prepared, rows: Sequence[dict[str, Any]]) -> None:
        plan = self._plan(statement)
        try:
            self.driver.executemany(plan.sql, [plan.values(row) for row in rows])
        except sqlite3.IntegrityError as exc:
            raise _integrity_error(statement, None, exc) from exc

    async def record_event(self, event_type: str, subject: str,
                           data: dict[str, Any]) -> str:
        row = outbox_row(event_type, subject, data)
        await self.run(INSERT_OUTBOX, row)
        self.events += 1
        event_id: str = row["event_id"]
        return event_id


class SqliteInLoopWrites:
    """Write transactions on plain ``sqlite3`` connections used in the event loop, queued on
    the kit's write lock. A connection serves one transaction at a time; a second one is
    opened only when a transaction goes on without the lock (see ``SqliteWriteLock``)."""

    def __init__(self, url: str, lock: SqliteWriteLock, dialect: Dialect,
                 wake_relay: Callable[[], None]) -> None:
        # Autocommit in the driver: the transaction's BEGIN and COMMIT are this class's.
        self.connect = sqlite_connector(url, isolation_level=None, check_same_thread=False)
        self.lock, self.dialect, self.wake_relay = lock, dialect, wake_relay
        self.idle: list[sqlite3.Connection] = []
        self.opened: list[sqlite3.Connection] = []

    def _connection(self) -> sqlite3.Connection:
        if self.idle:
            return self.idle.pop()
        connection = in_loop_sqlite(self.connect())
        self.opened.append(connection)
        return connection

    def transaction(self) -> "_InLoopTransaction":
        return _InLoopTransaction(self)

    def close(self) -> None:
        for connection in self.opened:
            connection.close()
        self.opened.clear()
        self.idle.clear()


class _InLoopTransaction:
    """One transaction of ``SqliteInLoopWrites``: the write lock and a connection from
    ``__aenter__`` to ``__aexit__``, committed unless the block raised. (A class, not a
    generator: the generator's own machinery cost a care contact a few microseconds.)"""

    __slots__ = ("driver", "holder", "tx", "writes")
    driver: sqlite3.Connection
    tx: "_SqliteTransaction"

    def __init__(self, writes: SqliteInLoopWrites) -> None:
        self.writes = writes
        self.holder = object()  # the lock's owner while this transaction holds it

    async def __aenter__(self) -> Transaction:
        writes = self.writes
        await writes.lock.take(self.holder)
        self.driver = driver = writes._connection()  # after the lock: waiters hold none
        try:
            driver.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._give_back()
            raise
        self.tx = _SqliteTransaction(driver, writes.dialect)
        return self.tx

    async def __aexit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        driver = self.driver
        try:
            if error_type is None:
                driver.execute("COMMIT")
        finally:
            try:  # rolled back when the block raised or the commit failed
                if driver.in_transaction:
                    driver.execute("ROLLBACK")
            finally:
                self._give_back()
        if error_type is None and self.tx.events:
            self.writes.wake_relay()

    def _give_back(self) -> None:
        self.writes.idle.append(self.driver)
        self.writes.lock.release(self.holder)


class _SessionTransaction:
    __slots__ = ("dialect", "session")

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    async def all(self, statement: Prepared,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        connection = await self.session.connection()
        rows: Sequence[Any] = (await connection.execute(statement.statement, params)).all()
        return rows

    async def run(self, statement: Prepared, params: dict[str, Any] | None = None, *,
                  expect: int | None = None) -> int:
        connection = await self.session.connection()
        result = await connection.execute(statement.statement, params)
        return _checked(int(result.rowcount), expect, statement)

    async def run_many(self, statement: Prepared, rows: Sequence[dict[str, Any]]) -> None:
        connection = await self.session.connection()
        await connection.execute(statement.statement, list(rows))

    async def record_event(self, event_type: str, subject: str,
                           data: dict[str, Any]) -> str:
        return record_event(self.session, event_type, subject, data)


class SessionWrites:
    """Write transactions through a session of the kit (PostgreSQL with asyncpg, and an
    in-memory SQLite database, which only the engine's connection can see)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.sessions() as session:
            yield _SessionTransaction(session)
            await session.commit()

    def close(self) -> None:
        """The sessions belong to the kit, which disposes of its engine itself."""


def writes_for(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession],
               wake_relay: Callable[[], None]) -> Writes:
    """In-loop transactions for an SQLite file of the kit's engine; the kit's sessions
    otherwise (an in-memory SQLite database is private to the engine's connection)."""
    lock = write_lock_of(engine)
    database = engine.url.database
    if lock is None or database in (None, "", ":memory:"):
        return SessionWrites(sessions)
    return SqliteInLoopWrites(engine.url.render_as_string(hide_password=False), lock,
                              engine.dialect, wake_relay)
