"""The kit's own tables, as every service's first migration creates them.

Revision ID: 0001
Revises:
"""

from alembic import op
from sqlmodel import SQLModel

from recovery.common.audit import AuditEvent
from recovery.common.events.consumer import ProcessedEvent
from recovery.common.events.outbox import OutboxEvent

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

KIT_TABLES = [AuditEvent.__table__, OutboxEvent.__table__, ProcessedEvent.__table__]


def upgrade() -> None:
    SQLModel.metadata.create_all(op.get_bind(), tables=KIT_TABLES)


def downgrade() -> None:
    SQLModel.metadata.drop_all(op.get_bind(), tables=KIT_TABLES)
