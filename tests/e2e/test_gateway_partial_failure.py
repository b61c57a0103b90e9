"""One service stopped or slow: the rest of a `serviceUser` answer still arrives, the failed
field is null with a typed error naming the service, and the answer comes within the
configured timeout. The services run in process on each database, with real NATS."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import BACKENDS, TokenFactory, running_in_ci
from recovery.common.testing.processes import NatsServer, PostgresServer
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.testing import running_platform

pytestmark = pytest.mark.integration

PERSON = "person-partial-1"
QUERY = """
query ($id: ID!) {
  serviceUser(id: $id) {
    goals { totalCount edges { node { description } } }
    activeCrisisPlan { id }
    riskAssessments { totalCount }
  }
}"""


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A database of its own for each service, on one backend."""
    if request.param == "sqlite":
        return lambda name: f"sqlite+aiosqlite:///{tmp_path / name}.db"
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        if running_in_ci():
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are required in CI")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine")
    return lambda name: server.create_database(
        f"{name.replace('-', '_')}_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A service that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def write_goal(platform: Any) -> None:
    await platform.rest("goals", "POST", "/v1/goals", platform.tokens.service_user(PERSON),
                        json={"service_user_id": PERSON, "team_id": "team-a",
                              "description": "Sing in a choir again"})


async def test_with_the_risk_service_stopped_goals_and_plan_still_arrive(
        databases: Callable[[str], str], dev_issuer: DevIssuer, tokens: TokenFactory,
        nats_server: NatsServer) -> None:
    async with running_platform(databases=databases, jwks_file=dev_issuer.jwks_path,
                                tokens=tokens, nats_url=nats_server.url,
                                stopped=("risk",)) as platform:
        await write_goal(platform)
        body = await platform.query(tokens.service_user(PERSON), QUERY, {"id": PERSON})
        person = body["data"]["serviceUser"]
        assert person["goals"]["edges"][0]["node"]["description"] == "Sing in a choir again"
        assert person["activeCrisisPlan"] is None
        assert person["riskAssessments"] is None
        [error] = body["errors"]
        assert error["path"] == ["serviceUser", "riskAssessments"]
        assert error["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "service": "risk"}
        ready = await platform.gateway.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["risk"].startswith("unreachable")


async def test_a_slow_service_costs_no_more_than_the_timeout(
        dev_issuer: DevIssuer, tokens: TokenFactory, silent_port: int,
        tmp_path: Path) -> None:
    gateway = GatewaySettings(environment="test", upstream_timeout_seconds=0.5)
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                stopped=("risk",), gateway=gateway) as platform:
        platform.upstreams.clients["risk"].base_url = f"http://127.0.0.1:{silent_port}"
        await write_goal(platform)
        started = time.monotonic()
        body = await platform.query(tokens.service_user(PERSON), QUERY, {"id": PERSON})
        elapsed = time.monotonic() - started
        assert elapsed < 1.5
        assert body["data"]["serviceUser"]["goals"]["totalCount"] == 1
        assert body["data"]["serviceUser"]["riskAssessments"] is None
        assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_TIMEOUT",
                                                   "service": "risk"}


async def test_with_the_training_service_stopped_the_staff_list_still_arrives(
        dev_issuer: DevIssuer, tokens: TokenFactory, nats_server: NatsServer,
        tmp_path: Path) -> None:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                nats_url=nats_server.url, stopped=("training",)) as platform:
        admin = tokens.admin("admin-partial", ["team-p"])
        await platform.rest("workforce", "POST", "/v1/teams", admin,
                            json={"id": "team-p", "name": "Team P"})
        for i in range(3):
            await platform.rest("workforce", "POST", "/v1/staff", admin, json={
                "id": f"team-p-staff-{i}", "team_id": "team-p", "display_name": f"Staff {i}",
                "profession": "nursing", "grade": "band-5", "role_type": "professional",
                "fte": 1.0, "start_date": "2026-01-05"})
        body = await platform.query(tokens.manager("manager-p", ["team-p"]), """
          { team(id: "team-p") { staff { totalCount
              edges { node { id trainingStatus { status } } } } } }""")
        staff = body["data"]["team"]["staff"]
        assert staff["totalCount"] == 3
        assert [e["node"]["trainingStatus"] for e in staff["edges"]] == [None] * 3
        assert [e["path"][-1] for e in body["errors"]] == ["trainingStatus"] * 3
        assert {e["extensions"]["service"] for e in body["errors"]} == {"training"}
        assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_UNAVAILABLE"}
