"""Teams, staff, care delivered, culture records, training facts, and the kit's tables

Revision ID: 0001
Revises:
Create Date: 2026-11-27 03:02:50.870808
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('appraisal',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('service_user_feedback_included', sa.Boolean(), nullable=False),
    sa.Column('recovery_objectives_set', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('appraisal', schema=None) as batch_op:
        batch_op.create_index('ix_appraisal_staff', ['staff_id', 'held_on', 'id'], unique=False)

    op.create_table('audit_event',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('actor_roles', sa.String(length=200), nullable=False),
    sa.Column('record_type', sa.String(length=60), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=True),
    sa.Column('service_user_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('source_address', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_record_id'), ['record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_service_user_id'), ['service_user_id'], unique=False)

    op.create_table('care_contact',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('service_user_id', sa.String(length=64), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('by_peer', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('care_contact', schema=None) as batch_op:
        batch_op.create_index('ix_care_contact_billing', ['team_id', 'by_peer', 'occurred_on'], unique=False)
        batch_op.create_index('ix_care_contact_staff', ['staff_id', 'occurred_on'], unique=False)

    op.create_table('care_minutes',
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('by_peer', sa.Boolean(), nullable=False),
    sa.Column('minutes', sa.BigInteger(), nullable=False),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('team_id', 'month', 'by_peer')
    )
    op.create_table('climate_response',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('responded_on', sa.Date(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('climate_response', schema=None) as batch_op:
        batch_op.create_index('ix_climate_team', ['team_id', 'responded_on'], unique=False)

    op.create_table('lived_experience',
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('declared', sa.Boolean(), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('staff_id')
    )
    op.create_table('outbox_event',
    sa.Column('position', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=120), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('envelope', sa.JSON(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('position'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_event_published_at'), ['published_at'], unique=False)

    op.create_table('processed_event',
    sa.Column('consumer', sa.String(length=80), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('consumer', 'event_id')
    )
    op.create_table('recruitment_panel',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('role_type', sa.String(length=20), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('lived_experience_members', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recruitment_panel', schema=None) as batch_op:
        batch_op.create_index('ix_panel_team', ['team_id', 'held_on', 'id'], unique=False)

    op.create_table('staff',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('profession', sa.String(length=40), nullable=False),
    sa.Column('grade', sa.String(length=40), nullable=False),
    sa.Column('role_type', sa.String(length=20), nullable=False),
    sa.Column('fte', sa.Float(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index('ix_staff_team', ['team_id', 'id'], unique=False)

    op.create_table('supervision_session',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('supervisor_id', sa.String(length=64), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('recovery_focused', sa.Boolean(), nullable=False),
    sa.Column('peer_supervision', sa.Boolean(), nullable=False),
    sa.Column('quality', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('supervision_session', schema=None) as batch_op:
        batch_op.create_index('ix_supervision_staff', ['staff_id', 'held_on', 'id'], unique=False)
        batch_op.create_index('ix_supervision_team', ['team_id', 'held_on'], unique=False)

    op.create_table('team',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('recovery_lead_staff_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('training_record',
    sa.Column('enrolment_id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('foundation', sa.Boolean(), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.Column('completed_version', sa.Integer(), nullable=False),
    sa.Column('rating', sa.Float(), nullable=True),
    sa.Column('rating_version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('enrolment_id')
    )
    with op.batch_alter_table('training_record', schema=None) as batch_op:
        batch_op.create_index('ix_training_staff', ['staff_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('training_record', schema=None) as batch_op:
        batch_op.drop_index('ix_training_staff')

    op.drop_table('training_record')
    op.drop_table('team')
    with op.batch_alter_table('supervision_session', schema=None) as batch_op:
        batch_op.drop_index('ix_supervision_team')
        batch_op.drop_index('ix_supervision_staff')

    op.drop_table('supervision_session')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_team')

    op.drop_table('staff')
    with op.batch_alter_table('recruitment_panel', schema=None) as batch_op:
        batch_op.drop_index('ix_panel_team')

    op.drop_table('recruitment_panel')
    op.drop_table('processed_event')
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_event_published_at'))

    op.drop_table('outbox_event')
    op.drop_table('lived_experience')
    with op.batch_alter_table('climate_response', schema=None) as batch_op:
        batch_op.drop_index('ix_climate_team')

    op.drop_table('climate_response')
    op.drop_table('care_minutes')
    with op.batch_alter_table('care_contact', schema=None) as batch_op:
        batch_op.drop_index('ix_care_contact_staff')
        batch_op.drop_index('ix_care_contact_billing')

    op.drop_table('care_contact')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_service_user_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_audit_event_record_id'))

    op.drop_table('audit_event')
    with op.batch_alter_table('appraisal', schema=None) as batch_op:
        batch_op.drop_index('ix_appraisal_staff')

    op.drop_table('appraisal')
