"""The risk migrations build exactly the schema the models describe, on both backends."""

from recovery.common.testing.migration_checks import (
    assert_migrating_twice_changes_nothing,
    assert_migrations_reach_head_and_match_the_models,
)
from recovery.risk.main import MIGRATIONS_DIR


async def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    await assert_migrations_reach_head_and_match_the_models(
        database_url, MIGRATIONS_DIR, "recovery.risk",
        {"risk_assessment", "risk_assessment_version", "risk_signature", "outbox_event",
         "audit_event"})


async def test_migrating_twice_changes_nothing(database_url: str) -> None:
    await assert_migrating_twice_changes_nothing(database_url, MIGRATIONS_DIR)
