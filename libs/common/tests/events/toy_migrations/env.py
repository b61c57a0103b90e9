"""Alembic environment of the toy service the events tests run as a whole app."""

from sqlmodel import SQLModel

from recovery.common.migrations import run_migrations

run_migrations(SQLModel.metadata)
