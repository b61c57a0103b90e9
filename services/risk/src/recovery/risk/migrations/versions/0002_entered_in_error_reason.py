"""A co-assessment marked entered-in-error keeps why (a code: wrong-person, duplicate or
recorded-by-mistake); those marked before this have none.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('risk_assessment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entered_in_error_reason', sa.String(length=30),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('risk_assessment', schema=None) as batch_op:
        batch_op.drop_column('entered_in_error_reason')
