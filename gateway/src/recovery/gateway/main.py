"""The gateway's entry point: ``uvicorn --factory recovery.gateway.main:create_app``.

It owns no database: health, problems, metrics and logging come from the kit; the GraphQL
router and the upstream clients are its own.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, overload

import httpx
import orjson
import strawberry
from cross_web import HTTPException
from fastapi import APIRouter, FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from recovery.common.app import settle_garbage_collector
from recovery.common.auth import Principal, TokenVerifier, unauthorized
from recovery.common.health import healthz, metrics
from recovery.common.observability import (
    RequestContextMiddleware,
    configure_logging,
    flush_logs,
)
from recovery.common.problems import Problem, install_problem_handlers
from recovery.common.settings import Settings, report_unknown_variables
from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import GatewayError
from recovery.gateway.feed import EventFeed
from recovery.gateway.fhir import fhir_router
from recovery.gateway.fhir_subscriptions.routes import subscriptions_router
from recovery.gateway.fhir_subscriptions.service import Subscriptions
from recovery.gateway.schema import build_schema
from recovery.gateway.settings import UPSTREAMS, GatewaySettings
from recovery.gateway.trusted_documents import TrustedDocuments
from recovery.gateway.upstream import Upstreams

SERVICE = "gateway"
#: A readiness probe waits this long for each service's /healthz.
READY_CHECK_SECONDS = 1.0


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    """Strawberry's ASGI app at /graphql, on a plain route: no FastAPI dependency solving
    on each request (a tenth of a simple query's CPU time). Each request it refuses is
    answered with a problem document, as the kit answers every other refusal (strawberry's
    own are plain text); a JSON body that is not an operation (a number, a string) or not
    UTF-8 is refused as malformed. A WebSocket is acknowledged only for a caller with a
    valid token. A request may name a trusted document by its hash, over HTTP and WebSocket
    alike."""

    def __init__(self, schema: strawberry.Schema, *,
                 context: Callable[[Request | WebSocket], GatewayContext],
                 trusted_documents: TrustedDocuments, graphiql: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None,
                         allow_queries_via_get=False, multipart_uploads_enabled=False)
        self.context = context
        self.trusted_documents = trusted_documents

    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> GatewayContext:
        context = self.context(request)
        context.request = request  # resolvers read headers (Idempotency-Key) from it
        return context

    @overload
    async def run(self, request: Request, context: GatewayContext = UNSET,
                  root_value: None = UNSET) -> Response: ...

    @overload
    async def run(self, request: WebSocket, context: GatewayContext = UNSET,
                  root_value: None = UNSET) -> WebSocket: ...

    async def run(self, request: Request | WebSocket, context: GatewayContext = UNSET,
                  root_value: None = UNSET) -> Response | WebSocket:
        try:
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            raise Problem(refused.status_code, refused.reason) from refused

    def parse_json(self, data: str | bytes) -> Any:
        try:
            parsed = super().parse_json(data)
        except (HTTPException, UnicodeDecodeError) as exc:
            raise Problem(400, "The request body is not valid JSON in UTF-8.",
                          kind="malformed-json") from exc
        if not isinstance(parsed, dict | list):
            raise Problem(400, "Send the operation as a JSON object with a `query`.")
        if isinstance(parsed, dict) and self.trusted_documents.in_use:
            try:
                return self.trusted_documents.resolve(parsed)
            except GatewayError as refused:
                raise Problem(400, refused.message, kind=refused.code.value.lower(),
                              members={"errors": [refused.formatted]}) from refused
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket's `subscribe` may name its document by hash too (every message the
        socket receives is read here)."""
        message = super().decode_json(data)
        if isinstance(message, dict) and message.get("type") == "subscribe" \
                and isinstance(message.get("payload"), dict) and self.trusted_documents.in_use:
            message["payload"] = self.trusted_documents.resolve_subscribe(message["payload"])
        return message

    def encode_json(self, data: object) -> bytes:
        """Answers are encoded by orjson, several times faster than the standard library on
        the long lists a front-end asks for."""
        return orjson.dumps(data)

    async def on_ws_connect(self, context: GatewayContext
                            ) -> UnsetType | dict[str, object] | None:
        """At connection_init: without a valid token (in its payload or the handshake's
        header) the connection is closed with 4403, before any operation is sent."""
        try:
            context.principal  # noqa: B018 (verifies the token)
        except GatewayError as refused:
            raise ConnectionRejectionError({"message": refused.message}) from refused
        return await super().on_ws_connect(context)


def create_app(settings: Settings | None = None, gateway: GatewaySettings | None = None,
               transports: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    """The gateway app; ``transports`` lets tests reach services in process."""
    settings = settings or Settings(service=SERVICE)
    gateway = gateway or GatewaySettings(environment=settings.environment)
    configure_logging(settings.service, settings.log_level)
    report_unknown_variables()
    verifier = TokenVerifier(settings)
    upstreams = Upstreams(gateway, transports)

    feed = EventFeed(settings) if settings.events_enabled else None
    documents = TrustedDocuments.load(gateway.trusted_documents_path,
                                      only=gateway.trusted_documents_only)

    def verified(authorization: str | None) -> Principal | None:
        token = bearer_token(authorization)
        return verifier.verify(token) if token else None

    def context(connection: Request | WebSocket) -> GatewayContext:
        principal = verified(connection.headers.get("authorization"))
        return GatewayContext(principal_or_none=principal, upstreams=upstreams,
                              settings=gateway, feed=feed, verify=verified)

    graphql = GatewayGraphQL(build_schema(gateway, documents), context=context,
                             trusted_documents=documents, graphiql=gateway.graphiql_on)
    # FHIR subscriptions share the feed's NATS connection (one per process).
    fhir_subscriptions = Subscriptions.build(settings, gateway, upstreams,
                                             feed.bus if feed is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if feed is not None:
            feed.start()
        fhir_subscriptions.start()
        # As every service does: without it, full collections over the frameworks' objects
        # paused requests (a team of 200 builds thousands of objects per answer).
        settle_garbage_collector()
        try:
            yield
        finally:
            await fhir_subscriptions.stop()
            if feed is not None:
                await feed.stop()
            await upstreams.close()
            flush_logs()

    app = FastAPI(title="Recovery Platform: gateway", version="1.0.0", lifespan=lifespan,
                  description="One GraphQL API over the five services, at /graphql.")
    app.state.upstreams = upstreams
    app.state.gateway_settings = gateway
    app.state.feed = feed
    app.state.fhir_subscriptions = fhir_subscriptions
    install_problem_handlers(app)
    # Strawberry's app as the routes' endpoint: Starlette hands it the request as it came.
    app.routes.extend([Route("/graphql", graphql, methods=["GET", "POST"],
                             include_in_schema=False),
                       WebSocketRoute("/graphql", graphql)])
    # Before fhir_router, whose /fhir/{resource_type} routes would take Subscription.
    app.include_router(subscriptions_router(fhir_subscriptions, verified))
    app.include_router(fhir_router(upstreams, settings, gateway))
    app.include_router(_health_router(upstreams, feed))
    app.add_middleware(RequestContextMiddleware, service=settings.service,
                       max_body_bytes=settings.max_body_bytes)
    return app


def _health_router(upstreams: Upstreams, feed: EventFeed | None) -> APIRouter:
    router = APIRouter(tags=["operations"])
    router.add_api_route("/healthz", healthz, methods=["GET"], summary="The process is alive")
    router.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")

    @router.get("/readyz", summary="Every service behind the gateway answers; NATS connected "
                                   "(when live changes are on)")
    async def readyz() -> JSONResponse:
        async def check(service: str) -> tuple[str, str]:
            try:
                response = await asyncio.wait_for(
                    upstreams.clients[service].get("/healthz"), READY_CHECK_SECONDS)
            except Exception as exc:
                return service, f"unreachable ({type(exc).__name__})"
            return service, "ok" if response.status_code == 200 else "not ready"

        checks: dict[str, Any] = dict(await asyncio.gather(*(check(s) for s in UPSTREAMS)))
        if feed is not None:
            checks["nats"] = "ok" if feed.connected else "disconnected"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    return router
