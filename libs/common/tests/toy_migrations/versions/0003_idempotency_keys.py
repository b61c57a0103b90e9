"""Answers kept for `Idempotency-Key`, so a retried creating request answers what the
first did without creating anything again (the kit's ``idempotency``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 23:50:00.000000
"""

from collections.abc import Sequence

from recovery.common.migrations import create_idempotency_table, drop_idempotency_table

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    drop_idempotency_table()
