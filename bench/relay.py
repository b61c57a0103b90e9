"""Outbox relay figures: throughput into JetStream, and commit-to-consumer latency."""

import asyncio
import contextlib
import json
import time
from datetime import datetime
from typing import Any

import httpx
import nats
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.pacer import Connection, KeepAliveClient
from bench.seeding import RELAY_EVENT_TYPE, unpublished_events, write_outbox_events

STREAM = "GOALS"
SUBJECTS = "recovery.goals.>"


async def wait_for_relay_to_drain(engine: AsyncEngine, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await unpublished_events(engine):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the outbox still holds unpublished events after {timeout_s}s")
        await asyncio.sleep(0.1)


async def relay_throughput(engine: AsyncEngine, nats_url: str, client: httpx.AsyncClient,
                           wake_body: dict[str, str], events: int) -> dict[str, Any]:
    """Commit ``events`` outbox rows at once, wake the relay with one real change, and time
    until every one of them is stored in the stream."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        await wait_for_relay_to_drain(engine)
        before = (await js.stream_info(STREAM)).state.messages
        await write_outbox_events(engine, events)
        started = time.perf_counter()
        # The service's own commit wakes its relay, as any change does; polling is the
        # fallback, which would add up to one poll interval to the figure.
        answer = await client.post("/v1/goals", json=wake_body)
        answer.raise_for_status()
        expected = before + events + 1
        deadline = started + 120
        stored = before
        while stored < expected:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {stored - before} of {events + 1} events reached "
                                   "the stream in 120 s")
            await asyncio.sleep(0.002)
            stored = (await js.stream_info(STREAM)).state.messages
        elapsed = time.perf_counter() - started
        return {"events": events + 1, "seconds": round(elapsed, 3),
                "events_per_s": round((events + 1) / elapsed, 1)}
    finally:
        await connection.close()


def total_changes(rate_per_s: int, duration_s: float) -> int:
    return max(1, round(rate_per_s * duration_s))


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_summary(ordered: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of latencies in milliseconds, sorted."""
    return {"p50": round(percentile(ordered, 0.50), 2),
            "p90": round(percentile(ordered, 0.90), 2),
            "p99": round(percentile(ordered, 0.99), 2),
            "max": round(ordered[-1], 2) if ordered else float("nan")}


async def commit_to_consumer_latency(nats_url: str, client: KeepAliveClient,
                                     requests: list[bytes], rate_per_s: int,
                                     duration_s: float) -> dict[str, Any]:
    """POST goals at a steady rate; a JetStream subscriber measures, for each event, the time
    from the event's timestamp (taken inside the committing transaction) to its receipt."""
    nats_connection = await nats.connect(nats_url)
    latencies_ms: list[float] = []
    expected = [total_changes(rate_per_s, duration_s)]
    all_received = asyncio.Event()

    async def on_event(message: Msg) -> None:
        received = time.time()
        event = json.loads(message.data)
        if event.get("type") == RELAY_EVENT_TYPE:
            return
        latencies_ms.append((received - datetime.fromisoformat(event["time"]).timestamp())
                            * 1000)
        if len(latencies_ms) >= expected[0]:
            all_received.set()

    try:
        js = nats_connection.jetstream()
        subscription = await js.subscribe(SUBJECTS, cb=on_event, ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.NEW)
        total = expected[0]
        statuses: list[int] = []
        await client.open()

        async def post(connection: Connection, request: bytes) -> None:
            statuses.append(await client.send(connection, request))

        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for number in range(total):
            delay = started + number / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # Open-loop pacing, bounded by the client's connections: a service slower than
            # the rate makes the harness fall behind (the achieved rate is reported).
            connection = await client.idle_connection()
            tasks.append(asyncio.create_task(post(connection, requests[number % len(requests)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        sent = sum(1 for status in statuses if status == 201)
        expected[0] = sent
        if len(latencies_ms) >= sent:
            all_received.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_received.wait(), 10)
        await subscription.unsubscribe()
    finally:
        await client.close()
        await nats_connection.close()
    ordered = sorted(latencies_ms)
    return {
        "rate_per_s": rate_per_s,
        "achieved_rate_per_s": round(sent / elapsed, 1),
        "changes": total,
        "changes_committed": sent,
        "events_received": len(ordered),
        "failed_requests": total - sent,
        "latency_ms": latency_summary(ordered),
    }
