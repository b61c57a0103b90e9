"""Builds a service's FastAPI app: the kit's wiring around the service's own routers."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import AuditTrail
from recovery.common.auth import TokenVerifier
from recovery.common.db import create_engine, session_factory
from recovery.common.events.bus import EventBus
from recovery.common.events.consumer import ConsumerRunner, EventHandler
from recovery.common.events.outbox import WAKE_RELAY
from recovery.common.events.relay import OutboxRelay
from recovery.common.health import health_router
from recovery.common.observability import RequestContextMiddleware, configure_logging
from recovery.common.problems import ProblemDocument, install_problem_handlers
from recovery.common.settings import Settings


@dataclass
class ServiceKit:
    """Everything the kit runs for one service process; lives on ``app.state.kit``."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    audit: AuditTrail
    bus: EventBus
    relay: OutboxRelay
    consumers: ConsumerRunner
    migrations_dir: Path
    extras: dict[str, Any] = field(default_factory=dict)


def build_kit(settings: Settings, migrations_dir: Path,
              handlers: Sequence[EventHandler] = ()) -> ServiceKit:
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    bus = EventBus(settings)
    sessions = session_factory(engine)
    relay = OutboxRelay(sessions, bus, poll_seconds=settings.outbox_poll_seconds,
                        batch_size=settings.outbox_batch_size)
    sessions.configure(info={WAKE_RELAY: relay.wake})
    return ServiceKit(
        settings=settings,
        engine=engine,
        sessions=sessions,
        verifier=TokenVerifier(settings),
        audit=AuditTrail(sessions),
        bus=bus,
        relay=relay,
        consumers=ConsumerRunner(bus, sessions, settings, handlers),
        migrations_dir=migrations_dir,
    )


def _problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI where every error, validation included, is a problem document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                             description=app.description)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["ProblemDocument"] = ProblemDocument.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}")
        for nested, definition in components["ProblemDocument"].pop("$defs", {}).items():
            components[nested] = definition
        problem = {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/ProblemDocument"}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                for status in ("400", "401", "403", "413", "422", "500"):
                    responses[status] = {"description": status_phrase(status),
                                         "content": problem}
        app.openapi_schema = schema
        return schema

    return openapi


def status_phrase(status: str) -> str:
    from http import HTTPStatus

    return HTTPStatus(int(status)).phrase


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
    """A service app with health, metrics, problems, auth, audit, outbox relay, consumers."""
    configure_logging(settings.service, settings.log_level)
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
        try:
            yield
        finally:
            await kit.consumers.stop()
            await kit.relay.stop()
            await kit.audit.stop()
            await kit.bus.stop()
            await kit.engine.dispose()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.kit = kit
    install_problem_handlers(app)
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, service=settings.service,
                       max_body_bytes=settings.max_body_bytes)
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    return app
