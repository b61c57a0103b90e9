"""Data helpers every service shares: cursors, versions with ETag and If-Match, aware UTC
times on both backends, SQLite pragmas, and the migrate command."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import Column, Integer, MetaData, Table, select, text
from sqlalchemy.exc import StatementError

from recovery.common.db import UTCDateTime, create_engine
from recovery.common.migrations import at_head, upgrade_to_head
from recovery.common.pagination import (
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    keyset_page,
    page_size,
)
from recovery.common.problems import Problem
from recovery.common.testing.plugin import TokenFactory
from recovery.common.versioning import etag, require_if_match

# --- pagination -----------------------------------------------------------------------------


def test_a_cursor_round_trips_its_sort_value_and_id() -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert decode_time_cursor(encode_cursor(moment, "id-1")) == (moment, "id-1")
    assert decode_cursor(encode_cursor(42, "id-2")) == (42, "id-2")


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90LWpzb24", "WzEsMiwzXQ", "eyJhIjoxfQ",
                                    "WzEsMl0", "ü"])
def test_a_cursor_that_is_not_ours_is_a_400_problem(cursor: str) -> None:
    with pytest.raises(Problem) as refused:
        decode_cursor(cursor)
    assert refused.value.status == 400 and refused.value.kind == "invalid-cursor"


def test_a_time_cursor_must_hold_an_aware_time() -> None:
    with pytest.raises(Problem):
        decode_time_cursor(encode_cursor("2026-03-01T12:30:00", "id-1"))
    with pytest.raises(Problem):
        decode_time_cursor(encode_cursor("yesterday", "id-1"))


def test_page_size_has_a_default_and_a_cap() -> None:
    assert page_size(None, 50, 200) == 50
    assert page_size(10, 50, 200) == 10
    assert page_size(10_000, 50, 200) == 200
    assert page_size(0, 50, 200) == 1


def test_a_keyset_page_has_a_next_cursor_only_when_more_rows_follow() -> None:
    rows = [(i, f"id-{i}") for i in range(4)]
    page, cursor = keyset_page(rows, 3, lambda row: row)
    assert page == rows[:3] and cursor == encode_cursor(2, "id-2")
    assert keyset_page(rows[:3], 3, lambda row: row) == (rows[:3], None)
    assert keyset_page([], 3, lambda row: row) == ([], None)


# --- versions ------------------------------------------------------------------------------


def test_etags_are_strong_quoted_versions() -> None:
    assert etag(3) == '"3"'


@pytest.mark.parametrize("if_match", ['"3"', 'W/"3"', "*", '"2", "3"', ' "3" '])
def test_if_match_with_the_current_version_or_a_star_is_accepted(if_match: str) -> None:
    require_if_match(if_match, 3)


@pytest.mark.parametrize("if_match", ['"2"', "3", '"03"', 'W/"4"', "garbage"])
def test_if_match_with_anything_else_is_412(if_match: str) -> None:
    with pytest.raises(Problem) as refused:
        require_if_match(if_match, 3)
    assert refused.value.status == 412


@pytest.mark.parametrize("if_match", [None, ""])
def test_a_change_without_if_match_is_428(if_match: str | None) -> None:
    with pytest.raises(Problem) as refused:
        require_if_match(if_match, 3)
    assert refused.value.status == 428


async def test_a_versioned_record_changes_only_against_its_current_etag(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    staff = tokens.header(tokens.clinician())
    created = await toy.post("/v1/notes", headers=staff, json={
        "service_user_id": "su-1", "team_id": "team-a", "size": 1})
    note_id, tag = created.json()["id"], created.headers["etag"]
    assert tag == '"1"'
    url = f"/v1/notes/{note_id}"

    missing = await toy.put(url, headers=staff, json={"size": 2})
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"
    changed = await toy.put(url, headers={**staff, "If-Match": tag}, json={"size": 2})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    stale = await toy.put(url, headers={**staff, "If-Match": tag}, json={"size": 3})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    read = await toy.get(url, headers=staff)
    assert read.json()["size"] == 2 and read.headers["etag"] == '"2"'


# --- times and the database -------------------------------------------------------------------

_times = Table("times", MetaData(), Column("id", Integer, primary_key=True),
               Column("at", UTCDateTime(), nullable=False))


async def test_times_come_back_aware_in_utc_on_every_backend(database_url: str) -> None:
    engine = create_engine(database_url)
    paris = timezone(timedelta(hours=2))
    written = datetime(2026, 6, 1, 14, 0, 0, 123456, tzinfo=paris)
    async with engine.begin() as connection:
        await connection.run_sync(_times.metadata.create_all)
        await connection.execute(_times.insert(), [
            {"id": 1, "at": written}, {"id": 2, "at": written + timedelta(hours=1)}])
    async with engine.connect() as connection:
        first = (await connection.execute(select(_times.c.at).where(_times.c.id == 1))).scalar()
        # A comparison written in another zone still finds the same instant.
        later = (await connection.execute(select(_times.c.id).where(
            _times.c.at > datetime(2026, 6, 1, 12, 30, tzinfo=UTC)))).scalars().all()
    await engine.dispose()
    assert first == written and first.tzinfo is not None and first.utcoffset() == timedelta(0)
    assert later == [2]


async def test_naive_times_are_refused(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_times.metadata.create_all)
    with pytest.raises(StatementError, match="naive"):
        async with engine.begin() as connection:
            await connection.execute(_times.insert(), {"id": 1, "at": datetime(2026, 1, 1)})
    await engine.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'x.db'}")
    async with engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await engine.dispose()


# --- migrations --------------------------------------------------------------------------------


def _migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "RECOVERY_DATABASE_URL": database_url,
           "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir,
                                                       os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "recovery.common.migrate", "kit_toy"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


async def test_the_migrate_command_brings_a_service_database_to_head(database_url: str) -> None:
    result = _migrate(database_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("toy: database ")
    assert lines[0].endswith("at revision 0003")
    engine = create_engine(database_url)
    assert await at_head(engine, MIGRATIONS_DIR)
    async with engine.connect() as connection:
        await connection.execute(select(ToyNote.__table__))  # type: ignore[attr-defined]
    await engine.dispose()


def test_the_migrate_command_refuses_a_module_that_is_not_a_service() -> None:
    result = subprocess.run([sys.executable, "-m", "recovery.common.migrate", "json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "SERVICE and MIGRATIONS_DIR" in result.stderr


async def test_migrations_report_whether_a_database_is_at_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    engine = create_engine(url)
    assert not await at_head(engine, MIGRATIONS_DIR)
    upgrade_to_head(MIGRATIONS_DIR, url)
    assert await at_head(engine, MIGRATIONS_DIR)
    upgrade_to_head(MIGRATIONS_DIR, url)  # again, from async code: nothing to do
    assert await at_head(engine, MIGRATIONS_DIR)
    await engine.dispose()
