"""The goals service's entry point: ``uvicorn --factory recovery.goals.main:create_app``."""

from pathlib import Path

from fastapi import FastAPI

from recovery.common.app import create_service_app
from recovery.common.settings import Settings

SERVICE = "goals"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """Personal life goals in the person's own words. Staff may propose a goal; it
becomes active only when the service user accepts it. Therapeutic goals serve life goals.
Every change makes a new version (send `If-Match`); errors are RFC 9457 problem documents."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The goals app; without settings, they are read from the environment."""
    from recovery.goals import fhir, routes

    return create_service_app(
        settings=settings or Settings(service=SERVICE),
        title="Recovery Platform: goals",
        description=DESCRIPTION,
        routers=[routes.router, fhir.router],
        migrations_dir=MIGRATIONS_DIR,
    )
