"""The gateway keeps at most one call in flight per pooled connection to a service: a
caseload's fan-out waits its turn in the gateway, not in the HTTP pool's queue."""

import asyncio

import httpx

from recovery.gateway.settings import GatewaySettings
from recovery.gateway.upstream import Upstreams
from recovery.goals.main import create_app


class InFlight(httpx.AsyncBaseTransport):
    """The real service's transport, counting the calls in flight through it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = self.most = self.answered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0)  # let every other waiting call try to start
            response = await self.inner.handle_async_request(request)
            self.answered += 1
            return response
        finally:
            self.now -= 1


async def test_a_fan_out_wider_than_the_pool_waits_for_free_connections() -> None:
    counting = InFlight(httpx.ASGITransport(app=create_app()))
    upstreams = Upstreams(GatewaySettings(upstream_max_connections=3), {"goals": counting})
    try:
        answers = await asyncio.gather(*(
            upstreams.call("goals", "GET", "/healthz", None) for _ in range(40)))
    finally:
        await upstreams.close()
    assert [answer.status for answer in answers] == [200] * 40
    assert counting.answered == 40
    assert counting.most == 3
