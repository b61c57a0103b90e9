"""The kit's read path: on SQLite a read-only in-loop connection that sees every commit at
once; on PostgreSQL a short session of the kit."""

import asyncio

import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from recovery.common.db import create_engine, is_sqlite, session_factory
from recovery.common.migrations import upgrade_to_head
from recovery.common.reads import SessionReads, SqliteInLoopReads, reads_for_url

COUNT = select(col(ToyNote.id))


async def test_reads_see_each_commit_at_once_and_never_write(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    reads = reads_for_url(database_url, sessions)
    assert isinstance(reads, SqliteInLoopReads if is_sqlite(database_url) else SessionReads)
    try:
        assert await reads.all(COUNT) == []
        for number in range(3):
            async with engine.begin() as connection:
                await connection.execute(text(
                    "INSERT INTO toy_note (id, service_user_id, team_id, size, version,"
                    " created_at) VALUES (:id, 'su-1', 't', 1, 1, '2026-01-01 00:00:00')"),
                    {"id": f"n-{number}"})
            assert len(await reads.all(COUNT)) == number + 1
        if isinstance(reads, SqliteInLoopReads):
            with pytest.raises(OperationalError, match="readonly"):
                reads.connection.execute(text("DELETE FROM toy_note"))
    finally:
        reads.close()
        await engine.dispose()


def test_an_in_memory_sqlite_database_is_read_through_the_sessions() -> None:
    url = "sqlite+aiosqlite:///:memory:"
    reads = reads_for_url(url, session_factory(create_engine(url)))
    assert isinstance(reads, SessionReads)
