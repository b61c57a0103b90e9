"""Alembic environment of the risk database: the risk tables plus the kit's own tables."""

from sqlmodel import SQLModel

import recovery.common.audit
import recovery.common.events.consumer
import recovery.common.events.outbox
import recovery.common.idempotency
import recovery.risk.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from recovery.common.migrations import run_migrations

run_migrations(SQLModel.metadata)
