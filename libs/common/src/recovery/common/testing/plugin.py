"""The pytest plugin every test suite loads (``-p recovery.common.testing.plugin``)."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from recovery.common.dev_issuer import DevIssuer
from recovery.common.migrations import upgrade_to_head
from recovery.common.settings import Settings
from recovery.common.testing.processes import NatsServer, PostgresServer, postgres_binaries

BACKENDS = ["sqlite", "postgres"]


def pytest_report_header() -> str:
    found = postgres_binaries()
    if found is None:
        return ("postgresql: server binaries (initdb, pg_ctl) not found - PostgreSQL tests will "
                "be SKIPPED; install Debian's postgresql package to run them")
    return f"postgresql: using server binaries in {found}"


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_nats_server() -> Iterator[NatsServer]:
    """A NATS server for one test alone, free to be stopped and restarted."""
    server = NatsServer()
    server.start()
    yield server
    server.stop()
    server.remove_storage()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    bin_dir = postgres_binaries()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return postgres_database(request, "t")


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database, for what only PostgreSQL does (several replicas
    on one database, a failover)."""
    return postgres_database(request, "t")


def postgres_database(request: pytest.FixtureRequest, name: str) -> str:
    """A new database on the session's PostgreSQL server; without the server binaries, a
    skip with the reason (a failure in CI)."""
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        if running_in_ci():
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are required in CI; "
                        "install Debian's postgresql package")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine; "
                    "install Debian's postgresql package to run the PostgreSQL tests")
    return server.create_database(f"{name}_{uuid.uuid4().hex[:16]}")


def running_in_ci() -> bool:
    """CI=true (or 1/yes), as CI systems set it; a skipped backend is a failure there."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session")
def dev_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    issuer = DevIssuer(tmp_path_factory.mktemp("dev-issuer"))
    issuer.ensure_keys()
    return issuer


class TokenFactory:
    """Signed development tokens for every role, for tests."""

    def __init__(self, issuer: DevIssuer) -> None:
        self.issuer = issuer

    def __call__(self, role: str, sub: str, *, teams: list[str] | None = None,
                 patient: str | None = None, scope: str | None = None, **kwargs: Any) -> str:
        return self.issuer.mint(role=role, sub=sub, teams=teams, patient=patient, scope=scope,
                                **kwargs)

    def service_user(self, person: str, **kwargs: Any) -> str:
        return self("service_user", person, patient=person, **kwargs)

    def clinician(self, sub: str = "staff-1", teams: list[str] | None = None, **kw: Any) -> str:
        return self("clinician", sub, teams=teams if teams is not None else ["team-a"], **kw)

    def peer_specialist(self, sub: str = "peer-1", teams: list[str] | None = None) -> str:
        return self("peer_specialist", sub, teams=teams if teams is not None else ["team-a"])

    def educator(self, sub: str = "educator-1", teams: list[str] | None = None) -> str:
        return self("educator", sub, teams=teams if teams is not None else ["team-a"])

    def manager(self, sub: str = "manager-1", teams: list[str] | None = None) -> str:
        return self("manager", sub, teams=teams if teams is not None else ["team-a"])

    def admin(self, sub: str = "admin-1", teams: list[str] | None = None) -> str:
        return self("admin", sub, teams=teams if teams is not None else ["team-a"])

    def system(self, sub: str = "partner-1", scope: str = "system/*.rs") -> str:
        return self("system", sub, scope=scope)

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def tokens(dev_issuer: DevIssuer) -> TokenFactory:
    return TokenFactory(dev_issuer)


def make_settings(service: str, *, database_url: str, jwks_file: Path,
                  nats_url: str | None = None, **overrides: Any) -> Settings:
    return Settings(
        service=service,
        environment="test",
        database_url=database_url,
        jwks_file=str(jwks_file),
        nats_url=nats_url or "nats://127.0.0.1:1",
        events_enabled=nats_url is not None,
        **overrides,
    )


@asynccontextmanager
async def running_service(app_factory: Callable[[Settings], FastAPI], settings: Settings,
                          migrations_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Migrate, start the app with its lifespan, and hand back an in-process client."""
    await asyncio.to_thread(upgrade_to_head, migrations_dir, settings.database_url)
    app = app_factory(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def module_database_url(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """A fresh database for a module-scoped fixture parametrised by ``BACKENDS`` (``request.
    param``), so a module's API tests share one migrated service per backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}"
    return postgres_database(request, name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def auth(token: str, etag: str | None = None) -> dict[str, str]:
    """Bearer authorization, and If-Match when an ETag is given."""
    headers = {"Authorization": f"Bearer {token}"}
    if etag is not None:
        headers["If-Match"] = etag
    return headers


def service_api_fixture(name: str, service: str, app_factory: Callable[[Settings], FastAPI],
                        migrations_dir: Path, wrap: Callable[[httpx.AsyncClient, TokenFactory],
                                                             Any]) -> Any:
    """A module-scoped ``api`` fixture for a service's conftest, parametrised by backend: the
    service migrated and running on a fresh database, its client wrapped by ``wrap``."""

    @pytest.fixture(scope="module", params=BACKENDS, name="api")
    async def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[Any]:
        database_url = module_database_url(request, tmp_path_factory, name)
        settings = make_settings(service, database_url=database_url,
                                 jwks_file=dev_issuer.jwks_path)
        async with running_service(app_factory, settings, migrations_dir) as client:
            yield wrap(client, tokens)

    return api
