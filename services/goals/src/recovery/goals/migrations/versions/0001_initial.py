"""Goals, their versions and reviews, and the kit's audit, outbox and processed-event tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 01:55:08.902067
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from recovery.common.migrations import create_kit_tables, drop_kit_tables

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_kit_tables()
    op.create_table('goal',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('service_user_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('life_area', sa.String(length=40), nullable=True),
    sa.Column('chime_tags', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('why_it_matters', sa.Text(), nullable=True),
    sa.Column('strengths', sa.JSON(), nullable=False),
    sa.Column('supporters', sa.JSON(), nullable=False),
    sa.Column('target_date', sa.Date(), nullable=True),
    sa.Column('serves_goal_ids', sa.JSON(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('expressed_by', sa.String(length=20), nullable=False),
    sa.Column('proposed_by', sa.String(length=200), nullable=True),
    sa.Column('lifecycle_status', sa.String(length=20), nullable=False),
    sa.Column('achievement_status', sa.String(length=20), nullable=True),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reviewed_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.create_index('ix_goal_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_goal_service_user_created', ['service_user_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_goal_team_created', ['team_id', 'created_at', 'id'], unique=False)

    op.create_table('goal_review',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('goal_id', sa.String(length=36), nullable=False),
    sa.Column('reviewed_on', sa.Date(), nullable=False),
    sa.Column('attendees', sa.JSON(), nullable=False),
    sa.Column('achievement_status', sa.String(length=20), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('own_words', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('goal_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['goal_id'], ['goal.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goal_review', schema=None) as batch_op:
        batch_op.create_index('ix_goal_review_goal', ['goal_id', 'reviewed_on', 'id'], unique=False)

    op.create_table('goal_version',
    sa.Column('goal_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('change', sa.String(length=30), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['goal_id'], ['goal.id'], ),
    sa.PrimaryKeyConstraint('goal_id', 'version')
    )


def downgrade() -> None:
    op.drop_table('goal_version')
    with op.batch_alter_table('goal_review', schema=None) as batch_op:
        batch_op.drop_index('ix_goal_review_goal')

    op.drop_table('goal_review')
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.drop_index('ix_goal_team_created')
        batch_op.drop_index('ix_goal_service_user_created')
        batch_op.drop_index('ix_goal_created')

    op.drop_table('goal')
    drop_kit_tables()
