"""Goal lists are index range scans in keyset order on both backends: no sort, no full scan,
so a page costs the same with 1,000 or 100,000 goals in the table."""

import asyncio
from datetime import UTC, datetime

import pytest
from sqlmodel import col

from recovery.common.db import create_engine, is_sqlite
from recovery.common.migrations import upgrade_to_head
from recovery.common.testing.query_plans import query_plan
from recovery.goals.main import MIGRATIONS_DIR
from recovery.goals.models import Goal, LifecycleStatus
from recovery.goals.service import _in, page_query

AFTER = (datetime(2030, 1, 1, tzinfo=UTC), "ffffffff-0000-0000-0000-000000000000")
PAGES = {
    "team": dict(service_user_id=None, team_id="team-a", condition=None),
    "person": dict(service_user_id="su-1", team_id=None, condition=None),
    "staff, one team in the token": dict(service_user_id=None, team_id=None,
                                         condition=_in(col(Goal.team_id), frozenset({"t"}))),
}


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("with_cursor", [False, True], ids=["first page", "next page"])
async def test_a_page_of_goals_is_an_index_range_in_keyset_order(
        database_url: str, page: str, with_cursor: bool) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        query = page_query(**PAGES[page], statuses=None, kind=None,  # type: ignore[arg-type]
                           after=AFTER if with_cursor else None).limit(101)
        explained = await query_plan(engine, query)
    finally:
        await engine.dispose()
    if is_sqlite(database_url):
        assert "USING INDEX ix_goal_" in explained, explained
        assert "TEMP B-TREE" not in explained, explained
    else:
        assert "Index Scan" in explained and "ix_goal_" in explained, explained
        assert "Sort" not in explained, explained
        assert "Seq Scan" not in explained, explained


async def test_a_status_filter_keeps_the_keyset_order_from_the_index(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        query = page_query(service_user_id=None, team_id="team-a", condition=None,
                           statuses=[LifecycleStatus.proposed], kind=None, after=AFTER)
        explained = await query_plan(engine, query.limit(101))
    finally:
        await engine.dispose()
    assert "Sort" not in explained and "TEMP B-TREE" not in explained, explained


async def test_a_fhir_search_page_keeps_the_keyset_order_from_the_index(
        database_url: str) -> None:
    """A person's goals filtered by _id, _lastUpdated and lifecycle-status too: still an
    index range in keyset order, the extra filters applied to the rows it walks."""
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        query = page_query(service_user_id="su-1", team_id=None, condition=None,
                           statuses=[LifecycleStatus.active, LifecycleStatus.proposed],
                           kind=None, after=AFTER, ids=["g-1", "g-2"],
                           updated_since=datetime(2026, 1, 1, tzinfo=UTC),
                           updated_before=datetime(2027, 1, 1, tzinfo=UTC))
        explained = await query_plan(engine, query.limit(51))
    finally:
        await engine.dispose()
    assert "Sort" not in explained and "TEMP B-TREE" not in explained, explained
