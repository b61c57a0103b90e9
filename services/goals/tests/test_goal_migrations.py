"""The goals migrations build exactly the schema the models describe, on both backends."""

import asyncio
from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import select, text

from recovery.common.db import create_engine
from recovery.common.migrations import alembic_config, upgrade_to_head
from recovery.common.testing.migration_checks import (
    assert_migrating_twice_changes_nothing,
    assert_migrations_reach_head_and_match_the_models,
)
from recovery.goals.main import MIGRATIONS_DIR
from recovery.goals.models import Goal, GoalPublic


async def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    await assert_migrations_reach_head_and_match_the_models(
        database_url, MIGRATIONS_DIR, "recovery.goals",
        {"goal", "goal_version", "goal_review", "outbox_event"})


async def test_migrating_twice_changes_nothing(database_url: str) -> None:
    await assert_migrating_twice_changes_nothing(database_url, MIGRATIONS_DIR)


async def test_goals_written_before_stored_documents_get_one_on_upgrade(
        database_url: str) -> None:
    config = alembic_config(MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(command.upgrade, config, "0001")
    engine = create_engine(database_url)
    created = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO goal (id, service_user_id, team_id, kind, life_area, chime_tags,"
                " description, strengths, supporters, target_date, serves_goal_ids, steps,"
                " expressed_by, lifecycle_status, created_at, updated_at, status_changed_at,"
                " version) VALUES ('g-old', 'su-1', 'team-a', 'life', 'home', '[\"hope\"]',"
                " 'My own flat', '[]', '[]', :target, '[]', '[]', 'service_user', 'active',"
                " :created, :created, :created, 3)"),
                {"target": date(2030, 5, 1), "created": created})
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
        async with engine.connect() as connection:
            stored = (await connection.execute(
                select(Goal.__table__.c.document).where(Goal.__table__.c.id == "g-old")  # type: ignore[attr-defined]
            )).scalar_one()
    finally:
        await engine.dispose()
    goal = GoalPublic.model_validate(stored)
    assert (goal.id, goal.description, goal.version) == ("g-old", "My own flat", 3)
    assert goal.chime_tags == ["hope"] and goal.target_date == date(2030, 5, 1)
    assert goal.created_at == created
