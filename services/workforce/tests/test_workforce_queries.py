"""Readiness reads a team through indexes on both backends: each of its statements searches
by team or by member of staff, never reading a whole table, so a team's answer costs the
same however many teams, appraisals or sessions the organisation has."""

import asyncio
from datetime import date

import pytest

from recovery.common.db import create_engine, is_sqlite
from recovery.common.migrations import upgrade_to_head
from recovery.common.testing.query_plans import query_plan
from recovery.workforce.main import MIGRATIONS_DIR
from recovery.workforce.service import LEAD, ReadinessStatements

STATEMENTS = ["training", "supervision", "culture", "panels", "appraisals", "lead"]


@pytest.mark.parametrize("name", STATEMENTS)
async def test_every_readiness_read_searches_an_index(database_url: str, name: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    statements = ReadinessStatements(dates_as_text=is_sqlite(database_url))
    built = LEAD if name == "lead" else getattr(statements, name)
    day = statements.day(date(2026, 12, 1))
    statement = built.params(team_id="team-a", on=day, since=day)
    engine = create_engine(database_url)
    try:
        explained = await query_plan(engine, statement)
    finally:
        await engine.dispose()
    if is_sqlite(database_url):
        assert "SCAN" not in explained.replace("SCAN CONSTANT", ""), explained
        assert "USING" in explained, explained
    else:
        assert "Seq Scan" not in explained, explained
        # The team is looked up in an index, not filtered out of rows read by another.
        assert not [line for line in explained.splitlines()
                    if "Filter:" in line and "team_id" in line], explained
