"""The crisis-plans migrations build exactly the schema the models describe, on both backends."""

from recovery.common.testing.migration_checks import (
    assert_migrating_twice_changes_nothing,
    assert_migrations_reach_head_and_match_the_models,
)
from recovery.crisis_plans.main import MIGRATIONS_DIR


async def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    await assert_migrations_reach_head_and_match_the_models(
        database_url, MIGRATIONS_DIR, "recovery.crisis_plans",
        {"crisis_plan", "crisis_plan_version", "crisis_plan_signature",
         "crisis_plan_break_glass", "medication_decision", "outbox_event"})


async def test_migrating_twice_changes_nothing(database_url: str) -> None:
    await assert_migrating_twice_changes_nothing(database_url, MIGRATIONS_DIR)


async def test_decisions_recorded_before_reviews_keep_their_review_date(
        database_url: str) -> None:
    import asyncio
    import json

    from alembic import command
    from sqlalchemy import text

    from recovery.common.db import create_engine
    from recovery.common.migrations import alembic_config

    config = alembic_config(MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(command.upgrade, config, "0002")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO crisis_plan (id, service_user_id, team_id, created_by, created_at,"
                " updated_at, required_parties, version, status, not_individualised, revision,"
                " document) VALUES ('p-1', 'su-1', 't', 's', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP, '[]', 1, 'draft', false, 1, '{}')"))
            await connection.execute(text(
                "INSERT INTO medication_decision (id, plan_id, recorded_by, recorded_at, document)"
                " VALUES ('d-1', 'p-1', 's', CURRENT_TIMESTAMP, :document)"),
                {"document": json.dumps({"review_on": "2031-08-01"})})
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            review_on = (await connection.execute(text(
                "SELECT review_on FROM medication_decision WHERE id = 'd-1'"))).scalar()
        assert str(review_on) == "2031-08-01"
    finally:
        await engine.dispose()
