"""Alembic environment of the kit's toy service (tests only)."""

from sqlmodel import SQLModel

from recovery.common.migrations import run_migrations

run_migrations(SQLModel.metadata)
