"""Builds a service's FastAPI app: the kit's wiring around the service's own routers."""

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig

from recovery.common.audit_export import audit_router
from recovery.common.events.consumer import EventHandler
from recovery.common.health import health_router
from recovery.common.idempotency import forget_old_keys, install_replay_handler
from recovery.common.kit import ServiceKit, build_kit
from recovery.common.observability import (
    RequestContextMiddleware,
    configure_logging,
    flush_logs,
)
from recovery.common.periodic import run_periodically
from recovery.common.problems import (
    FHIR_MEDIA_TYPE,
    OUTCOME_SCHEMA_REF,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_SCHEMA_REF,
    InvalidParam,
    ProblemDocument,
    install_problem_handlers,
)
from recovery.common.settings import Settings, report_unknown_variables

__all__ = ["ServiceKit", "build_kit", "create_service_app"]

_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}
_OUTCOME_CONTENT = {FHIR_MEDIA_TYPE: {"schema": {"$ref": OUTCOME_SCHEMA_REF}}}
#: The shape of an OperationOutcome as the kit writes it (``problems.operation_outcome``).
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["severity", "code"],
            "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                           "details": {"type": "object"}, "diagnostics": {"type": "string"},
                           "expression": {"type": "array", "items": {"type": "string"}}}}},
    },
}
#: FastAPI's own OpenTelemetry hooks, off: the kit's metrics and logs are the platform's, and
#: with the hooks on, every request first asks OpenTelemetry's global providers (reading the
#: environment) whether anyone is listening.
NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                        "operation_spans": False, "auto_configure": False}
#: Generation thresholds after start-up (CPython's defaults are 700, 10, 10).
GC_THRESHOLD = (7000, 20, 20)
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _problem_statuses(operation: dict[str, Any]) -> list[str]:
    """The error statuses the kit itself can answer for this operation."""
    # Malformed request, body too large, a NUL character anywhere (422), our fault.
    statuses = ["400", "413", "422", "500"]
    if operation.get("security"):
        statuses += ["401", "403"]
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.append("404")
    return statuses


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI where every error, validation included, is a documented problem document."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                         description=app.description)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ProblemDocument"] = ProblemDocument.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}")
    components["ProblemDocument"].pop("$defs", None)
    components[InvalidParam.__name__] = InvalidParam.model_json_schema()
    components["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    for path, path_item in schema.get("paths", {}).items():
        fhir = path == "/fhir" or path.startswith("/fhir/")
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in _problem_statuses(operation):
                responses.setdefault(status, {"description": HTTPStatus(int(status)).phrase})
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                content = response.get("content", {})
                # Statuses a route declared without a body of its own answer with a problem
                # (an OperationOutcome under /fhir).
                if fhir:
                    response["content"] = _OUTCOME_CONTENT
                elif not content or ("application/json" in content and _is_default(content)):
                    response["content"] = _PROBLEM_CONTENT
    app.openapi_schema = schema
    return schema


def _is_default(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return not schema or ref.endswith(("/HTTPValidationError", "/ProblemDocument"))


def settle_garbage_collector() -> None:
    """Once the app has started: move everything alive (the imported frameworks, models and
    schemas) out of the collector's reach, and collect the young generations less often.

    Without it a full collection walked those objects under load and paused every request
    for 80 to 170 ms; frozen, it takes a few milliseconds. Request garbage is mostly freed
    by reference counting, so a larger first threshold costs little memory.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD[0], GC_THRESHOLD[1], GC_THRESHOLD[2])


def create_service_app(
    *,
    settings: Settings,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    migrations_dir: Path,
    handlers: Sequence[EventHandler] = (),
    on_startup: Sequence[Callable[[ServiceKit], Awaitable[None]]] = (),
) -> FastAPI:
    """A service app with health, metrics, problems, auth, audit (and its FHIR export),
    outbox relay and consumers."""
    configure_logging(settings.service, settings.log_level)
    report_unknown_variables()
    kit = build_kit(settings, migrations_dir, handlers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kit.audit.start()
        if settings.events_enabled:
            kit.bus.start()
            kit.relay.start()
            kit.consumers.start()
        for hook in on_startup:
            await hook(kit)
        settle_garbage_collector()
        try:
            yield
        finally:
            await kit.consumers.stop()
            await kit.relay.stop()
            await kit.audit.stop()
            await kit.bus.stop()
            await kit.read_engine.dispose()
            await kit.engine.dispose()
            flush_logs()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan,
                  telemetry=NO_NATIVE_TELEMETRY)
    app.state.kit = kit
    install_problem_handlers(app)
    install_replay_handler(app)
    for router in (*routers, audit_router, health_router):
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, service=settings.service,
                       max_body_bytes=settings.max_body_bytes)

    def openapi() -> dict[str, Any]:
        return problem_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    run_periodically(app, "idempotency_sweep", forget_old_keys,
                     every_s=settings.idempotency_sweep_seconds,
                     first_after_s=settings.idempotency_sweep_seconds)
    return app
