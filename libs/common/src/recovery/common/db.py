"""Database engines and sessions for SQLite (local, WAL) and PostgreSQL (production)."""

import asyncio
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import pydantic_core
import structlog
from sqlalchemy import JSON, DateTime, Dialect, Engine, TypeDecorator, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util.concurrency import await_only, in_greenlet
from sqlmodel.ext.asyncio.session import AsyncSession

log = structlog.get_logger(__name__)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


#: The page size of a new SQLite database (an existing one keeps its own). A commit writes
#: each page it changed into the write-ahead log, and the platform's writes change a few
#: short rows in several B-trees: a care contact's transaction cost 29 µs in SQLite at the
#: default 4,096 bytes and 24 at 2,048 (decision 28). Smaller pages gave a contact nothing
#: more and cost a signature, whose plan row then spills into overflow pages.
PAGE_SIZE = 2048


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The settings of every connection to an SQLite file, set when it connects."""
    cursor = dbapi_connection.cursor()
    # Only a database without tables takes a page size, and it must precede WAL mode.
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable in WAL mode across application crashes; only an OS crash can lose
    # the last transactions, which is the usual trade for a local development store.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class SqliteWriteLock:
    """One write transaction at a time per process, queued in asyncio instead of in SQLite.

    SQLite has one writer. Without this, every pooled connection that starts a write while
    another holds the lock gets SQLITE_BUSY and sleeps in SQLite's busy handler (up to 100 ms
    a try), so writes under load finished in whatever order they woke (POST p99 of 1 to
    2.5 s), and with statements run in the loop the sleep would stop every request. Here a
    connection takes an ``asyncio.Lock`` before its first write statement (the driver
    begins the transaction there) and gives it back when the transaction commits or rolls
    back, or when the connection goes back to the pool. It covers every write on the
    engine: sessions, Core statements, relay, audit, consumers.
    Waiting longer than ``wait_seconds`` goes on without the lock, back to SQLite's own
    busy handling, so a task that writes on two connections at once cannot deadlock itself.
    """

    def __init__(self, *, wait_seconds: float = 5.0) -> None:
        self.lock = asyncio.Lock()
        self.wait_seconds = wait_seconds
        self.owner: Any = None

    def attach(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        _WRITE_LOCKS[sync_engine] = self
        event.listen(sync_engine, "before_cursor_execute", self._before_execute)
        dialect = sync_engine.dialect
        # Per-engine dialect instance: the transaction's end is where the lock is released.
        dialect.do_commit = self._releasing(dialect.do_commit)  # type: ignore[method-assign,assignment]
        dialect.do_rollback = self._releasing(dialect.do_rollback)  # type: ignore[method-assign,assignment]
        event.listen(sync_engine.pool, "reset", self._on_reset)
        event.listen(sync_engine.pool, "invalidate", self._on_gone)
        event.listen(sync_engine.pool, "close", self._on_gone)

    def _before_execute(self, connection: Any, _cursor: Any, statement: str, _params: Any,
                        _context: ExecutionContext | None, _executemany: bool) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if self.owner is dbapi_connection or not in_greenlet():
            return
        if not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        await_only(self.take(dbapi_connection))

    async def take(self, owner: Any) -> None:
        """Queue for the lock on behalf of ``owner`` (a driver connection, or a transaction of
        ``kit.writes``); after ``wait_seconds`` go on without it."""
        if not self.lock.locked():
            # Free: taken at once (waiting only if a woken waiter is ahead), with no timer task.
            await self.lock.acquire()
        else:
            try:
                await asyncio.wait_for(self.lock.acquire(), self.wait_seconds)
            except TimeoutError:
                return
        self.owner = owner

    def release(self, dbapi_connection: Any) -> None:
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        if raw is not None and self.owner is raw:
            self.owner = None
            self.lock.release()

    def _releasing(self, end: Callable[[Any], None]) -> Callable[[Any], None]:
        def end_then_release(dbapi_connection: Any) -> None:
            try:
                end(dbapi_connection)
            finally:
                self.release(dbapi_connection)

        return end_then_release

    def _on_reset(self, dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        if not state.asyncio_safe:  # no rollback will follow (a connection garbage-collected)
            self.release(dbapi_connection)

    def _on_gone(self, dbapi_connection: Any, *_: Any) -> None:
        self.release(dbapi_connection)


_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, SqliteWriteLock]" = weakref.WeakKeyDictionary()


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its worker thread: each call runs when queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the caller, as the worker thread does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InLoopSqliteConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call in the event loop, not on a thread.

    Every aiosqlite call is a hand-off to the connection's thread and back; SQLAlchemy makes
    several per statement, and on small virtual machines each costs tens of microseconds of
    CPU and a wait for the loop, during which the transaction holds the write lock. A short
    SQLite statement takes a few microseconds, and writes in this process are queued by
    :class:`SqliteWriteLock` before they reach SQLite, so nothing here waits for another
    writer of this process; only another process holding the lock (a migration, a backup)
    can make a statement wait, up to the busy timeout. PostgreSQL is unaffected.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Any:
        return self._connect().__await__()  # no worker thread to start

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def _no_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    # A WAL checkpoint copies pages back into the database file: tens of milliseconds that
    # would stop the loop. The background engine's connections checkpoint instead.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def sqlite_connector(url: str, **options: Any) -> Callable[[], sqlite3.Connection]:
    """A function opening a plain ``sqlite3`` connection to the database of ``url``."""
    parsed = make_url(url)
    args, url_options = parsed.get_dialect()().create_connect_args(parsed)
    return partial(sqlite3.connect, *args, **{**url_options, "timeout": 5, **options})


def in_loop_sqlite(connection: sqlite3.Connection) -> sqlite3.Connection:
    """Set a connection up as the kit's in-loop connections are: WAL, foreign keys, no
    checkpoints (those run off the loop, on the background engine)."""
    sqlite_pragmas(connection, None)
    _no_checkpoints(connection, None)
    return connection


def _in_loop_connector(url: str) -> Callable[[], InLoopSqliteConnection]:
    return partial(InLoopSqliteConnection, sqlite_connector(url))


def write_lock_of(engine: AsyncEngine) -> SqliteWriteLock | None:
    """The engine's write lock (SQLite engines of ``create_engine``), else None."""
    return _WRITE_LOCKS.get(engine.sync_engine)


