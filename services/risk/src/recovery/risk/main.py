"""The risk service's entry point: ``uvicorn --factory recovery.risk.main:create_app``."""

from pathlib import Path

from fastapi import FastAPI

from recovery.common.app import create_service_app
from recovery.common.periodic import run_periodically
from recovery.common.settings import Settings

SERVICE = "risk"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SWEEP_EVERY_SECONDS = 3600.0
FIRST_SWEEP_AFTER_SECONDS = 5.0

DESCRIPTION = """Risk co-assessed with the service user: for each area, the person's view in
their words and the clinician's view, strengths and protective factors, and whether they
agree; differences are kept in view. A safety plan held by the person, and positive
risk-taking decisions linked to the goal they serve. Versions are co-signed by both sides.

Risk is not a number: this API neither computes nor accepts a risk score, level or
stratification (NICE NG225); a request carrying one is refused with 422.
Every change makes a new version (send `If-Match`); errors are RFC 9457 problem documents."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The risk app; without settings, they are read from the environment."""
    from recovery.risk import fhir, routes
    from recovery.risk.service import raise_review_due_events

    app = create_service_app(
        settings=settings or Settings(service=SERVICE),
        title="Recovery Platform: risk",
        description=DESCRIPTION,
        routers=[routes.router, fhir.router],
        migrations_dir=MIGRATIONS_DIR,
    )
    # Review-due events once a review date has come: hourly, and only when events are on.
    run_periodically(app, "review_sweep", raise_review_due_events,
                     every_s=SWEEP_EVERY_SECONDS, first_after_s=FIRST_SWEEP_AFTER_SECONDS,
                     enabled=lambda kit: kit.settings.events_enabled)
    return app
