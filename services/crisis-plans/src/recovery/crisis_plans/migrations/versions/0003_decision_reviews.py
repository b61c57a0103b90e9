"""A shared decision on medication can revisit an earlier one (its review): a nullable link
to the earlier decision, unique so that each decision is revisited at most once; and its
review date as a column (taken from the stored decision), for the team's list of decisions
due for review.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('medication_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revisits', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key('fk_medication_decision_revisits', 'medication_decision',
                                    ['revisits'], ['id'])
        batch_op.create_index('ix_medication_decision_revisits', ['revisits'], unique=True)
        batch_op.add_column(sa.Column('review_on', sa.Date(), nullable=True))
        batch_op.create_index('ix_medication_decision_review', ['review_on'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE medication_decision "
                   "SET review_on = CAST(document ->> 'review_on' AS DATE)")
    else:
        op.execute("UPDATE medication_decision "
                   "SET review_on = json_extract(document, '$.review_on')")


def downgrade() -> None:
    with op.batch_alter_table('medication_decision', schema=None) as batch_op:
        batch_op.drop_index('ix_medication_decision_review')
        batch_op.drop_column('review_on')
        batch_op.drop_index('ix_medication_decision_revisits')
        batch_op.drop_constraint('fk_medication_decision_revisits', type_='foreignkey')
        batch_op.drop_column('revisits')
