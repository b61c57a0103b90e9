"""The kit's SQLite engine runs statements in the event loop: no worker thread per
connection, errors reach the caller as the driver's own, and a write that meets another
process's lock waits for it (SQLite's busy timeout) instead of failing. Batch writers use the
background engine: worker threads, the same write lock, and the WAL checkpoints."""

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from recovery.common.db import (
    background_engine,
    create_engine,
    session_factory,
    write_lock_of,
)
from recovery.common.migrations import upgrade_to_head


async def _database(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "in-loop.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, url)
    return path, url


def _note(number: int) -> ToyNote:
    return ToyNote(id=f"n-{number}", service_user_id="su-1", team_id="t", size=number)


async def _thread_running_statements(connection: AsyncConnection) -> int:
    """The thread SQLite runs this connection's statements on (asked from inside SQLite)."""
    seen: list[int] = []
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None
    await raw.driver_connection.create_function(
        "whose_thread", 0, lambda: seen.append(threading.get_ident()) or 1)
    await connection.exec_driver_sql("SELECT whose_thread()")
    (thread,) = seen
    return thread


async def test_statements_run_on_the_loops_own_thread(tmp_path: Path) -> None:
    _, url = await _database(tmp_path)
    engine = create_engine(url)
    threads_before = set(threading.enumerate())
    try:
        async with engine.connect() as connection:
            assert await _thread_running_statements(connection) == threading.get_ident()
        async with session_factory(engine)() as session:
            session.add_all([_note(1), _note(2)])
            await session.commit()
            assert len((await session.exec(select(ToyNote))).all()) == 2
        # No thread started (one an earlier test left may have ended meanwhile).
        assert not set(threading.enumerate()) - threads_before
    finally:
        await engine.dispose()


async def test_a_failed_statement_raises_the_drivers_error_and_releases_the_lock(
        tmp_path: Path) -> None:
    _, url = await _database(tmp_path)
    engine = create_engine(url)
    lock = write_lock_of(engine)
    assert lock is not None
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            session.add(_note(1))
            await session.commit()
        async with sessions() as session:
            session.add(_note(1))
            with pytest.raises(IntegrityError):
                await session.commit()
        assert not lock.lock.locked()
        async with sessions() as session:
            assert [n.id for n in (await session.exec(select(ToyNote))).all()] == ["n-1"]
    finally:
        await engine.dispose()


async def test_a_write_waits_for_another_process_to_finish_its_own(tmp_path: Path) -> None:
    path, url = await _database(tmp_path)
    engine = create_engine(url)
    async with engine.connect():  # a running service has its connection open already
        pass
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    other.execute("INSERT INTO toy_note (id, service_user_id, team_id, size, version, "
                  "created_at) VALUES ('theirs', 'su-2', 't', 0, 1, '2026-12-03 09:00:00')")
    finishes = threading.Timer(0.3, other.commit)
    try:
        finishes.start()
        async with session_factory(engine)() as session:
            session.add(_note(1))
            await session.commit()
            ids = sorted(n.id for n in (await session.exec(select(ToyNote))).all())
        assert ids == ["n-1", "theirs"]
    finally:
        finishes.join()
        other.close()
        await engine.dispose()


async def test_batch_writers_work_on_threads_under_the_same_lock_and_checkpoint(
        tmp_path: Path) -> None:
    _, url = await _database(tmp_path)
    engine = create_engine(url)
    batch = background_engine(engine)
    try:
        assert batch is not engine and write_lock_of(batch) is write_lock_of(engine)
        async with batch.connect() as connection:
            assert await _thread_running_statements(connection) != threading.get_ident()
            checkpoints = (await connection.exec_driver_sql(
                "PRAGMA wal_autocheckpoint")).scalar()
        assert checkpoints == 1000  # SQLite's default: these connections checkpoint
        async with engine.connect() as connection:
            in_loop = (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
        assert in_loop == 0  # never a checkpoint in the loop
        async with session_factory(batch)() as session:
            session.add(_note(1))
            await session.flush()
            assert write_lock_of(engine).lock.locked()  # type: ignore[union-attr]
            await session.commit()
        assert not write_lock_of(engine).lock.locked()  # type: ignore[union-attr]
    finally:
        await batch.dispose()
        await engine.dispose()


async def test_other_databases_have_one_engine_for_everything(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert (background_engine(engine) is engine) == database_url.startswith("postgresql")
    finally:
        await engine.dispose()
