"""Fixtures of the crisis-plans tests: a running service per backend."""

from collections.abc import AsyncIterator

import pytest
from plans_api import PlansApi

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app


@pytest.fixture(scope="module", params=BACKENDS)
def plans_database(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend."""
    return module_database_url(request, tmp_path_factory, "crisis_plans")


@pytest.fixture(scope="module")
async def api(plans_database: str, dev_issuer: DevIssuer,
              tokens: TokenFactory) -> AsyncIterator[PlansApi]:
    settings = make_settings(SERVICE, database_url=plans_database,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield PlansApi(client, tokens)
