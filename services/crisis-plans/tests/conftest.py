"""Fixtures of the crisis-plans tests: a running service per backend."""

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from plans_api import PlansApi

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import BACKENDS, TokenFactory, make_settings, running_service
from recovery.common.testing.processes import PostgresServer
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app


@pytest.fixture(scope="module", params=BACKENDS)
def plans_database(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('plans') / 'crisis_plans.db'}"
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are required in CI (initdb, pg_ctl)")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine")
    return server.create_database("crisis_plans_" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
async def api(plans_database: str, dev_issuer: DevIssuer,
              tokens: TokenFactory) -> AsyncIterator[PlansApi]:
    settings = make_settings(SERVICE, database_url=plans_database,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield PlansApi(client, tokens)
