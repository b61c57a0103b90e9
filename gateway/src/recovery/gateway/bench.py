"""The gateway's benchmark: ``python -m recovery.gateway.bench``. Real processes (NATS, the
five services on SQLite, the gateway) and, in the same run, direct REST calls for the same
data; prints the figures and the targets of issue 5 as JSON."""

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.processes import NatsServer, free_port, wait_for_port
from recovery.gateway.settings import UPSTREAMS

MODULES = {"goals": "recovery.goals.main", "crisis-plans": "recovery.crisis_plans.main",
           "risk": "recovery.risk.main", "training": "recovery.training.main",
           "workforce": "recovery.workforce.main"}
PERSON, TEAM, BIG_TEAM = "bench-person", "bench-team", "bench-team-200"
SERVICE_USER = """query ($id: ID!) { serviceUser(id: $id) {
  goals { edges { node { id description lifecycleStatus } } }
  activeCrisisPlan { id version agreedAt }
  riskAssessments { edges { node { id status } } } } }"""
PROSPECTUS = "{ prospectus { edges { node { id title summary foundation } } } }"
TEAM_STAFF = """query ($id: ID!) { team(id: $id) { staff(first: 200) { totalCount
  edges { node { id profession trainingStatus { status } } } } } }"""
PLAN_CHANGES = """subscription ($id: ID!) { crisisPlanChanged(serviceUserId: $id) {
  eventType plan { id version } } }"""


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.contextmanager
def platform(workdir: Path, issuer: DevIssuer) -> Iterator[dict[str, str]]:
    """NATS, the five services and the gateway as uvicorn processes; their base URLs."""
    nats = NatsServer(workdir / "nats")
    nats.start()
    ports = {name: free_port() for name in (*MODULES, "gateway")}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")},
           "RECOVERY_ENVIRONMENT": "test", "RECOVERY_NATS_URL": nats.url,
           "RECOVERY_JWKS_FILE": str(issuer.jwks_path), "RECOVERY_LOG_LEVEL": "WARNING"}
    for name in MODULES:
        env[f"RECOVERY_{name.upper().replace('-', '_')}_URL"] = f"http://127.0.0.1:{ports[name]}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, module in MODULES.items():
            own = {**env, "RECOVERY_SERVICE": name,
                   "RECOVERY_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / name}.db"}
            # Our own interpreter and modules, no outside input.
            subprocess.run([sys.executable, "-m", "recovery.common.migrate", module],  # noqa: S603
                           env=own,
                           check=True, capture_output=True)
            processes.append(_uvicorn(f"{module}:create_app", ports[name], own))
        processes.append(_uvicorn("recovery.gateway.main:create_app", ports["gateway"],
                                  {**env, "RECOVERY_SERVICE": "gateway"}))
        for port in ports.values():
            wait_for_port(port, 60)
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()} | {
            "gateway_pid": str(processes[-1].pid)}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        nats.stop()


