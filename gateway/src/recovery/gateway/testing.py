"""The whole platform in one process for tests and the benchmark: the five services with
their lifespans (on real databases, and NATS when given), and the gateway in front, reaching
them through in-process transports (or a real, closed port for a stopped service)."""

import asyncio
import json
import time
from collections import defaultdict
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


@dataclass
class Received:
    headers: dict[str, str]
    bundle: dict[str, Any]

    @property
    def status(self) -> dict[str, Any]:
        """The SubscriptionStatus (R4 Parameters) as a name -> value map."""
        parameters: dict[str, Any] = {}
        for p in self.bundle["entry"][0]["resource"]["parameter"]:
            parameters[p["name"]] = p.get("part") or next(
                v for k, v in p.items() if k.startswith("value"))
        return parameters

    @property
    def kind(self) -> str:
        return str(self.status["type"])

    @property
    def event(self) -> dict[str, Any]:
        parts = self.status["notification-event"]
        return {p["name"]: next(v for k, v in p.items() if k.startswith("value"))
                for p in parts}


class Receiver:
    """An HTTP endpoint as a subscriber runs one: every notification accepted is kept, by
    path; a path can be told to fail its next requests (or all of them) with a 500."""

    def __init__(self) -> None:
        self.received: dict[str, list[Received]] = defaultdict(list)
        self.attempts: dict[str, int] = defaultdict(int)
        self.failing: dict[str, int] = {}
        self.held: dict[str, asyncio.Event] = {}
        self.address = ""

    def endpoint(self, name: str) -> str:
        return f"http://{self.address}/hooks/{name}"

    def fail(self, name: str, times: int = -1) -> None:
        """The next ``times`` requests to this hook fail (-1: every one)."""
        self.failing[f"/hooks/{name}"] = times

    def hold(self, name: str) -> asyncio.Event:
        """Requests to this hook are kept, then answered only once the event returned is set."""
        gate = self.held[f"/hooks/{name}"] = asyncio.Event()
        return gate

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        self.attempts[path] += 1
        left = self.failing.get(path, 0)
        if left:
            self.failing[path] = left - 1 if left > 0 else left
            status = 500
        else:
            status = 200
            self.received[path].append(Received(
                {k.decode().lower(): v.decode() for k, v in scope["headers"]}, json.loads(body)))
            if path in self.held:
                await self.held[path].wait()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def of(self, name: str, kind: str | None = None) -> list[Received]:
        return [r for r in self.received[f"/hooks/{name}"] if kind is None or r.kind == kind]

    async def wait_for(self, name: str, count: int, kind: str = "event-notification",
                       within: float = 8.0) -> list[Received]:
        """The first ``count`` notifications of ``kind`` this hook accepted."""
        deadline = time.monotonic() + within
        while len(self.of(name, kind)) < count:
            assert time.monotonic() < deadline, (
                f"{name}: {len(self.of(name, kind))} of {count} {kind} notifications")
            await asyncio.sleep(0.02)
        return self.of(name, kind)[:count]


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A ``Receiver`` listening on a free loopback port (FHIR subscriptions' endpoint)."""
    hooks = Receiver()
    async with serving(hooks) as address:
        hooks.address = address
        yield hooks
