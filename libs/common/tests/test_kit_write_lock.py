"""SQLite write transactions queue on the kit's in-process lock: held from the first write
statement to the end of the transaction, released on commit, rollback or a failed write,
and never a deadlock for a task that writes on two connections."""

import asyncio
from pathlib import Path

from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from recovery.common.db import SqliteWriteLock, create_engine, session_factory, write_lock_of
from recovery.common.migrations import upgrade_to_head


async def _engine(tmp_path: Path) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}"
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, url)
    return create_engine(url)


def _note(number: int) -> ToyNote:
    return ToyNote(id=f"n-{number}", service_user_id="su-1", team_id="t", size=number)


async def test_the_lock_is_held_from_the_first_write_until_commit_or_rollback(
        tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    lock = write_lock_of(engine)
    assert isinstance(lock, SqliteWriteLock)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await session.exec(select(ToyNote))  # reading takes no lock
            assert not lock.lock.locked()
            session.add(_note(1))
            await session.flush()
            assert lock.lock.locked()
            await session.commit()
            assert not lock.lock.locked()
        async with sessions() as session:
            session.add(_note(2))
            await session.flush()
            assert lock.lock.locked()
            await session.rollback()
            assert not lock.lock.locked()
        async with sessions() as session:
            session.add(_note(3))
            await session.flush()
        # Closed without commit: the connection's reset rolls back and releases.
        assert not lock.lock.locked()
        async with sessions() as session:
            assert [n.id for n in (await session.exec(select(ToyNote))).all()] == ["n-1"]
    finally:
        await engine.dispose()


async def test_concurrent_writers_all_commit_one_transaction_at_a_time(tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    sessions = session_factory(engine)
    open_writes = 0
    most_at_once = 0

    async def write(number: int) -> None:
        nonlocal open_writes, most_at_once
        async with sessions() as session:
            session.add(_note(number))
            await session.flush()
            open_writes += 1
            most_at_once = max(most_at_once, open_writes)
            await asyncio.sleep(0.005)  # other writers run meanwhile and must queue
            open_writes -= 1
            await session.commit()

    try:
        await asyncio.gather(*(write(number) for number in range(20)))
        assert most_at_once == 1
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM toy_note"))).scalar()
        assert count == 20
    finally:
        await engine.dispose()


async def test_a_waiting_writer_goes_on_without_the_lock_after_its_wait(
        tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    lock = write_lock_of(engine)
    assert lock is not None
    lock.wait_seconds = 0.2
    sessions = session_factory(engine)
    try:
        await lock.lock.acquire()  # as if a writer never gave it back
        async with sessions() as session:
            session.add(_note(1))
            await asyncio.wait_for(session.commit(), 5)  # SQLite itself is free
        lock.lock.release()
        async with sessions() as session:
            assert [n.id for n in (await session.exec(select(ToyNote))).all()] == ["n-1"]
    finally:
        await engine.dispose()


async def test_postgresql_engines_have_no_write_lock(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert (write_lock_of(engine) is None) == database_url.startswith("postgresql")
    finally:
        await engine.dispose()
