"""The crisis-plans service's entry point:
``uvicorn --factory recovery.crisis_plans.main:create_app``."""

import os
from pathlib import Path

from fastapi import FastAPI

from recovery.common.app import create_service_app
from recovery.common.kit import ServiceKit
from recovery.common.periodic import run_periodically
from recovery.common.settings import Settings

SERVICE = "crisis-plans"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """Joint crisis plans, made by the service user with their clinicians. Every
change makes a new immutable version (send `If-Match`); a version is agreed when the service
user and the required clinicians have signed its content hash, and the last agreed version is
the active plan a crisis team reads. Errors are RFC 9457 problem documents."""


def crisis_teams() -> frozenset[str]:
    """Teams whose clinicians may break the glass (``RECOVERY_CRISIS_TEAMS``, comma-separated)."""
    raw = os.environ.get("RECOVERY_CRISIS_TEAMS", "crisis-team")
    return frozenset(team.strip() for team in raw.split(",") if team.strip())


def review_sweep_seconds() -> float:
    return float(os.environ.get("RECOVERY_CRISIS_REVIEW_SWEEP_SECONDS", "3600"))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The crisis-plans app; without settings, they are read from the environment."""
    from recovery.crisis_plans import fhir, routes
    from recovery.crisis_plans.service import announce_due_reviews

    app = create_service_app(
        settings=settings or Settings(service=SERVICE),
        title="Recovery Platform: crisis plans",
        description=DESCRIPTION,
        routers=[routes.router, fhir.router],
        migrations_dir=MIGRATIONS_DIR,
    )
    kit: ServiceKit = app.state.kit
    kit.extras["crisis_teams"] = crisis_teams()
    # Review-due events once a plan's review date has come.
    run_periodically(app, "review_sweep", lambda running: announce_due_reviews(running.sessions),
                     every_s=review_sweep_seconds())
    return app
