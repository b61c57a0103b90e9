"""The kit's tables, as every service's first migration creates them.

Revision ID: 0001
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

TABLES = [SQLModel.metadata.tables[model.__tablename__]
          for model in (OutboxEvent, ProcessedEvent, AuditEvent)]


def upgrade() -> None:
    for table in TABLES:
        table.create(op.get_bind())


def downgrade() -> None:
    for table in reversed(TABLES):
        table.drop(op.get_bind())
