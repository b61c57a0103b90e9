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
