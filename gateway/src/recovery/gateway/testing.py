"""The whole platform in one process for tests and the benchmark: the five services with
their lifespans (on real databases, and NATS when given), and the gateway in front, reaching
them through in-process transports (or a real, closed port for a stopped service)."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.gateway.main import SERVICE, create_app
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.upstream import Upstreams

#: An address where nothing listens: a service that is stopped.
STOPPED = "http://127.0.0.1:9"


def service_modules() -> dict[str, ModuleType]:
    from recovery.crisis_plans import main as crisis_plans
    from recovery.goals import main as goals
    from recovery.risk import main as risk
    from recovery.training import main as training
    from recovery.workforce import main as workforce

    return {"goals": goals, "crisis-plans": crisis_plans, "risk": risk, "training": training,
            "workforce": workforce}


class RecordingTransport(httpx.AsyncBaseTransport):
    """A service's transport that keeps every request the gateway sends through it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@dataclass
class Platform:
    """In-process clients of every service and of the gateway."""

    services: dict[str, httpx.AsyncClient]
    gateway: httpx.AsyncClient
    upstreams: Upstreams
    tokens: TokenFactory
    stack: AsyncExitStack = field(repr=False)

    async def query(self, token: str | None, query: str,
                    variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A GraphQL operation over HTTP; the whole response body."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.gateway.post("/graphql", json={
            "query": query, "variables": dict(variables or {})}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    @contextmanager
    def recording(self, service: str) -> Iterator[list[httpx.Request]]:
        """The requests the gateway sends ``service`` while the block runs."""
        recorder = RecordingTransport(self.upstreams.transports[service])
        self.upstreams.transports[service] = recorder
        try:
            yield recorder.requests
        finally:
            self.upstreams.transports[service] = recorder.inner

    async def rest(self, service: str, method: str, path: str, token: str, *,
                   json: Any = None, etag: str | None = None,
                   status: int | tuple[int, ...] = (200, 201)) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-Match"] = etag
        response = await self.services[service].request(method, path, json=json,
                                                         headers=headers)
        expected = (status,) if isinstance(status, int) else status
        assert response.status_code in expected, f"{method} {path}: {response.text}"
        return response.json() if response.content else None


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app under a real uvicorn server on a free loopback port (for websockets)."""
    import uvicorn

    from recovery.common.testing.processes import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_platform(*, databases: Callable[[str], str], jwks_file: Path,
                           tokens: TokenFactory, nats_url: str | None = None,
                           stopped: tuple[str, ...] = (),
                           gateway: GatewaySettings | None = None) -> AsyncIterator[Platform]:
    """Every service (but the ``stopped`` ones) started on its own database."""
    modules = service_modules()
    async with AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        starting = {
            name: make_settings(module.SERVICE, database_url=databases(name),
                                jwks_file=jwks_file, nats_url=nats_url)
            for name, module in modules.items() if name not in stopped}

        async def start(name: str) -> None:
            module = modules[name]
            clients[name] = await stack.enter_async_context(
                running_service(module.create_app, starting[name], module.MIGRATIONS_DIR))

        # One after another: migrations of several SQLite files at once gain nothing.
        for name in starting:
            await start(name)
        transports: dict[str, httpx.AsyncBaseTransport] = {
            name: httpx.ASGITransport(app=client.app)  # type: ignore[attr-defined]
            for name, client in clients.items()}
        settings = gateway or GatewaySettings(environment="test")
        overrides = {f"{name.replace('-', '_')}_url": STOPPED for name in stopped}
        settings = settings.model_copy(update=overrides)
        gateway_settings = make_settings(SERVICE, database_url="sqlite://",
                                         jwks_file=jwks_file, nats_url=nats_url)
        app = create_app(gateway_settings, settings, transports)
        manager = await stack.enter_async_context(LifespanManager(app))
        client = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway"))
        client.app = app  # type: ignore[attr-defined]
        yield Platform(services=clients, gateway=client, upstreams=app.state.upstreams,
                       tokens=tokens, stack=stack)
        await asyncio.sleep(0)
