"""The goal's public document, stored with each change so reads hand it out as is.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 02:10:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The public fields of a goal when this migration was written (GoalPublic).
FIELDS = ["id", "service_user_id", "team_id", "kind", "description", "life_area", "chime_tags",
          "why_it_matters", "strengths", "supporters", "target_date", "serves_goal_ids",
          "steps", "expressed_by", "proposed_by", "lifecycle_status", "achievement_status",
          "status_reason", "created_at", "updated_at", "status_changed_at", "accepted_at",
          "last_reviewed_on", "version"]
JSON_FIELDS = {"chime_tags", "strengths", "supporters", "serves_goal_ids", "steps"}


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, str) and name in JSON_FIELDS:
        return json.loads(value)
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and name.endswith("_at") and value:
        # SQLite keeps timestamps as text without a zone; they are UTC.
        return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat().replace(
            "+00:00", "Z")
    return value


def upgrade() -> None:
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document", sa.JSON(), nullable=True))
    goal = sa.table("goal", *(sa.column(name) for name in [*FIELDS, "document"]))
    connection = op.get_bind()
    rows = connection.execute(sa.select(*(goal.c[name] for name in FIELDS))).mappings().all()
    for row in rows:
        document = {name: _plain(name, row[name]) for name in FIELDS}
        connection.execute(goal.update().where(goal.c.id == row["id"])
                           .values(document=json.dumps(document)))
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.alter_column("document", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.drop_column("document")
