"""The workforce migrations build exactly the schema the models describe, on both backends."""

from recovery.common.testing.migration_checks import (
    assert_migrations_reach_head_and_match_the_models,
)
from recovery.workforce.main import MIGRATIONS_DIR


async def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    await assert_migrations_reach_head_and_match_the_models(
        database_url, MIGRATIONS_DIR, "recovery.workforce",
        {"team", "staff", "care_contact", "care_minutes", "training_record", "outbox_event",
         "processed_event"}, twice=True)
