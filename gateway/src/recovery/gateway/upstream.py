"""The services behind the gateway: one pooled httpx client each, per-call timeouts, and the
translation of their answers (problem documents, outages) into typed errors."""

import asyncio
import re
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import orjson
import structlog
from prometheus_client import Counter as PromCounter

from recovery.gateway.errors import STATUS_CODES, ErrorCode, GatewayError
from recovery.gateway.settings import UPSTREAMS, GatewaySettings

log = structlog.get_logger(__name__)

#: The services' largest page.
PAGE_SIZE = 200
#: What the services accept as an id (a FHIR id's characters and a few more, 64 at most).
ID_PATTERN = re.compile(r"[A-Za-z0-9._:@|-]{1,64}")
UPSTREAM_CALLS = PromCounter("gateway_upstream_calls_total", "Calls to the services",
                             ["service", "outcome"])


class UpstreamAnswer:
    """A successful answer: status, JSON body and the ETag, if any."""

    __slots__ = ("body", "etag", "status")

    def __init__(self, status: int, body: Any, etag: str | None) -> None:
        self.status = status
        self.body = body
        self.etag = etag


def one_connection(tls: ssl.SSLContext) -> Callable[[], httpx.AsyncBaseTransport]:
    """Transports of one connection each, sharing one TLS context (a context of its own
    loads the CA bundle again: tens of milliseconds a lane)."""
    return lambda: httpx.AsyncHTTPTransport(
        verify=tls, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


class Lanes(httpx.AsyncBaseTransport):
    """Calls to one service over ``count`` lanes, each a transport of one connection: a call
    takes a free lane (the one freed last, whose connection is warm) and gives it back when
    its answer is closed; a call finding none free waits its turn here, in order.

    Why not one pool of ``count`` connections: whenever a request starts or ends, httpcore's
    pool checks every connection it holds (each idle one with a readability syscall), and
    rescans every queued request against them, so under 16 concurrent calls one pool of 16
    connections cost each call twice the CPU of a pool of one. Each lane's pool holds one."""

    def __init__(self, count: int,
                 make: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self.count = count
        self.make = make
        #: Lanes are made as calls need them, up to ``count``.
        self.lanes: list[httpx.AsyncBaseTransport] = []
        self.free: asyncio.LifoQueue[httpx.AsyncBaseTransport] = asyncio.LifoQueue()

    @classmethod
    def over(cls, count: int, transport: httpx.AsyncBaseTransport) -> "Lanes":
        """``count`` lanes over one transport (tests reach services in process)."""
        return cls(count, lambda: transport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.free.empty() and len(self.lanes) < self.count:
            lane = self.make()
            self.lanes.append(lane)
        else:
            lane = await self.free.get()
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            self.free.put_nowait(lane)
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Returning(stream, lambda: self.free.put_nowait(lane)),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        for lane in dict.fromkeys(self.lanes):  # a transport given for tests is every lane
            await lane.aclose()


class _Returning(httpx.AsyncByteStream):
    """An answer's body that gives its lane back once it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self.inner = inner
        self.release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        release, self.release = self.release, None
        try:
            await self.inner.aclose()
        finally:
            if release is not None:
                release()


class Upstreams:
    """One client per service; the caller's token is forwarded as is on every call."""

    def __init__(self, settings: GatewaySettings,
                 transports: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> None:
        self.settings = settings
        self.timeout = settings.upstream_timeout_seconds
        self._timeouts = httpx.Timeout(self.timeout).as_dict()
        lanes = settings.upstream_max_connections
        tls = httpx.create_ssl_context()
        #: A client per service for the occasional call (health, FHIR passthrough); the
        #: GraphQL resolvers' calls go straight to its transport (see ``call``).
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.transports: dict[str, httpx.AsyncBaseTransport] = {}
        for service in UPSTREAMS:
            given = (transports or {}).get(service)
            transport = Lanes(lanes, one_connection(tls)) if given is None else \
                Lanes.over(lanes, given)
            self.transports[service] = transport
            self.clients[service] = httpx.AsyncClient(
                base_url=settings.url_of(service), transport=transport,
                timeout=httpx.Timeout(self.timeout))
        #: Calls made per service since start (tests and the benchmark read it).
        self.calls: Counter[str] = Counter()

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))

    async def call(self, service: str, method: str, path: str, token: str | None, *,
                   json: Any = None, params: Mapping[str, Any] | None = None,
                   if_match: str | None = None,
                   idempotency_key: str | None = None) -> UpstreamAnswer:
        """One call; any failure becomes a ``GatewayError`` naming the service.

        Straight to the client's transport: the client's redirect, auth and cookie machinery
        cost about half of each call's CPU time, and a service call needs none of it."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if if_match:
            headers["If-Match"] = if_match
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        base_url = str(self.clients[service].base_url).rstrip("/")
        request = httpx.Request(method, base_url + path, params=params, json=json,
                                headers=headers, extensions={"timeout": self._timeouts})
        self.calls[service] += 1
        try:
            # The transport's timeout bounds each phase; this bounds the whole call.
            async with asyncio.timeout(self.timeout):
                response = await self.transports[service].handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            UPSTREAM_CALLS.labels(service, "timeout").inc()
            raise GatewayError(ErrorCode.upstream_timeout,
                               f"The {service} service did not answer in time.",
                               service=service) from exc
        except httpx.HTTPError as exc:
            UPSTREAM_CALLS.labels(service, "unavailable").inc()
            log.warning("upstream_unavailable", service=service, error=type(exc).__name__)
            raise GatewayError(ErrorCode.upstream_unavailable,
                               f"The {service} service is unavailable.",
                               service=service) from exc
        if response.status_code < 400:
            UPSTREAM_CALLS.labels(service, "ok").inc()
            # orjson: a service's answer is decoded in a fifth of the standard library's time.
            body = orjson.loads(response.content) if response.content else None
            return UpstreamAnswer(response.status_code, body, response.headers.get("ETag"))
        UPSTREAM_CALLS.labels(service, str(response.status_code)).inc()
        raise problem_error(service, response)


    async def every_item(self, service: str, path: str, token: str | None,
                         params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of one of the service's cursor-paged lists, ``PAGE_SIZE`` a call."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page_params = {**(params or {}), "limit": PAGE_SIZE}
            if cursor:
                page_params["cursor"] = cursor
            page = (await self.call(service, "GET", path, token, params=page_params)).body
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def segment(value: object) -> str:
    """An id the caller sent, to stand in a service path: refused (INVALID) when it is not
    an id the services accept, so that it can never reach another path ("../", "/", "?")."""
    text = str(value)
    if not ID_PATTERN.fullmatch(text) or text in {".", ".."}:
        raise GatewayError(ErrorCode.invalid, "That is not a valid id.")
    return text


def problem_error(service: str, response: httpx.Response) -> GatewayError:
    """The typed error for a service's problem document (its detail is safe to show)."""
    code = STATUS_CODES.get(response.status_code, ErrorCode.upstream_error)
    detail = f"The {service} service could not answer."
    extra: dict[str, Any] = {"status": response.status_code}
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if isinstance(problem, dict) and code is not ErrorCode.upstream_error:
        detail = str(problem.get("detail") or detail)
        if problem.get("invalid-params"):
            extra["invalidParams"] = problem["invalid-params"]
    return GatewayError(code, detail, service=service, detail=extra)
