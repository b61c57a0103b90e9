"""Fixtures of the workforce tests: a running workforce service per backend, one per module."""

from workforce_api import WorkforceApi

from recovery.common.testing.plugin import service_api_fixture
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app

api = service_api_fixture("workforce", SERVICE, create_app, MIGRATIONS_DIR, WorkforceApi)
