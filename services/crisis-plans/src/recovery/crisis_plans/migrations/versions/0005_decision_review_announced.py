"""A shared decision on medication whose review date has come is announced once: when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('medication_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_due_announced_at', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('medication_decision', schema=None) as batch_op:
        batch_op.drop_column('review_due_announced_at')
