"""Alembic wiring shared by every service: one migration history per service package."""

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
