"""The kit's read path: on SQLite a read-only in-loop connection that sees every commit at
once; on PostgreSQL a short session of the kit."""

import asyncio
from datetime import UTC, datetime

import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import bindparam, text
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from recovery.common.db import create_engine, is_sqlite, session_factory
from recovery.common.migrations import upgrade_to_head
from recovery.common.reads import (
    DriverPlan,
    Prepared,
    SessionReads,
    SqliteInLoopReads,
    reads_for_url,
)

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


async def test_a_prepared_statement_reads_the_same_rows_as_the_plain_one(
        database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    reads = reads_for_url(database_url, session_factory(engine))
    by_team = select(col(ToyNote.id), col(ToyNote.size)).where(
        col(ToyNote.team_id) == bindparam("team"), col(ToyNote.size) > 1
    ).order_by(col(ToyNote.id))
    # created_at needs SQLAlchemy's conversion on SQLite, which the plan applies itself.
    with_time = select(col(ToyNote.id), col(ToyNote.created_at)).order_by(col(ToyNote.id))
    # An expanding IN is rendered anew for each run: it takes SQLAlchemy's path.
    among = select(col(ToyNote.id)).where(col(ToyNote.id).in_(bindparam("ids", expanding=True)))
    try:
        async with engine.begin() as connection:
            for number, (team, size) in enumerate([("t", 1), ("t", 2), ("u", 3), ("t", 4)]):
                await connection.execute(text(
                    "INSERT INTO toy_note (id, service_user_id, team_id, size, version,"
                    " created_at) VALUES (:id, 'su-1', :team, :size, 1,"
                    " '2026-01-01 00:00:00')"), {"id": f"n-{number}", "team": team,
                                                 "size": size})
        prepared = Prepared(by_team)
        for _ in range(2):  # planned on the first run, reused on the second
            assert [tuple(row) for row in await reads.all(prepared, {"team": "t"})] == [
                ("n-1", 2), ("n-3", 4)]
        timed = Prepared(with_time)
        rows = await reads.all(timed)
        assert [row[0] for row in rows] == ["n-0", "n-1", "n-2", "n-3"]
        assert all(row[1].tzinfo is not None for row in rows)
        assert rows[0][1] == datetime(2026, 1, 1, tzinfo=UTC)
        expanding = Prepared(among)
        assert sorted(row[0] for row in await reads.all(expanding, {"ids": ["n-1", "n-2"]})) == [
            "n-1", "n-2"]
        if isinstance(reads, SqliteInLoopReads):
            assert isinstance(prepared.plan, DriverPlan) and prepared.plan.results is None
            assert isinstance(timed.plan, DriverPlan) and timed.plan.results is not None
            assert expanding.plan is False
    finally:
        reads.close()
        await engine.dispose()
