"""The service's database engine and the column types every service shares.

One async SQLAlchemy engine per service: asyncpg on PostgreSQL (production), aiosqlite on an
SQLite file (``make run`` and quick tests). Both run the same statements through the same
public API, with the same transaction semantics (decision 31).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_core
from sqlalchemy import JSON, Connection, DateTime, Dialect, TypeDecorator, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def set_up_sqlite(engine: AsyncEngine, *, autocommit: bool = False) -> None:
    """An SQLite engine's settings (``_sqlite_pragmas``) and, unless it is in autocommit,
    its transactions (``_begin_immediately``), for the service's engines and the
    migrations' alike."""
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    if not autocommit:
        event.listen(engine.sync_engine, "begin", _begin_immediately)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The settings of every connection to an SQLite file, set when it connects."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable in WAL mode across application crashes; only an OS crash can lose
    # the last transactions, which is the usual trade for a local development store.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # The transaction's BEGIN is the kit's (``_begin_immediately``), not the driver's.
    dbapi_connection.isolation_level = None


def _begin_immediately(connection: Connection) -> None:
    """Every SQLite transaction takes the write lock when it begins, waiting for it up to
    the busy timeout. A deferred transaction that reads and then writes fails at once
    (``SQLITE_BUSY``) when another connection wrote in between, where PostgreSQL would
    simply wait for the row. Reads on the autocommit engine (``data.Reads``) take no lock."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database (or the network to it) is unavailable, rather
    than that the work itself failed: a failover, a restart, a pool with no free connection."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError
                      | sa_exc.TimeoutError | ConnectionError | TimeoutError)


def json_text(value: Any) -> str:
    """JSON as the kit writes it into rows and answers: compact, with text as it is in UTF-8
    (pydantic's encoder)."""
    return pydantic_core.to_json(value).decode()


#: JSON columns are encoded and decoded by pydantic's codec.
JSON_CODEC: dict[str, Any] = {"json_serializer": json_text,
                              "json_deserializer": pydantic_core.from_json}


def create_engine(url: str, *, pool_size: int = 10, autocommit: bool = False) -> AsyncEngine:
    """An async engine with the settings each backend needs. With ``autocommit``, one whose
    connections run each statement on its own, outside any transaction (``data.Reads``)."""
    if autocommit:
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT",
                                   "skip_autocommit_rollback": True}
    else:
        options = {}
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **options, **JSON_CODEC)
        set_up_sqlite(engine, autocommit=autocommit)
        return engine
    # No ping per checkout: a connection lost in a failover fails its statement once, is
    # discarded by the pool, and the request is answered 503 with Retry-After (problems.py).
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_recycle=1800, **options, **JSON_CODEC)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


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
