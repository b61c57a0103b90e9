"""Short reads and write transactions of Core statements built once (module constants), on
the service's engine: what request handlers use on their hot paths, beside the ORM's sessions.

Both run on either backend through SQLAlchemy's public async API. A read runs in autocommit,
so on PostgreSQL it is one round trip (no BEGIN and ROLLBACK around it). A transaction
commits when its block ends and rolls back when the block raises; constraint errors come as
SQLAlchemy's ``IntegrityError`` and a guarded change that found the row moved on as
``StaleDataError``, so ``versioning.retry_lost_races`` retries either.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import SQLModel

from recovery.common.events.outbox import OUTBOX_TABLE, outbox_row

INSERT_OUTBOX = OUTBOX_TABLE.insert()

__all__ = ["Reads", "Transaction", "Writes", "row_of"]


def row_of(record: SQLModel) -> dict[str, Any]:
    """A table model's column values, as an ``INSERT`` of its table takes them."""
    table: Any = type(record).__table__  # type: ignore[attr-defined]
    return {column.key: getattr(record, column.key) for column in table.columns}


class Reads:
    """Short, indexed reads, each statement on its own, outside any transaction.

    ``engine`` is an autocommit engine of ``db.create_engine`` (its own pool): a pooled
    connection switched to autocommit per read and back cost as much again as the read's
    statement (decision 31)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self, statement: Executable,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Every row the statement selects (rows unpack like tuples)."""
        async with self.engine.connect() as connection:
            return (await connection.execute(statement, params)).all()


class Transaction:
    """The statements of one write transaction (``Writes.transaction``)."""

    __slots__ = ("connection", "dialect", "events")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        #: The database's dialect ("sqlite", "postgresql"), for statements built per dialect
        #: (an upsert).
        self.dialect: str = connection.dialect.name
        self.events = 0

    async def all(self, statement: Executable,
                  params: dict[str, Any] | None = None) -> Sequence[Any]:
        """Every row the statement selects, as tuples."""
        return (await self.connection.execute(statement, params)).all()

    async def run(self, statement: Executable, params: dict[str, Any] | None = None, *,
                  expect: int | None = None) -> int:
        """Execute a write; the rows it changed. With ``expect``, any other count raises
        ``StaleDataError`` (a guarded update that lost its race), undoing the transaction."""
        count = int((await self.connection.execute(statement, params)).rowcount)
        if expect is not None and count != expect:
            raise StaleDataError(f"{count} rows changed where {expect} were expected")
        return count

    async def run_many(self, statement: Executable, rows: Sequence[dict[str, Any]]) -> None:
        """Execute a write once for each row (a batch of inserts)."""
        if rows:
            await self.connection.execute(statement, list(rows))

    async def record_event(self, event_type: str, subject: str,
                           data: dict[str, Any]) -> str:
        """The event's outbox row, published only if the transaction commits; its id."""
        row = outbox_row(event_type, subject, data)
        await self.connection.execute(INSERT_OUTBOX, row)
        self.events += 1
        event_id: str = row["event_id"]
        return event_id


class Writes:
    """Write transactions on the service's engine; a commit that recorded events wakes the
    outbox relay."""

    def __init__(self, engine: AsyncEngine, wake_relay: Callable[[], None]) -> None:
        self.engine = engine
        self.wake_relay = wake_relay

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``async with writes.transaction() as tx``: committed when the block ends, rolled
        back when it raises."""
        async with self.engine.begin() as connection:
            tx = Transaction(connection)
            yield tx
        if tx.events:
            self.wake_relay()