def _uvicorn(app: str, port: int, env: dict[str, str]) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(  # noqa: S603 - our interpreter, our app
        [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port",
         str(port), "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def timed(call: Callable[[], Awaitable[httpx.Response]], times: int) -> list[float]:
    """Milliseconds of each of ``times`` calls one after another (after a warm-up)."""
    for _ in range(10):
        (await call()).raise_for_status()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        response = await call()
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


async def throughput(call: Callable[[], Awaitable[httpx.Response]], seconds: float,
                     workers: int = 8) -> float:
    """Requests per second with ``workers`` callers in a closed loop."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            (await call()).raise_for_status()
            done += 1
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - started)


async def measure(urls: dict[str, str], issuer: DevIssuer, rounds: int) -> dict[str, Any]:
    def token(role: str, sub: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {issuer.mint(role=role, sub=sub, **kw)}"}
    person = token("service_user", PERSON, patient=PERSON)
    staff = token("clinician", "staff-1", teams=[TEAM])
    admin = token("admin", "admin-1", teams=[TEAM, BIG_TEAM])
    manager = token("manager", "manager-1", teams=[TEAM, BIG_TEAM])
    async with httpx.AsyncClient(timeout=30) as http:
        async def rest(service: str, method: str, path: str, headers: dict[str, str],
                       **kw: Any) -> Any:
            response = await http.request(method, urls[service] + path, headers=headers, **kw)
            response.raise_for_status()
            return response.json()

        async def graphql(query: str, variables: dict[str, Any],
                          headers: dict[str, str]) -> httpx.Response:
            return await http.post(urls["gateway"] + "/graphql", headers=headers,
                                   json={"query": query, "variables": variables})

        # Seed: the person's goal, agreed plan and co-assessment; two teams of staff.
        await rest("goals", "POST", "/v1/goals", person, json={
            "service_user_id": PERSON, "team_id": TEAM, "description": "Cook for friends"})
        plan = await rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
            "service_user_id": PERSON, "team_id": TEAM, "when_well": ["Walking the dog"],
            "participants": [{"role": "service_user"}, {"role": "care_coordinator"}]})
        for signer in (person, staff):
            await rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                       {**signer, "If-Match": f'"{plan["version"]}"'},
                       json={"content_hash": plan["content_hash"]})
        await rest("risk", "POST", "/v1/risk-assessments", staff, json={
            "service_user_id": PERSON, "team_id": TEAM, "areas": [{
                "area": "safety_of_self", "service_user_view": "I know my signs",
                "clinician_view": "Steadier", "views_agree": True}]})
        start = (date.today() - timedelta(days=30)).isoformat()
        for team, size in ((TEAM, 2), (BIG_TEAM, 200)):
            await rest("workforce", "POST", "/v1/teams", admin, json={"id": team, "name": team})
            for i in range(size):
                await rest("workforce", "POST", "/v1/staff", admin, json={
                    "id": f"{team}-{i}", "team_id": team, "display_name": f"Staff {i}",
                    "profession": "nursing", "grade": "band-5", "role_type": "professional",
                    "fte": 1.0, "start_date": start})

        batch = {"service_user_ids": [PERSON]}
        direct = {
            "goals": await timed(lambda: http.post(urls["goals"] + "/v1/goals:batch-read",
                                                   headers=staff, json=batch), rounds),
            "crisis-plans": await timed(lambda: http.get(
                urls["crisis-plans"] + f"/v1/people/{PERSON}/crisis-plan", headers=staff),
                rounds),
            "risk": await timed(lambda: http.post(
                urls["risk"] + "/v1/risk-assessments:batch-read", headers=staff, json=batch),
                rounds),
        }
        composed = await timed(lambda: graphql(SERVICE_USER, {"id": PERSON}, staff), rounds)
        # The gateway's own floor: a query that calls no service.
        floor = await timed(lambda: graphql("{ me { sub roles } }", {}, staff), rounds)
        slowest = max(statistics.median(s) for s in direct.values())

        rest_rps = await throughput(lambda: http.get(urls["training"] + "/v1/courses",
                                                     headers=staff), 5)
        gateway_rps = await throughput(lambda: graphql(PROSPECTUS, {}, staff), 5)

        def calls_total(text: str) -> float:
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("gateway_upstream_calls_total{"))
        metrics_before = calls_total((await http.get(urls["gateway"] + "/metrics")).text)
        big = await timed(lambda: graphql(TEAM_STAFF, {"id": BIG_TEAM}, manager), rounds)
        metrics_after = calls_total((await http.get(urls["gateway"] + "/metrics")).text)
        calls_per_query = (metrics_after - metrics_before) / (rounds + 0)

        delivery = await subscription_latency(urls, person, staff, http, max(20, rounds // 5))
        rss = psutil.Process(int(urls["gateway_pid"])).memory_info().rss / 2**20
    return {
        "service_user_p50_ms": statistics.median(composed),
        "slowest_direct_p50_ms": slowest,
        "gateway_floor_p50_ms": statistics.median(floor),
        "one_service_ratio": gateway_rps / rest_rps,
        "gateway_rps": gateway_rps, "rest_rps": rest_rps,
        "team_200_p50_ms": statistics.median(big),
        "team_200_p99_ms": percentile(big, 0.99),
        "team_200_service_calls_per_query": calls_per_query,
        "subscription_p99_ms": percentile(delivery, 0.99),
        "gateway_rss_mb": rss,
        "targets": {
            "service_user_p50": statistics.median(composed) <= 1.5 * slowest + 3,
            "one_service_ratio": gateway_rps / rest_rps >= 0.25,
            "team_200_p99": percentile(big, 0.99) <= 100,
            "subscription_p99": percentile(delivery, 0.99) <= 100,
            "gateway_rss": rss <= 200,
        },
    }


async def subscription_latency(urls: dict[str, str], person: dict[str, str],
                               staff: dict[str, str], http: httpx.AsyncClient,
                               events: int) -> list[float]:
    """Commit (the service's answer) to the subscriber's message, per edit of the plan."""
    address = urls["gateway"].removeprefix("http://")
    async with websockets.connect(f"ws://{address}/graphql",
                                  subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": person}))
        json.loads(await socket.recv())
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": PLAN_CHANGES, "variables": {"id": PERSON}}}))
        await asyncio.sleep(0.3)
        plan_id = (await http.get(urls["crisis-plans"] + f"/v1/people/{PERSON}/crisis-plan",
                                  headers=staff)).json()["plan_id"]
        samples = []
        for i in range(events):
            current = (await http.get(urls["crisis-plans"] + f"/v1/crisis-plans/{plan_id}",
                                      headers=staff))
            version = current.json()["version"]
            response = await http.put(
                urls["crisis-plans"] + f"/v1/crisis-plans/{plan_id}",
                headers={**staff, "If-Match": f'"{version}"'},
                json={"when_well": [f"Walking the dog, edit {i}"]})
            response.raise_for_status()
            committed = time.perf_counter()
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if message.get("type") == "next":
                    samples.append((time.perf_counter() - committed) * 1000)
                    break
        return samples


def main() -> None:
    rounds = int(os.environ.get("GATEWAY_BENCH_ROUNDS", "200"))
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        issuer = DevIssuer(workdir / "issuer")
        issuer.ensure_keys()
        with platform(workdir, issuer) as urls:
            results = asyncio.run(measure(urls, issuer, rounds))
    print(json.dumps(results, indent=2))
    sys.exit(0 if all(results["targets"].values()) else 1)


if __name__ == "__main__":
    assert set(MODULES) == set(UPSTREAMS)
    main()
