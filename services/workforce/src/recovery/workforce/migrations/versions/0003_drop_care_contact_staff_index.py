"""Care contacts lose their index by member of staff: no query reads contacts by who
delivered them (peer share reads the monthly minutes, billing the team's peer contacts), and
every contact logged paid for keeping it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 02:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_care_contact_staff', table_name='care_contact')


def downgrade() -> None:
    op.create_index('ix_care_contact_staff', 'care_contact', ['staff_id', 'occurred_on'],
                    unique=False)
