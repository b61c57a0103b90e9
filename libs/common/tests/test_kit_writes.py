"""The kit's write path: a transaction of prebuilt statements, committed as a whole or not at
all, with its events in the outbox; on SQLite on the driver in the loop under the kit's write
lock, on PostgreSQL through a session. Both raise the errors ``retry_lost_races`` retries."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.exc import StaleDataError

from recovery.common.db import create_engine, is_sqlite, session_factory, write_lock_of
from recovery.common.events.outbox import OutboxEvent
from recovery.common.migrations import upgrade_to_head
from recovery.common.problems import Problem
from recovery.common.reads import DriverPlan, Prepared
from recovery.common.versioning import retry_lost_races
from recovery.common.writes import SessionWrites, SqliteInLoopWrites, Transaction, writes_for

NOTE = ToyNote.__table__  # type: ignore[attr-defined]
INSERT_NOTE = Prepared(NOTE.insert())
NOTE_OF = Prepared(select(NOTE.c.size, NOTE.c.version, NOTE.c.created_at)
                   .where(NOTE.c.id == bindparam("note_id")))
GROW = Prepared(update(NOTE).where(NOTE.c.id == bindparam("note_id"),
                                   NOTE.c.version == bindparam("seen"))
                .values(size=NOTE.c.size + 1, version=NOTE.c.version + 1))
OUTBOX = select(OutboxEvent.__table__.c.type,  # type: ignore[attr-defined]
                OutboxEvent.__table__.c.subject)  # type: ignore[attr-defined]
CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _note(note_id: str, size: int = 1) -> dict[str, object]:
    return {"id": note_id, "service_user_id": "su-1", "team_id": "t", "size": size,
            "version": 1, "created_at": CREATED}


@dataclass
class Store:
    engine: AsyncEngine
    writes: SqliteInLoopWrites | SessionWrites
    woken: list[int]

    async def notes(self) -> list[tuple[str, int]]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(NOTE.c.id, NOTE.c.size).order_by(NOTE.c.id))
            return [tuple(row) for row in rows]  # type: ignore[misc]

    async def outbox(self) -> list[tuple[str, str]]:
        async with self.engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(OUTBOX)]  # type: ignore[misc]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with _store(database_url) as made:
        yield made


@asynccontextmanager
async def _store(database_url: str) -> AsyncIterator[Store]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    woken: list[int] = []
    writes = writes_for(engine, session_factory(engine), lambda: woken.append(1))
    assert isinstance(writes, SqliteInLoopWrites if is_sqlite(database_url) else SessionWrites)
    try:
        yield Store(engine, writes, woken)  # type: ignore[arg-type]
    finally:
        writes.close()
        await engine.dispose()


async def test_a_transaction_commits_its_statements_and_events_together(store: Store) -> None:
    async with store.writes.transaction() as tx:
        await tx.run(INSERT_NOTE, _note("n-1"))
        size, version, created = (await tx.all(NOTE_OF, {"note_id": "n-1"}))[0]
        assert (size, version, created) == (1, 1, CREATED)  # converted both ways
        assert await tx.run(GROW, {"note_id": "n-1", "seen": 1}, expect=1) == 1
        event_id = await tx.record_event("recovery.toy.note.grown", "n-1", {"size": 2})
    assert len(event_id) == 36
    assert await store.notes() == [("n-1", 2)]
    assert await store.outbox() == [("recovery.toy.note.grown", "n-1")]
    if isinstance(store.writes, SqliteInLoopWrites):
        assert store.woken == [1]  # the relay is woken after the commit
        assert isinstance(INSERT_NOTE.plan, DriverPlan)


async def test_a_failed_transaction_changes_nothing(store: Store) -> None:
    async with store.writes.transaction() as tx:
        await tx.run(INSERT_NOTE, _note("n-1"))
    with pytest.raises(IntegrityError):
        async with store.writes.transaction() as tx:
            await tx.run(INSERT_NOTE, _note("n-2"))
            await tx.record_event("recovery.toy.note.created", "n-2", {})
            await tx.run(INSERT_NOTE, _note("n-1"))  # the key is taken
    with pytest.raises(StaleDataError):
        async with store.writes.transaction() as tx:
            await tx.run(INSERT_NOTE, _note("n-3"))
            await tx.run(GROW, {"note_id": "n-1", "seen": 7}, expect=1)  # moved on
    assert await store.notes() == [("n-1", 1)]
    assert await store.outbox() == []
    assert store.woken == []  # nothing committed, nothing to publish
    lock = write_lock_of(store.engine)
    assert lock is None or not lock.lock.locked()


async def test_a_transaction_cancelled_midway_changes_nothing(store: Store) -> None:
    began = asyncio.Event()

    async def cancelled() -> None:
        async with store.writes.transaction() as tx:
            await tx.run(INSERT_NOTE, _note("n-1"))
            began.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(cancelled())
    await began.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.notes() == []
    lock = write_lock_of(store.engine)
    assert lock is None or not lock.lock.locked()
    async with store.writes.transaction() as tx:  # the next transaction goes ahead
        await tx.run(INSERT_NOTE, _note("n-2"))
    assert await store.notes() == [("n-2", 1)]


async def test_a_batch_is_written_whole_or_not_at_all(store: Store) -> None:
    """``run_many``, the audit trail's batch: every row, converted as a single ``run``
    converts it, or none, with the same error for a taken key on both backends."""
    async with store.writes.transaction() as tx:
        await tx.run_many(INSERT_NOTE, [_note("n-1"), _note("n-2", size=5)])
    with pytest.raises(IntegrityError):
        async with store.writes.transaction() as tx:
            await tx.run_many(INSERT_NOTE, [_note("n-3"), _note("n-1")])  # the key is taken
    assert await store.notes() == [("n-1", 1), ("n-2", 5)]
    async with store.writes.transaction() as tx:
        assert await tx.all(NOTE_OF, {"note_id": "n-2"}) == [(5, 1, CREATED)]


async def test_a_guarded_change_that_lost_its_race_is_tried_again(store: Store) -> None:
    async with store.writes.transaction() as tx:
        await tx.run(INSERT_NOTE, _note("n-1"))
    seen: list[int] = []

    async def grow(tx: Transaction) -> int:
        (_size, version, _created), = await tx.all(NOTE_OF, {"note_id": "n-1"})
        if not seen:  # the first attempt acts on what it read before another change landed
            version -= 1
        seen.append(version)
        await tx.run(GROW, {"note_id": "n-1", "seen": version}, expect=1)
        return version + 1

    assert await retry_lost_races(store.writes.transaction, grow, detail="busy") == 2
    assert seen == [0, 1]
    assert await store.notes() == [("n-1", 2)]

    async def always_stale(tx: Transaction) -> None:
        await tx.run(GROW, {"note_id": "n-1", "seen": 0}, expect=1)

    with pytest.raises(Problem) as refused:
        await retry_lost_races(store.writes.transaction, always_stale, detail="Again.",
                               attempts=3)
    assert refused.value.status == 409


async def test_sqlite_transactions_queue_on_the_engines_write_lock(tmp_path: Path) -> None:
    async with _store(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}") as store:
        await _queue_behind_a_transaction(store)


async def _queue_behind_a_transaction(store: Store) -> None:
    lock = write_lock_of(store.engine)
    assert lock is not None
    sessions = session_factory(store.engine)
    order: list[str] = []

    async def through_the_engine() -> None:
        async with sessions() as session:
            session.add(ToyNote(id="n-session", service_user_id="su-1", team_id="t", size=5))
            await session.commit()
        order.append("session")

    async with store.writes.transaction() as tx:
        assert lock.lock.locked()
        await tx.run(INSERT_NOTE, _note("n-writes"))
        waiting = asyncio.create_task(through_the_engine())
        await asyncio.sleep(0.05)
        assert order == []  # the session's write waits for this transaction
        order.append("writes")
    await waiting
    assert order == ["writes", "session"]

    async def one(number: int) -> None:
        async with store.writes.transaction() as tx:
            await tx.run(INSERT_NOTE, _note(f"n-queued-{number}"))
            await asyncio.sleep(0)  # the others queue for the lock meanwhile

    await asyncio.gather(*(one(number) for number in range(10)))
    assert isinstance(store.writes, SqliteInLoopWrites)
    assert len(store.writes.opened) == 1  # queued transactions hold no connection
    assert not lock.lock.locked()
    async with store.engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(NOTE))).scalar() == 12


async def test_a_statement_the_driver_cannot_run_as_built_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'refused.db'}"
    engine = create_engine(url)
    lock = write_lock_of(engine)
    assert lock is not None
    writes = SqliteInLoopWrites(url, lock, engine.dialect, lambda: None)
    expanding = Prepared(select(NOTE.c.id).where(
        NOTE.c.id.in_(bindparam("ids", expanding=True))))
    try:
        with pytest.raises(TypeError, match="expanding"):
            async with writes.transaction() as tx:
                await tx.all(expanding, {"ids": ["n-1"]})
        assert not lock.lock.locked()
    finally:
        writes.close()
        await engine.dispose()
