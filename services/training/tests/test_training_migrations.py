"""The training migrations reach head on both databases, match the models, and create the
foundation course every member of staff is enrolled in."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select
from sqlmodel import SQLModel

import recovery.common.audit
import recovery.common.events.consumer
import recovery.common.events.outbox
import recovery.training.models  # noqa: F401
from recovery.common.db import create_engine
from recovery.common.migrations import at_head, upgrade_to_head
from recovery.training.main import MIGRATIONS_DIR
from recovery.training.models import FOUNDATION_COURSE_ID, Course


def _our_tables() -> set[str]:
    """Tables of the training models and the kit (other services' share the metadata when
    the whole suite runs in one process)."""
    return {mapper.local_table.name for mapper in SQLModel._sa_registry.mappers  # type: ignore[attr-defined]
            if mapper.class_.__module__.startswith(("recovery.training.", "recovery.common."))}


def _differences(connection: Connection) -> list[object]:
    ours = _our_tables()

    def include(obj: object, name: str | None, type_: str, reflected: bool,
                compare_to: object) -> bool:
        table = getattr(obj, "table", obj) if type_ != "table" else obj
        return getattr(table, "name", name) in ours

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_reach_head_match_the_models_and_hold_the_foundation_course(
        database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)  # twice: no-op
    engine = create_engine(database_url)
    try:
        assert await at_head(engine, MIGRATIONS_DIR)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            table = Course.__table__  # type: ignore[attr-defined]
            rows = (await connection.execute(
                select(table.c.id, table.c.required_for_all_staff)
                .where(table.c.foundation))).all()
        assert {"course", "course_run", "educator", "enrolment", "staff_member",
                "outbox_event", "processed_event"} <= _our_tables()
        assert [tuple(r) for r in rows] == [(FOUNDATION_COURSE_ID, True)]
    finally:
        await engine.dispose()
