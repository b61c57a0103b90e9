"""Fixtures of the kit's tests: the toy service running in-process on each backend."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from kit_toy import MIGRATIONS_DIR, create_app, toy_settings

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import running_service


@pytest.fixture
async def toy(database_url: str, dev_issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """The toy service on SQLite and on PostgreSQL in turn."""
    async with running_service(create_app, toy_settings(database_url, dev_issuer),
                               MIGRATIONS_DIR) as client:
        yield client


@pytest.fixture
async def toy_sqlite(tmp_path: Path, dev_issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """The toy service on SQLite only, for HTTP behaviour that does not depend on the backend."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}"
    async with running_service(create_app, toy_settings(url, dev_issuer, max_body_bytes=4096),
                               MIGRATIONS_DIR) as client:
        yield client
