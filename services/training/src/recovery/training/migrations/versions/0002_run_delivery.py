"""Who really facilitated a run, recorded once it has taken place (co-delivery kept).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('course_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivered_by', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('course_run', schema=None) as batch_op:
        batch_op.drop_column('delivered_by')
