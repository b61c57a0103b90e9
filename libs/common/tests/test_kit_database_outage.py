"""A database that cannot be reached (a failover, a restart) is the caller's to retry: 503
with Retry-After and a problem document, never a 500; the service recovers by itself."""

import httpx
from asgi_lifespan import LifespanManager
from kit_toy import MIGRATIONS_DIR, create_app, toy_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, running_service
from recovery.common.testing.processes import free_port


def _assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 503


async def test_an_unreachable_database_is_a_503_with_retry_after(
        dev_issuer: DevIssuer, tokens: TokenFactory) -> None:
    url = f"postgresql+asyncpg://recovery@127.0.0.1:{free_port()}/nowhere"
    app = create_app(toy_settings(url, dev_issuer))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            staff = tokens.header(tokens.clinician("staff-1", ["t"]))
            _assert_unavailable(await client.get("/v1/notes/n-1", headers=staff))
            _assert_unavailable(await client.post("/v1/notes", headers=staff, json={
                "service_user_id": "su-1", "team_id": "t", "size": 1}))


async def test_connections_lost_in_a_failover_cost_one_503_then_the_service_recovers(
        postgres_url: str, dev_issuer: DevIssuer, tokens: TokenFactory) -> None:
    database_url = postgres_url
    staff = tokens.header(tokens.clinician("staff-1", ["t"]))
    settings = toy_settings(database_url, dev_issuer, database_pool_size=1)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        created = await client.post("/v1/notes", headers=staff, json={
            "service_user_id": "su-1", "team_id": "t", "size": 1})
        assert created.status_code == 201
        note = f"/v1/notes/{created.json()['id']}"
        assert (await client.get(note, headers=staff)).status_code == 200
        # The server ends every connection of the service, as a failover does.
        admin = create_async_engine(make_url(database_url).set(database="postgres"))
        async with admin.connect() as connection:
            await connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": make_url(database_url).database})
        await admin.dispose()
        # The pool's one connection is gone: the request on it is refused as retryable...
        _assert_unavailable(await client.get(note, headers=staff))
        # ...and the pool has replaced it for the next one.
        assert (await client.get(note, headers=staff)).status_code == 200
