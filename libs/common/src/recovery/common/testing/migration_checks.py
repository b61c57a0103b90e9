"""Checks every service runs on its migrations, on both backends: they reach head, twice is a
no-op, and the tables they build are exactly those the service's and the kit's models say."""

import asyncio
import importlib
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import recovery.common.audit
import recovery.common.events.consumer
import recovery.common.events.outbox
import recovery.common.idempotency  # noqa: F401
from recovery.common.db import create_engine
from recovery.common.migrations import at_head, upgrade_to_head


def tables_of(package: str) -> set[str]:
    """Tables of the models of ``package`` (e.g. ``recovery.goals``) and of the kit; other
    services' models share the metadata when the whole suite runs in one process."""
    importlib.import_module(f"{package}.models")  # so its tables are in the metadata
    prefixes = (f"{package}.", "recovery.common.")
    tables: set[str] = set()
    models = list(SQLModel.__subclasses__())
    while models:
        model = models.pop()
        models.extend(model.__subclasses__())
        table = getattr(model, "__table__", None)
        if table is not None and model.__module__.startswith(prefixes):
            tables.add(table.name)
    return tables


def _differences(connection: Connection, ours: set[str]) -> list[object]:
    def include(obj: object, name: str | None, type_: str, reflected: bool,
                compare_to: object) -> bool:
        table = getattr(obj, "table", obj) if type_ != "table" else obj
        return getattr(table, "name", name) in ours

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, SQLModel.metadata))


async def differences_from_models(engine: AsyncEngine, package: str) -> list[object]:
    """What autogenerate would change to make the database match the models: nothing, when
    the migrations are right."""
    async with engine.connect() as connection:
        return await connection.run_sync(_differences, tables_of(package))


async def assert_migrations_reach_head_and_match_the_models(
        database_url: str, migrations_dir: Path, package: str, tables: set[str], *,
        twice: bool = False) -> None:
    """Upgrade (``twice``: again, which must be a no-op), then compare; ``tables`` must be
    among the models, so a check that compares nothing cannot pass."""
    for _ in range(2 if twice else 1):
        await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url)
    engine = create_engine(database_url)
    try:
        assert await at_head(engine, migrations_dir)
        assert tables <= tables_of(package), tables - tables_of(package)
        assert await differences_from_models(engine, package) == []
    finally:
        await engine.dispose()


async def assert_migrating_twice_changes_nothing(database_url: str,
                                                 migrations_dir: Path) -> None:
    await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url)
    await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url)
    engine = create_engine(database_url)
    try:
        assert await at_head(engine, migrations_dir)
    finally:
        await engine.dispose()
