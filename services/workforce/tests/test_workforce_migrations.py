"""The workforce migrations build exactly the schema the models describe, on both backends."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlmodel import SQLModel

import recovery.common.audit
import recovery.common.events.consumer
import recovery.common.events.outbox
import recovery.workforce.models  # noqa: F401
from recovery.common.db import create_engine
from recovery.common.migrations import at_head, upgrade_to_head
from recovery.workforce.main import MIGRATIONS_DIR


def _our_tables() -> set[str]:
    """Tables of the workforce models and the kit; other services' models share the metadata
    when the whole suite runs in one process."""
    return {mapper.local_table.name for mapper in SQLModel._sa_registry.mappers  # type: ignore[attr-defined]
            if mapper.class_.__module__.startswith(("recovery.workforce.",
                                                    "recovery.common."))}


def _differences(connection: Connection) -> list[object]:
    ours = _our_tables()

    def include(obj: object, name: str | None, type_: str, reflected: bool,
                compare_to: object) -> bool:
        table = getattr(obj, "table", obj) if type_ != "table" else obj
        return getattr(table, "name", name) in ours

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)  # twice: no change
    engine = create_engine(database_url)
    try:
        assert await at_head(engine, MIGRATIONS_DIR)
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        assert {"team", "staff", "care_contact", "care_minutes", "training_record",
                "outbox_event", "processed_event"} <= _our_tables()
        assert differences == []
    finally:
        await engine.dispose()
