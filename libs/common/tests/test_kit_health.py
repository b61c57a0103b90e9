"""Readiness: 200 only when the database answers, its migrations are at head and (when events
are on) NATS is connected; 503 with the failing check named otherwise."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from asgi_lifespan import LifespanManager
from kit_toy import MIGRATIONS_DIR, create_app, toy_settings

from recovery.common.dev_issuer import DevIssuer
from recovery.common.migrations import alembic_config
from recovery.common.testing.processes import NatsServer, free_port


@asynccontextmanager
async def _started(database_url: str, issuer: DevIssuer,
                   **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The toy app with its lifespan, on a database left exactly as the test prepared it."""
    app = create_app(toy_settings(database_url, issuer, **overrides))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_liveness_answers_while_the_process_runs(toy_sqlite: httpx.AsyncClient) -> None:
    response = await toy_sqlite.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_ready_when_the_database_is_reachable_and_at_head(toy: httpx.AsyncClient) -> None:
    response = await toy.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready",
                               "checks": {"database": "ok", "migrations": "ok"}}


async def test_not_ready_while_migrations_are_behind(database_url: str,
                                                     dev_issuer: DevIssuer) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS_DIR, database_url),
                            "0001")
    async with _started(database_url, dev_issuer) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "behind"}


async def test_not_ready_when_the_database_is_unreachable(dev_issuer: DevIssuer) -> None:
    nowhere = f"postgresql+asyncpg://recovery@127.0.0.1:{free_port()}/none"
    async with _started(nowhere, dev_issuer) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("unreachable") and checks["migrations"] == "unknown"


async def test_not_ready_while_nats_is_down_when_events_are_on(
        tmp_path: Path, dev_issuer: DevIssuer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS_DIR, url), "head")
    async with _started(url, dev_issuer, nats_url=f"nats://127.0.0.1:{free_port()}") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok",
                                         "nats": "disconnected"}


async def test_ready_once_nats_is_connected(tmp_path: Path, dev_issuer: DevIssuer,
                                            nats_server: NatsServer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS_DIR, url), "head")
    async with _started(url, dev_issuer, nats_url=nats_server.url) as client:
        for _ in range(100):
            response = await client.get("/readyz")
            if response.status_code == 200:
                break
            await asyncio.sleep(0.05)
    assert response.status_code == 200
    assert response.json()["checks"]["nats"] == "ok"


async def test_requests_do_not_consult_opentelemetry(tmp_path: Path, dev_issuer: DevIssuer,
                                                     monkeypatch: Any) -> None:
    """FastAPI's own telemetry hooks are off: the kit's metrics and logs are the platform's,
    and a request never pays for asking OpenTelemetry whether anyone listens."""
    from opentelemetry import metrics, trace

    def consulted() -> None:
        raise AssertionError("a request consulted OpenTelemetry")

    url = f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}"
    command.upgrade(alembic_config(MIGRATIONS_DIR, url), "head")
    async with _started(url, dev_issuer) as client:
        monkeypatch.setattr(trace, "get_tracer_provider", consulted)
        monkeypatch.setattr(metrics, "get_meter_provider", consulted)
        assert (await client.get("/healthz")).status_code == 200
