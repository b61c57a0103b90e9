"""JSON logs with a request id, Prometheus metrics, and the HTTP limits every service keeps."""

import logging
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recovery.common.problems import Problem, problem_response

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = request_id_var.get()
    if request_id:
        event["request_id"] = request_id
    return event


def configure_logging(service: str, level: str = "INFO") -> None:
    """Structured JSON lines on stdout. Callers log ids and codes, never clinical text."""
    logging.basicConfig(stream=sys.stdout, format="%(message)s", level=level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_request_id,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


class RequestContextMiddleware:
    """Request id, body-size limit, metrics and one log line per request (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.log = structlog.get_logger("http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = raw_id if 0 < len(raw_id) <= 64 and raw_id.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(scope, receive, send)
            request_id_var.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise Problem(413, "The request body is too large.", kind="body-too-large")
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            method = scope["method"]
            REQUESTS.labels(self.service, method, route_path, str(status)).inc()
            LATENCY.labels(self.service, method, route_path).observe(elapsed)
            if route_path not in {"/healthz", "/readyz", "/metrics"}:
                self.log.info("request", method=method, route=route_path, status=status,
                              ms=round(elapsed * 1000, 2))
            request_id_var.reset(token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(413, f"The request body is larger than {self.max_body_bytes} bytes.",
                          kind="body-too-large")
        await problem_response(problem)(scope, receive, send)
