"""Appraisals by team: readiness counts a team's recent appraisals, which read every
appraisal of the organisation without this index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 19:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_appraisal_team', 'appraisal', ['team_id', 'held_on'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_appraisal_team', table_name='appraisal')
