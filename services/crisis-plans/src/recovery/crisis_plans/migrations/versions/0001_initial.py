"""Crisis plans, their versions and signatures, break-glass reads, medication decisions, and the
kit's audit, outbox and processed-event tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 02:42:03.070993
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
    op.create_table('crisis_plan',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('service_user_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('required_parties', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=True),
    sa.Column('agreed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_on', sa.Date(), nullable=True),
    sa.Column('review_due_announced_for', sa.Date(), nullable=True),
    sa.Column('not_individualised', sa.Boolean(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('active_document', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crisis_plan', schema=None) as batch_op:
        batch_op.create_index('ix_crisis_plan_service_user', ['service_user_id'], unique=True)
        batch_op.create_index('ix_crisis_plan_team_created', ['team_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_crisis_plan_team_review', ['team_id', 'review_on'], unique=False)

    op.create_table('crisis_plan_break_glass',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('service_user_id', sa.String(length=64), nullable=False),
    sa.Column('accessed_by', sa.String(length=200), nullable=False),
    sa.Column('accessed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('plan_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crisis_plan_break_glass', schema=None) as batch_op:
        batch_op.create_index('ix_break_glass_person', ['service_user_id', 'accessed_at'], unique=False)

    op.create_table('crisis_plan_signature',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('signatory', sa.String(length=200), nullable=False),
    sa.Column('party', sa.String(length=30), nullable=False),
    sa.Column('content_hash', sa.String(length=80), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['crisis_plan.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crisis_plan_signature', schema=None) as batch_op:
        batch_op.create_index('ix_crisis_plan_signature_plan', ['plan_id', 'version'], unique=False)

    op.create_table('crisis_plan_version',
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['crisis_plan.id'], ),
    sa.PrimaryKeyConstraint('plan_id', 'version')
    )
    op.create_table('medication_decision',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['crisis_plan.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('medication_decision', schema=None) as batch_op:
        batch_op.create_index('ix_medication_decision_plan', ['plan_id', 'recorded_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('medication_decision', schema=None) as batch_op:
        batch_op.drop_index('ix_medication_decision_plan')

    op.drop_table('medication_decision')
    op.drop_table('crisis_plan_version')
    with op.batch_alter_table('crisis_plan_signature', schema=None) as batch_op:
        batch_op.drop_index('ix_crisis_plan_signature_plan')

    op.drop_table('crisis_plan_signature')
    with op.batch_alter_table('crisis_plan_break_glass', schema=None) as batch_op:
        batch_op.drop_index('ix_break_glass_person')

    op.drop_table('crisis_plan_break_glass')
    with op.batch_alter_table('crisis_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_crisis_plan_team_review')
        batch_op.drop_index('ix_crisis_plan_team_created')
        batch_op.drop_index('ix_crisis_plan_service_user')

    op.drop_table('crisis_plan')
    drop_kit_tables()
