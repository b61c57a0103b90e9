"""The toy service's one table: a versioned note about a service user.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from recovery.common.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "toy_note",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("service_user_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_toy_note_created", "toy_note", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("toy_note")
