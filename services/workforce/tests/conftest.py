"""Fixtures of the workforce tests: a running workforce service per backend."""

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from workforce_api import WorkforceApi

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import BACKENDS, TokenFactory, make_settings, running_service
from recovery.common.testing.processes import PostgresServer
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app


@pytest.fixture(scope="module", params=BACKENDS)
def workforce_database(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend, so a module's API tests share a service."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('workforce') / 'workforce.db'}"
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are required in CI (initdb, pg_ctl)")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine")
    return server.create_database("workforce_" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
async def api(workforce_database: str, dev_issuer: DevIssuer,
              tokens: TokenFactory) -> AsyncIterator[WorkforceApi]:
    settings = make_settings(SERVICE, database_url=workforce_database,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield WorkforceApi(client, tokens)
