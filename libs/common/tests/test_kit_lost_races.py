"""A change that lost a race to another change of the same record is tried again from a fresh
session, on each backend, and the caller gets a 409 problem when it keeps losing."""

import asyncio

import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import create_engine, session_factory
from recovery.common.migrations import upgrade_to_head
from recovery.common.problems import Problem
from recovery.common.versioning import retry_lost_races


async def test_a_change_that_lost_a_race_is_tried_again_until_it_lands(
        database_url: str) -> None:
    url = database_url
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add(ToyNote(id="taken", service_user_id="su-1", team_id="t", size=1))
        await session.commit()
    tries: list[str] = []

    async def change(session: AsyncSession) -> str:
        # The first two attempts find their key taken meanwhile (IntegrityError on commit).
        note_id = "taken" if len(tries) < 2 else "free"
        tries.append(note_id)
        session.add(ToyNote(id=note_id, service_user_id="su-1", team_id="t", size=2))
        await session.commit()
        return note_id

    async def always_losing(session: AsyncSession) -> None:
        session.add(ToyNote(id="taken", service_user_id="su-1", team_id="t", size=3))
        await session.commit()

    try:
        assert await retry_lost_races(sessions, change, detail="busy") == "free"
        assert tries == ["taken", "taken", "free"]
        with pytest.raises(Problem) as refused:
            await retry_lost_races(sessions, always_losing, detail="Try again.", attempts=3)
        assert (refused.value.status, refused.value.kind) == (409, "concurrent-changes")
        async with sessions() as session:
            stored = await session.get(ToyNote, "taken")
        assert stored is not None and stored.size == 1  # what lost changed nothing
    finally:
        await engine.dispose()
