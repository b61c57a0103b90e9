"""The review sweep: a background task that raises review-due events once a review date has
come, hourly, for as long as the app runs (events only when events are on)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from recovery.common.kit import ServiceKit
from recovery.risk.service import raise_review_due_events

log = structlog.get_logger(__name__)

SWEEP_EVERY_SECONDS = 3600.0
FIRST_SWEEP_AFTER_SECONDS = 5.0


async def sweep_forever(kit: ServiceKit) -> None:
    await asyncio.sleep(FIRST_SWEEP_AFTER_SECONDS)
    while True:
        try:
            raised = await raise_review_due_events(kit)
            if raised:
                log.info("review_due_events_raised", count=raised)
        except Exception as exc:  # a failed sweep is tried again next time
            log.warning("review_sweep_failed", error_type=type(exc).__name__)
        await asyncio.sleep(SWEEP_EVERY_SECONDS)


def install(app: FastAPI) -> None:
    """Run the sweep inside the kit's lifespan: started after it, stopped before it ends."""
    kit_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with kit_lifespan(app):
            kit: ServiceKit = app.state.kit
            task = (asyncio.create_task(sweep_forever(kit), name="risk-review-sweep")
                    if kit.settings.events_enabled else None)
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan
