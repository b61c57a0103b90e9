"""The kit's statements on the service's engine (``recovery.common.data``): reads in
autocommit, write transactions with their events, the same errors on both backends."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.exc import StaleDataError

from recovery.common.data import Reads, Transaction, Writes
from recovery.common.db import create_engine, session_factory
from recovery.common.events.outbox import OutboxEvent
from recovery.common.migrations import upgrade_to_head
from recovery.common.problems import Problem
from recovery.common.versioning import retry_lost_races

NOTE = ToyNote.__table__  # type: ignore[attr-defined]
INSERT_NOTE = NOTE.insert()
NOTE_OF = (select(NOTE.c.size, NOTE.c.version, NOTE.c.created_at)
           .where(NOTE.c.id == bindparam("note_id")))
GROW = (update(NOTE).where(NOTE.c.id == bindparam("note_id"),
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
    reads: Reads
    writes: Writes
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
    read_engine = create_engine(database_url, autocommit=True)
    writes = Writes(engine, lambda: woken.append(1))
    try:
        yield Store(engine, Reads(read_engine), writes, woken)
    finally:
        await read_engine.dispose()
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
    assert store.woken == [1]  # the relay is woken after the commit


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


async def test_reads_see_each_commit_at_once_without_waiting_for_open_writes(
        store: Store) -> None:
    """A read runs outside any transaction: it sees every commit so far, and an open write
    transaction (on SQLite, one holding the database's write lock) does not hold it up."""
    assert await store.reads.all(NOTE_OF, {"note_id": "n-1"}) == []
    async with store.writes.transaction() as tx:
        await tx.run(INSERT_NOTE, _note("n-1"))
        reading = asyncio.create_task(store.reads.all(NOTE_OF, {"note_id": "n-1"}))
        assert await asyncio.wait_for(reading, 2) == []  # not committed yet
    assert await store.reads.all(NOTE_OF, {"note_id": "n-1"}) == [(1, 1, CREATED)]
    among = select(NOTE.c.id).where(NOTE.c.id.in_(bindparam("ids", expanding=True)))
    assert [row[0] for row in await store.reads.all(among, {"ids": ["n-1", "n-9"]})] == ["n-1"]


async def test_changes_that_read_then_write_at_once_all_land(store: Store) -> None:
    """Many transactions that each read a record and then change it, at the same time: on
    PostgreSQL the guarded update waits for the row; on SQLite each transaction takes the
    write lock when it begins, so none fails half-way for another having written first."""
    async with store.writes.transaction() as tx:
        await tx.run(INSERT_NOTE, _note("n-1"))

    async def grow(tx: Transaction) -> None:
        (_size, version, _created), = await tx.all(NOTE_OF, {"note_id": "n-1"})
        await asyncio.sleep(0)  # the others begin meanwhile
        await tx.run(GROW, {"note_id": "n-1", "seen": version}, expect=1)

    await asyncio.gather(*(retry_lost_races(store.writes.transaction, grow, detail="busy")
                           for _ in range(10)))
    assert await store.notes() == [("n-1", 11)]
    sessions = session_factory(store.engine)
    async with sessions() as session:  # the ORM's sessions share the engine and its rules
        note = await session.get(ToyNote, "n-1")
        assert note is not None and note.size == 11
