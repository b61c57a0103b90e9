"""Work a service does on a timer for as long as its app runs (review sweeps): started after
the kit's lifespan has started, stopped before it ends, a failed round tried again next time."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from recovery.common.events.tasks import cancel_and_wait
from recovery.common.kit import ServiceKit

log = structlog.get_logger(__name__)

Round = Callable[[ServiceKit], Awaitable[int | None]]


async def repeat(kit: ServiceKit, name: str, work: Round, *, every_s: float,
                 first_after_s: float = 0.0) -> None:
    """Run ``work`` every ``every_s`` seconds; a round's count is logged when it did something."""
    await asyncio.sleep(first_after_s)
    while True:
        try:
            done = await work(kit)
            if done:
                log.info(f"{name}_done", count=done)
        except Exception as exc:  # a database outage must not end the repetition
            log.warning(f"{name}_failed", error_type=type(exc).__name__)
        await asyncio.sleep(every_s)


def run_periodically(app: FastAPI, name: str, work: Round, *, every_s: float,
                     first_after_s: float = 0.0,
                     enabled: Callable[[ServiceKit], bool] = lambda _kit: True) -> None:
    """Run ``work`` on a timer inside the app's lifespan; not at all when ``every_s`` is not
    positive or ``enabled`` says no for this kit."""
    kit_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with kit_lifespan(application):
            kit: ServiceKit = application.state.kit
            task = (asyncio.create_task(repeat(kit, name, work, every_s=every_s,
                                               first_after_s=first_after_s), name=name)
                    if every_s > 0 and enabled(kit) else None)
            try:
                yield
            finally:
                await cancel_and_wait(task)

    app.router.lifespan_context = lifespan