def json_text(value: Any) -> str:
    """JSON as the kit writes it into rows and answers: compact, with text as it is in UTF-8
    (pydantic's encoder, about four times as fast as ``json.dumps`` on a plan's document)."""
    return pydantic_core.to_json(value).decode()


#: JSON columns are encoded and decoded by pydantic's codec (engines of ``create_engine``
#: and the in-loop reader).
JSON_CODEC: dict[str, Any] = {"json_serializer": json_text,
                              "json_deserializer": pydantic_core.from_json}


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine with the settings each backend needs."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, async_creator=_in_loop_connector(url), **JSON_CODEC)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        event.listen(engine.sync_engine, "connect", _no_checkpoints)
        SqliteWriteLock().attach(engine)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **JSON_CODEC
    )


def background_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for the WAL checkpoints.

    On SQLite, an engine whose connections each work on a thread of their own (plain
    aiosqlite), queued on the same write lock as ``engine``: a checkpoint then takes its
    time off the loop, while requests go on. Elsewhere, ``engine`` itself.
    """
    lock = write_lock_of(engine)
    if lock is None:
        return engine
    batch = create_async_engine(engine.url, connect_args={"timeout": 5})
    event.listen(batch.sync_engine, "connect", sqlite_pragmas)
    lock.attach(batch)
    return batch


#: The least time between two folds of SQLite's write-ahead log into the database file.
FOLD_EVERY_SECONDS = 0.2


class WalFold:
    """Folds an SQLite file's write-ahead log back into the database, at most every
    ``FOLD_EVERY_SECONDS``, on the background engine (a thread). The in-loop connections never
    checkpoint (a checkpoint would stop the loop), so the kit's batch writers (the audit
    trail's flush, the relay's marks) call this after they commit; on a service that only
    reads, the audit trail is the one writer."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._folded_at = time.monotonic()

    async def __call__(self) -> None:
        now = time.monotonic()
        if now - self._folded_at < FOLD_EVERY_SECONDS:
            return
        self._folded_at = now
        try:
            async with self._engine.connect() as connection:
                # PASSIVE: as much as readers allow, never waiting for them or for writers.
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # the next fold tries again; what was written stays written
            log.warning("wal_checkpoint_failed", error_type=type(exc).__name__)


def wal_fold(engine: AsyncEngine) -> WalFold | None:
    """For an SQLite file, the fold of its write-ahead log on ``engine`` (the background
    engine); None for other databases."""
    if write_lock_of(engine) is None or engine.url.database in (None, "", ":memory:"):
        return None
    return WalFold(engine)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def session_scope(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use UTC-aware times")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that always comes back timezone-aware in UTC, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _in_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the UTC time as SQLite's ``DATETIME`` stores it (``2026-01-31
        12:00:00.000000``) in one step: the decorator's conversion followed by the dialect's
        own formatting cost a timestamp half as much again, and a write binds several."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            return None if value is None else _in_utc(value).isoformat(" ", "microseconds")[:26]

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncodedJSON(str):
    """JSON text already encoded (``model_dump_json``, ``json.dumps``), which a ``StoredJSON``
    column stores as it is."""

    __slots__ = ()


class StoredJSON(TypeDecorator[Any]):
    """A JSON column (the same type in the database) that also takes ``EncodedJSON``, so a
    value encoded once for an answer or a message is not encoded again for its row. Reads
    give the decoded value, as ``JSON`` does."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        encode = self.impl_instance.bind_processor(dialect)

        def process(value: Any) -> Any:
            if isinstance(value, EncodedJSON):
                return str(value)
            return encode(value) if encode is not None else value

        return process
