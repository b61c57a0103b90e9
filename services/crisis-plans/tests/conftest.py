"""Fixtures of the crisis-plans tests: a running service per backend, one per test module."""

from plans_api import PlansApi

from recovery.common.testing.plugin import service_api_fixture
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app

api = service_api_fixture("crisis_plans", SERVICE, create_app, MIGRATIONS_DIR, PlansApi)
