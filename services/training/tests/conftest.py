"""Fixtures of the training tests: a running training service per backend, one per module."""

from training_api import TrainingApi

from recovery.common.testing.plugin import service_api_fixture
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app

api = service_api_fixture("training", SERVICE, create_app, MIGRATIONS_DIR, TrainingApi)
