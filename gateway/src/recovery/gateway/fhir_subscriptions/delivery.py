"""Notifications POSTed to subscribers' endpoints: one attempt within the subscription's
timeout, and the configured pauses between attempts. Logs name the subscription and what
went wrong (a status code, an exception type), never the endpoint, headers or body."""

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import structlog
from prometheus_client import Counter

from recovery.gateway.fhir_subscriptions.models import StoredSubscription
from recovery.gateway.fhir_subscriptions.rules import FHIR_JSON

log = structlog.get_logger(__name__)

NOTIFICATIONS = Counter("gateway_fhir_notifications_total",
                        "FHIR subscription notifications POSTed, by type and outcome",
                        ["type", "outcome"])


def channel_headers(entry: StoredSubscription) -> dict[str, str]:
    """The subscriber's ``channel.header`` lines, then our content type."""
    headers: dict[str, str] = {}
    for line in entry.headers:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    headers["Content-Type"] = FHIR_JSON
    return headers


class Deliveries:
    """POSTs through one transport, not a client: httpx's client logs each request's URL,
    and an endpoint's query may hold the subscriber's secret. Redirects are not followed (a
    notification goes only where the rules allowed)."""

    def __init__(self, pauses: Sequence[float],
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.pauses = list(pauses)
        self.transport = transport or httpx.AsyncHTTPTransport()

    async def close(self) -> None:
        await self.transport.aclose()

    async def post_once(self, entry: StoredSubscription, bundle: dict[str, Any]) -> str | None:
        """None when the endpoint accepted the notification (any 2xx); else why not."""
        request = httpx.Request(
            "POST", entry.endpoint, content=orjson.dumps(bundle), headers=channel_headers(entry),
            extensions={"timeout": httpx.Timeout(entry.timeout_seconds).as_dict()})
        try:
            async with asyncio.timeout(entry.timeout_seconds):
                response = await self.transport.handle_async_request(request)
                await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return "gave no answer within the timeout"
        except httpx.HTTPError as exc:
            return f"could not be reached ({type(exc).__name__})"
        if 200 <= response.status_code < 300:
            return None
        return f"answered HTTP {response.status_code}"

    async def post(self, entry: StoredSubscription, bundle: dict[str, Any], kind: str,
                   *, attempts: int | None = None) -> str | None:
        """Up to ``attempts`` tries (one more than the pauses by default), pausing between
        them; None once one succeeds, else why the last failed."""
        tries = attempts if attempts is not None else len(self.pauses) + 1
        why: str | None = None
        for attempt in range(1, tries + 1):
            why = await self.post_once(entry, bundle)
            if why is None:
                NOTIFICATIONS.labels(kind, "delivered").inc()
                return None
            log.warning("fhir_notification_failed", subscription=entry.id, type=kind,
                        attempt=attempt, failure=why)
            if attempt < tries and self.pauses:
                await asyncio.sleep(self.pauses[min(attempt, len(self.pauses)) - 1])
        NOTIFICATIONS.labels(kind, "given_up").inc()
        return why
