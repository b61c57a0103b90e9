"""Fixtures of the risk tests: a running risk service per backend, one per test module."""

from risk_api import RiskApi

from recovery.common.testing.plugin import service_api_fixture
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app

api = service_api_fixture("risk", SERVICE, create_app, MIGRATIONS_DIR, RiskApi)
