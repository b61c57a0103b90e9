"""Stopping background tasks for certain, even where a cancellation gets swallowed."""

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` until it has finished.

    Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that races with its inner
    future finishing (nats-py's connect loop hits this when a refused connection and the
    cancel coincide), so a single ``cancel()`` is not enough to stop a retry loop.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.2)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
