"""The training migrations reach head on both databases, match the models, and create the
foundation course every member of staff is enrolled in."""

from sqlalchemy import select

from recovery.common.db import create_engine
from recovery.common.testing.migration_checks import (
    assert_migrations_reach_head_and_match_the_models,
)
from recovery.training.main import MIGRATIONS_DIR
from recovery.training.models import FOUNDATION_COURSE_ID, Course


async def test_migrations_reach_head_match_the_models_and_hold_the_foundation_course(
        database_url: str) -> None:
    await assert_migrations_reach_head_and_match_the_models(
        database_url, MIGRATIONS_DIR, "recovery.training",
        {"course", "course_run", "educator", "enrolment", "staff_member", "outbox_event",
         "processed_event"}, twice=True)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            table = Course.__table__  # type: ignore[attr-defined]
            rows = (await connection.execute(
                select(table.c.id, table.c.required_for_all_staff)
                .where(table.c.foundation))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(FOUNDATION_COURSE_ID, True)]
