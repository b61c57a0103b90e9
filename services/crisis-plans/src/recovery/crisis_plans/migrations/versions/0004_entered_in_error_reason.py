"""A plan marked entered-in-error keeps why (a code: wrong-person, duplicate or
recorded-by-mistake); plans marked before this have none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('crisis_plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entered_in_error_reason', sa.String(length=30),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crisis_plan', schema=None) as batch_op:
        batch_op.drop_column('entered_in_error_reason')
