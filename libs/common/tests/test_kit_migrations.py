"""The kit's tables as a service's first migration creates them: exactly what the kit's
models say, on both backends, and gone again on the way down."""

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from kit_toy import MIGRATIONS_DIR
from sqlalchemy import Connection, MetaData, inspect

from recovery.common.audit import AuditEvent
from recovery.common.db import create_engine
from recovery.common.events.consumer import ProcessedEvent
from recovery.common.events.outbox import OutboxEvent
from recovery.common.idempotency import KeptAnswer
from recovery.common.migrations import (
    IDEMPOTENCY_TABLE,
    KIT_TABLES,
    alembic_config,
    upgrade_to_head,
)

#: The kit's tables: those of the first migration, and the idempotency keys' of a later one.
OURS = (*KIT_TABLES, IDEMPOTENCY_TABLE)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _differences_from_the_kit_models(connection: Connection) -> list[object]:
    """What autogenerate would change to make the kit's tables match the kit's models."""
    models = MetaData()
    for model in (AuditEvent, OutboxEvent, ProcessedEvent, KeptAnswer):
        model.__table__.to_metadata(models)  # type: ignore[attr-defined]
    context = MigrationContext.configure(connection, opts={
        "compare_type": True,
        "include_name": lambda name, kind, _parents: kind != "table" or name in OURS})
    return list(compare_metadata(context, models))


async def test_kit_tables_created_by_the_first_migration_match_the_kit_models(
        database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert set(OURS) <= await connection.run_sync(_tables)
            assert await connection.run_sync(_differences_from_the_kit_models) == []
    finally:
        await engine.dispose()


async def test_downgrading_the_first_migration_drops_the_kit_tables(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS_DIR, database_url),
                            "base")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert not set(OURS) & await connection.run_sync(_tables)
    finally:
        await engine.dispose()


def test_a_new_sqlite_file_is_made_by_its_first_migration_with_the_kit_settings(
        tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    upgrade_to_head(MIGRATIONS_DIR, f"sqlite+aiosqlite:///{path}")
    with closing(sqlite3.connect(path)) as made:
        assert made.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
