"""Risk co-assessments, their versions and signatures, and the kit's audit, outbox and
processed-event tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 02:41:50.537318
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
    op.create_table('risk_assessment',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('service_user_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=80), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=True),
    sa.Column('review_date', sa.Date(), nullable=True),
    sa.Column('review_due_raised_for', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_assessment', schema=None) as batch_op:
        batch_op.create_index('ix_risk_assessment_person_created', ['service_user_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_risk_assessment_team_created', ['team_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_risk_assessment_team_review', ['team_id', 'review_date'], unique=False)

    op.create_table('risk_assessment_version',
    sa.Column('assessment_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=80), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('change', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['assessment_id'], ['risk_assessment.id'], ),
    sa.PrimaryKeyConstraint('assessment_id', 'version')
    )
    op.create_table('risk_signature',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('assessment_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('signatory', sa.String(length=200), nullable=False),
    sa.Column('party', sa.String(length=20), nullable=False),
    sa.Column('content_hash', sa.String(length=80), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assessment_id'], ['risk_assessment.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('assessment_id', 'version', 'signatory', name='uq_risk_signature')
    )
    with op.batch_alter_table('risk_signature', schema=None) as batch_op:
        batch_op.create_index('ix_risk_signature_assessment', ['assessment_id', 'version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_signature', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_signature_assessment')

    op.drop_table('risk_signature')
    op.drop_table('risk_assessment_version')
    with op.batch_alter_table('risk_assessment', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_assessment_team_review')
        batch_op.drop_index('ix_risk_assessment_team_created')
        batch_op.drop_index('ix_risk_assessment_person_created')

    op.drop_table('risk_assessment')
    drop_kit_tables()
