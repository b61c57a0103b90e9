"""Fixtures of the training tests: a running training service per backend."""

from collections.abc import AsyncIterator

import pytest
from training_api import TrainingApi

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app


@pytest.fixture(scope="module", params=BACKENDS)
def training_database(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend, so a module's API tests share a service."""
    return module_database_url(request, tmp_path_factory, "training")


@pytest.fixture(scope="module")
async def api(training_database: str, dev_issuer: DevIssuer,
              tokens: TokenFactory) -> AsyncIterator[TrainingApi]:
    settings = make_settings(SERVICE, database_url=training_database,
                             jwks_file=dev_issuer.jwks_path)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield TrainingApi(client, tokens)
