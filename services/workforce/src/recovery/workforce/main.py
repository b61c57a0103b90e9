"""The workforce service's entry point: ``uvicorn --factory recovery.workforce.main:create_app``."""

from pathlib import Path

from fastapi import FastAPI

from recovery.common.app import create_service_app
from recovery.common.settings import Settings
from recovery.workforce.options import WorkforceOptions

SERVICE = "workforce"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """Teams and staff, the care they deliver and the share of it peer specialists
deliver, skill-mix, supervision, recruitment panels, appraisals, recovery leads and a team
climate survey; implementation readiness per team from training, supervision, leadership and
culture, limited by the weakest. Lived-experience declarations are private to the person and
admins. Staff changes are published for training; training's events feed readiness.
Errors are RFC 9457 problem documents."""


def create_app(settings: Settings | None = None,
               options: WorkforceOptions | None = None) -> FastAPI:
    """The workforce app; without settings (or options), they are read from the environment."""
    from recovery.workforce import events, fhir, routes

    app = create_service_app(
        settings=settings or Settings(service=SERVICE),
        title="Recovery Platform: workforce",
        description=DESCRIPTION,
        routers=[routes.router, fhir.router],
        migrations_dir=MIGRATIONS_DIR,
        handlers=events.HANDLERS,
    )
    app.state.kit.extras["workforce"] = options or WorkforceOptions()
    return app
