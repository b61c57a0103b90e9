"""The read path: on SQLite a read-only in-loop connection that sees every commit at once;
on PostgreSQL a short session of the kit."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from recovery.common.db import create_engine, is_sqlite, session_factory
from recovery.common.migrations import upgrade_to_head
from recovery.goals.main import MIGRATIONS_DIR
from recovery.goals.models import Goal
from recovery.goals.reads import SessionReads, SqliteInLoopReads

COUNT = select(col(Goal.id))


async def test_reads_see_each_commit_at_once_and_never_write(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    reads = (SqliteInLoopReads(database_url) if is_sqlite(database_url)
             else SessionReads(sessions))
    try:
        assert await reads.all(COUNT) == []
        for number in range(3):
            async with engine.begin() as connection:
                await connection.execute(text(
                    "INSERT INTO goal (id, service_user_id, team_id, kind, chime_tags,"
                    " description, strengths, supporters, serves_goal_ids, steps,"
                    " expressed_by, lifecycle_status, created_at, updated_at,"
                    " status_changed_at, version, document) VALUES (:id, 'su-1', 't',"
                    " 'life', '[]', 'x', '[]', '[]', '[]', '[]', 'service_user', 'active',"
                    " '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00',"
                    " 1, '{}')"), {"id": f"g-{number}"})
            assert len(await reads.all(COUNT)) == number + 1
        if isinstance(reads, SqliteInLoopReads):
            with pytest.raises(OperationalError, match="readonly"):
                reads.connection.execute(text("DELETE FROM goal"))
    finally:
        if isinstance(reads, SqliteInLoopReads):
            reads.close()
        await engine.dispose()
