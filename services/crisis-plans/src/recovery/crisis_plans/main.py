"""The crisis-plans service's entry point:
``uvicorn --factory recovery.crisis_plans.main:create_app``."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from fastapi import FastAPI

from recovery.common.app import create_service_app
from recovery.common.events.tasks import cancel_and_wait
from recovery.common.kit import ServiceKit
from recovery.common.settings import Settings

SERVICE = "crisis-plans"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)

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


async def _sweep_reviews(kit: ServiceKit, every: float) -> None:
    from recovery.crisis_plans.service import announce_due_reviews

    while True:
        try:
            await announce_due_reviews(kit.sessions)
        except Exception as exc:  # a database outage must not end the sweep
            log.warning("review_sweep_failed", error_type=type(exc).__name__)
        await asyncio.sleep(every)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The crisis-plans app; without settings, they are read from the environment."""
    from recovery.crisis_plans import fhir, routes

    app = create_service_app(
        settings=settings or Settings(service=SERVICE),
        title="Recovery Platform: crisis plans",
        description=DESCRIPTION,
        routers=[routes.router, fhir.router],
        migrations_dir=MIGRATIONS_DIR,
    )
    kit: ServiceKit = app.state.kit
    kit.extras["crisis_teams"] = crisis_teams()
    inner = app.router.lifespan_context
    every = review_sweep_seconds()

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with inner(application):
            sweep = (asyncio.create_task(_sweep_reviews(kit, every), name="review-sweep")
                     if every > 0 else None)
            try:
                yield
            finally:
                await cancel_and_wait(sweep)

    app.router.lifespan_context = lifespan
    return app
