"""Alembic wiring shared by every service: one migration history per service package."""

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    """An Alembic configuration for one service's migrations folder and database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@functools.cache
def _heads(migrations_dir: Path) -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config(migrations_dir, "sqlite://"))
    return frozenset(script.get_heads())


def head_revisions(migrations_dir: Path) -> set[str]:
    """The newest revisions in the folder (read once per process: files do not change)."""
    return set(_heads(migrations_dir))


async def current_revisions(engine: AsyncEngine) -> set[str]:
    def read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def at_head(engine: AsyncEngine, migrations_dir: Path) -> bool:
    """True when the database schema is at the newest migration of this service."""
    return await current_revisions(engine) == head_revisions(migrations_dir)


def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Apply every pending migration (called by `make run`, tests and the k8s Job)."""
    from recovery.common.db import create_engine  # local: keeps this module light to import

    create_engine(database_url)  # creates the SQLite folder when needed
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


def run_migrations(target_metadata: MetaData) -> None:
    """Body of a service's ``env.py``: run migrations online over an async engine."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        if engine.dialect.name == "sqlite":
            from recovery.common.db import set_up_sqlite  # local, as in upgrade_to_head

            # The first migration creates the file: in WAL mode from the start, and each
            # migration is one transaction, as on PostgreSQL.
            set_up_sqlite(engine)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    # Called from async code (a test, a startup hook): run on a loop of its own.
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(asyncio.run, run()).result()


# The kit's tables as every service's first migration creates them. Written out (not taken
# from the models) so that a later change to a kit model needs, and gets, a migration of its own.
KIT_TABLES = ("audit_event", "outbox_event", "processed_event")


def create_kit_tables() -> None:
    """In a service's first migration: the audit trail, the outbox and processed events."""
    from alembic import op

    op.create_table(
        "audit_event",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_roles", sa.String(length=200), nullable=False),
        sa.Column("record_type", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("service_user_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("record_id", "recorded_at", "service_user_id"):
        op.create_index(op.f(f"ix_audit_event_{column}"), "audit_event", [column], unique=False)

    op.create_table(
        "outbox_event",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(op.f("ix_outbox_event_published_at"), "outbox_event", ["published_at"],
                    unique=False)

    op.create_table(
        "processed_event",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )


def drop_kit_tables() -> None:
    """In a service's first migration, going down: the kit's tables with their indexes."""
    from alembic import op

    for table in reversed(KIT_TABLES):
        op.drop_table(table)


IDEMPOTENCY_TABLE = "idempotency_key"


def create_idempotency_table() -> None:
    """In a service's migration: the answers kept for ``Idempotency-Key`` (``idempotency``)."""
    from alembic import op

    op.create_table(
        IDEMPOTENCY_TABLE,
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=200), nullable=True),
        sa.Column("location", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "key"),
    )
    op.create_index(op.f("ix_idempotency_key_created_at"), IDEMPOTENCY_TABLE, ["created_at"],
                    unique=False)


def drop_idempotency_table() -> None:
    from alembic import op

    op.drop_table(IDEMPOTENCY_TABLE)
