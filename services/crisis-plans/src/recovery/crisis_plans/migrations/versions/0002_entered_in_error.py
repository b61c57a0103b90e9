"""Plans can be marked entered-in-error: one plan in use per person (a partial unique index)
instead of one plan per person, and an index for a person's plans newest first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_USE = sa.text("status != 'entered-in-error'")


def upgrade() -> None:
    with op.batch_alter_table('crisis_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_crisis_plan_service_user')
        batch_op.create_index('ix_crisis_plan_in_use_per_person', ['service_user_id'],
                              unique=True, sqlite_where=IN_USE, postgresql_where=IN_USE)
        batch_op.create_index('ix_crisis_plan_person_created',
                              ['service_user_id', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    # Fails while a person has a plan marked entered-in-error beside another one: such plans
    # are kept, never deleted, so that downgrade needs a decision a migration cannot make.
    with op.batch_alter_table('crisis_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_crisis_plan_person_created')
        batch_op.drop_index('ix_crisis_plan_in_use_per_person')
        batch_op.create_index('ix_crisis_plan_service_user', ['service_user_id'], unique=True)
