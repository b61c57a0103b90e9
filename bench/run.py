"""One benchmark run: each service with its own NATS and a fresh PostgreSQL database, then
the bare asyncpg baseline on that database doing the same work; every scenario measured by
wrk from the other core; returns the figures as a plain dict."""

import itertools
import json
import os
import platform
import re
import signal
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Collection, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil  # type: ignore[import-untyped]

from bench.baseline import DATABASE_ENV
from bench.config import PEER_QUERIES, TARGETS, Scale
from bench.cpus import CpuPlan, plan_cpus, raise_priority
from bench.crisis_plans import run_crisis_plans
from bench.gateway import run_gateway
from bench.loadgen import Request, ensure_wrk, run_wrk, write_plan
from bench.pacer import KeepAliveClient, raw_post
from bench.peer import run_peer
from bench.profile import Profile
from bench.relay import commit_to_consumer_latency, relay_throughput
from bench.risk import run_risk
from bench.seeding import database
from bench.servers import (
    RssSampler,
    ServerProcess,
    ServiceUnderTest,
    asyncpg_dsn,
    postgres_version,
    procfile_command,
    server_argv,
    start_postgres,
)
from bench.training import run_training
from bench.workforce import run_workforce
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.processes import PostgresServer, free_port

T = TypeVar("T")
SERVICE_APP = "recovery.goals.main:create_app"
BASELINE_APP = "bench.baseline:create_app"
TEAMS = {"get": "bench-get", "post": "bench-post", "relay": "bench-relay"}
# Words of a person's own goal; the same text for every benchmark goal.
DESCRIPTION = "Get back to playing five-a-side football on Saturday mornings"


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run the harness's own async parts on uvloop, as the service runs: the pacing client
    and the subscriber should cost as little as they can on the load core."""
    import uvloop

    return uvloop.run(work)


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def goal_body(team: str, person: str) -> dict[str, str]:
    """The minimal create the issue promises: who, which team, and the goal in their words."""
    return {"service_user_id": person, "team_id": team, "description": DESCRIPTION}


def _json_line(body: dict[str, str]) -> str:
    return json.dumps(body, separators=(",", ":"))


class Bench:
    """Holds what every scenario shares: the cores, the work folder, the load settings, the
    run's PostgreSQL cluster and the command line the baseline is served with."""

    def __init__(self, scale: Scale, workdir: Path, cpus: CpuPlan, command: str,
                 postgres: PostgresServer, *, profile: bool = False) -> None:
        self.scale = scale
        self.workdir = workdir
        self.cpus = cpus
        self.command = command
        self.postgres = postgres
        self.profile = profile
        self._databases = itertools.count(1)

    def database(self, service: str) -> str:
        """A fresh, empty database for ``service`` on the run's cluster; its SQLAlchemy URL."""
        return self.postgres.create_database(
            f"{service.replace('-', '_')}_{next(self._databases)}")

    @contextmanager
    def baseline(self, database_url: str) -> Iterator[tuple["ServerProcess", RssSampler]]:
        """The bare baseline on ``database_url``, served with the service's command line
        (only the app factory differs), pinned to the server core; stopped afterwards."""
        port = free_port()
        argv, extra = server_argv(self.command, port)
        # The app is uvicorn's one positional argument (an option's value, such as --http's
        # protocol class, can look like one too).
        factories = [word for before, word in itertools.pairwise(argv)
                     if before == "--factory"
                     or (re.fullmatch(r"[\w.]+:\w+", word) and not before.startswith("--"))]
        if len(factories) != 1:
            raise RuntimeError(f"cannot tell the app factory in the service command: {argv}")
        argv = [BASELINE_APP if word == factories[0] else word for word in argv]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")},
               **extra, DATABASE_ENV: asyncpg_dsn(database_url)}
        server = ServerProcess("baseline", argv, env, port, self.cpus.server,
                               self.workdir / f"baseline-{port}.log")
        server.start("/healthz")
        sampler = RssSampler(server.pid).start()
        try:
            yield server, sampler
        except Exception:
            say("the baseline's log ends with:\n" + server.log_tail(15))
            raise
        finally:
            sampler.stop()
            server.stop()

    def database_cpu_s(self) -> float:
        """CPU time used so far by the cluster: the postmaster, its live backends, and the
        backends that have exited (counted in the postmaster's reaped children's times)."""
        try:
            pid = int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])
            postmaster = psutil.Process(pid)
            own = postmaster.cpu_times()
            total = own.user + own.system + own.children_user + own.children_system
            for backend in postmaster.children():
                try:
                    times = backend.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
            return float(total)
        except (OSError, ValueError, IndexError, psutil.Error):
            return 0.0

    def load(self, name: str, server: ServerProcess, sampler: RssSampler,
             requests: list[Request], headers: dict[str, str],
             check: Callable[[httpx.Response], None],
             check_request: Request | None = None, warm_up: bool = True,
             connections: int | None = None) -> dict[str, Any]:
        """Check one request answers as it should, warm up, then measure with wrk.
        For requests that may not repeat, ``check_request`` is checked instead of the first
        and ``warm_up=False`` skips the warm-up (each wrk run starts at a random request).
        ``connections=1`` measures a lone caller, one request at a time (the scale's
        connections otherwise)."""
        first = check_request or requests[0]
        answer = httpx.request(first.method, server.base_url + first.path,
                               content=first.body or None, headers=headers, timeout=30)
        check(answer)
        plan = write_plan(self.workdir, requests, headers)
        connections, cpus = connections or self.scale.connections, self.cpus.load
        if self.scale.warmup_s and warm_up:
            run_wrk(server.base_url, plan, connections=connections, cpus=cpus,
                    duration_s=self.scale.warmup_s)
        database_cpu = self.database_cpu_s()
        # The services are profiled, not the baseline (it is the floor, not the question) nor
        # the peer (Node.js, which py-spy cannot read).
        profile = (Profile(server.pid, self.scale.duration_s, plan.with_suffix(".profile"))
                   if self.profile and server.name not in {"baseline", "peer"} else None)
        with sampler.phase() as memory:
            result = run_wrk(server.base_url, plan, connections=connections, cpus=cpus,
                             duration_s=self.scale.duration_s)
        figures = {**result.as_dict(), **memory, "connections": connections}
        if profile is not None:
            figures["profile"] = profile.shares()
        # CPU time per request depends far less than req/s on how busy the machine was.
        figures["cpu_us_per_request"] = (
            round(memory["cpu_share"] / result.requests_per_s * 1e6, 1)
            if result.requests_per_s else None)
        # PostgreSQL runs on the load core(s): its share of the work, per request.
        figures["database_cpu_us_per_request"] = (
            round((self.database_cpu_s() - database_cpu) / result.requests * 1e6, 1)
            if result.requests else None)
        say(f"{name}: {result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, errors {result.error_count}, "
            f"peak RSS {memory['peak_rss_mb']} MB, server CPU {memory['cpu_share']:.0%}, "
            f"waiting for its core {memory['run_queue_wait_share']:.0%}, "
            f"machine time taken by the hypervisor {memory['stolen_share']:.0%}, "
            f"wrk CPU {result.load_generator_cpu:.0%}, PostgreSQL CPU per request "
            f"{figures['database_cpu_us_per_request'] or 0:.0f} µs")
        return figures


def expect(status: int, items: int | None = None) -> Callable[[httpx.Response], None]:
    def check(answer: httpx.Response) -> None:
        if answer.status_code != status:
            raise RuntimeError(f"{answer.request.method} {answer.request.url.path} answered "
                               f"{answer.status_code}, not {status}: {answer.text[:300]}")
        if items is not None and page_length(answer.json()) != items:
            raise RuntimeError(f"the list page holds {page_length(answer.json())} goals, "
                               f"not {items}")

    return check


def page_length(body: Any) -> int:
    """How many records a list page holds, whatever the page's envelope calls them."""
    if isinstance(body, list):
        return len(body)
    for key in ("items", "data", "goals", "results", "entry"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            return len(body[key])
    raise RuntimeError(f"cannot find the records in a list page with keys {list(body)}")


def create_goals(client: httpx.Client, team: str, count: int) -> list[str]:
    ids = []
    for number in range(count):
        answer = client.post("/v1/goals", json=goal_body(team, f"su-bench-{number:05d}"))
        expect(201)(answer)
        ids.append(str(answer.json()["id"]))
    return ids


def run_goals(bench: Bench, results: dict[str, Any], command: str) -> None:
    """Every goals scenario against one service process, then the baseline's reads and
    creates on the same database; fills ``results`` as it goes."""
    scale, workdir = bench.scale, bench.workdir
    scenarios: dict[str, Any] = results["scenarios"]
    issuer = DevIssuer(workdir / "dev-issuer")
    issuer.ensure_keys()
    token = issuer.mint(role="clinician", sub="bench-clinician", teams=list(TEAMS.values()),
                        ttl_seconds=4 * 3600)
    auth = {"Authorization": f"Bearer {token}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    posts = [Request("POST", "/v1/goals",
                     _json_line(goal_body(TEAMS["post"], f"su-bench-post-{n:03d}")))
             for n in range(50)]

    with ServiceUnderTest(bench, results, "goals", command=command) as goals:
        service = goals.process
        sampler = goals.sample_memory()
        client = httpx.Client(base_url=service.base_url, headers=auth, timeout=30)

        # The floor under every route: FastAPI, the kit's middleware and uvicorn, no token,
        # no database. No route can be faster than this one.
        scenarios["healthz"] = bench.load("GET  /healthz", service, sampler,
                                          [Request("GET", "/healthz")], {}, expect(200))
        ids = create_goals(client, TEAMS["get"], scale.goals_to_read)
        reads = [Request("GET", f"/v1/goals/{goal_id}") for goal_id in ids]
        scenarios["get_goal"] = bench.load("GET  /v1/goals/{id}", service, sampler, reads, auth,
                                           expect(200))
        scenarios["post_goal"] = bench.load("POST /v1/goals", service, sampler, posts,
                                            json_auth, expect(201))

        with sampler.phase() as memory:
            scenarios["relay_throughput"] = run_async(_relay_throughput(
                goals.database_url, goals.nats.url, service.base_url, auth,
                scale.relay_events))
        scenarios["relay_throughput"].update(memory)
        say(f"relay: {scenarios['relay_throughput']['events_per_s']:,.0f} events/s into "
            "JetStream")

        bodies = [goal_body(TEAMS["relay"], f"su-bench-relay-{n:03d}") for n in range(50)]
        # The target's rate, then a quarter of it: the relay's own latency, apart from a
        # service core busy with the creates themselves.
        for key, rate in (("relay_latency", scale.latency_rate_per_s),
                          ("relay_latency_light", max(1, scale.latency_rate_per_s // 4))):
            with sampler.phase() as memory:
                scenarios[key] = run_async(_relay_latency(
                    goals.nats.url, service.port, auth, bodies, scale, rate))
            scenarios[key].update(memory)
            latency = scenarios[key]["latency_ms"]
            say(f"commit-to-consumer at {rate}/s: p50 {latency['p50']} ms, "
                f"p99 {latency['p99']} ms, server CPU {memory['cpu_share']:.0%}")
        client.close()
        time.sleep(1)  # let the audit buffer and relay settle before the final reading

    # The bare baseline's same work, on the database the service has just used.
    with bench.baseline(goals.database_url) as (baseline, memory_of_baseline):
        results["baseline"]["healthz"] = bench.load(
            "baseline GET /healthz", baseline, memory_of_baseline,
            [Request("GET", "/healthz")], {}, expect(200))
        results["baseline"]["get_goal"] = bench.load(
            "baseline GET /v1/goals/{id}", baseline, memory_of_baseline, reads, {},
            expect(200))
        results["baseline"]["post_goal"] = bench.load(
            "baseline POST /v1/goals", baseline, memory_of_baseline, posts,
            {"Content-Type": "application/json"}, expect(201))


async def _relay_throughput(database_url: str, nats_url: str, base_url: str,
                            headers: dict[str, str], events: int) -> dict[str, Any]:
    async with (database(database_url) as engine,
                httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client):
        return await relay_throughput(engine, nats_url, client,
                                      goal_body(TEAMS["relay"], "su-bench-relay-wake"), events)


async def _relay_latency(nats_url: str, port: int, headers: dict[str, str],
                         bodies: list[dict[str, str]], scale: Scale,
                         rate_per_s: int) -> dict[str, Any]:
    client = KeepAliveClient("127.0.0.1", port, connections=scale.connections)
    requests = [raw_post("/v1/goals", headers, body) for body in bodies]
    return await commit_to_consumer_latency(nats_url, client, requests, rate_per_s,
                                            scale.latency_duration_s)


def measured_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with its measured figure, or None where the run did not get
    that far; a target measured in a scenario also gets ours and the baseline's figures."""
    scenarios, baselines = results["scenarios"], results.get("baseline", {})

    def get(figures: dict[str, Any], path: str) -> float | None:
        value: Any = figures
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return None if value is None else float(value)

    def rss(service: str) -> float | None:
        return get(results.get(f"{service}_service", {}), "rss_after_run_mb")

    measured: dict[str, float | None] = {
        "relay_events_per_s": get(scenarios, "relay_throughput.events_per_s"),
        "relay_latency_p99_ms": get(scenarios, "relay_latency.latency_ms.p99"),
        "rss_after_mb": rss("goals"),
        "crisis_rss_after_mb": rss("crisis_plans"),
        "risk_rss_after_mb": rss("risk"),
        "training_rss_after_mb": rss("training"),
        "workforce_rss_after_mb": rss("workforce"),
    }
    for query in PEER_QUERIES:
        measured[f"peer_{query}_cpu"] = get(scenarios, f"ours_{query}.versus_peer.cpu_ratio")
        measured[f"peer_{query}_rate"] = get(scenarios, f"ours_{query}.versus_peer.rate_ratio")
    found = []
    for target in TARGETS:
        row: dict[str, Any] = {**asdict(target), "ours": None, "baseline": None,
                               "by_cpu_cost": None}
        if target.scenario is not None:
            ours = scenarios.get(target.scenario, {})
            base = baselines.get(target.scenario, {})
            figure = "requests_per_s" if target.key.endswith("_ratio") else "latency_ms.p99"
            row["ours"], row["baseline"] = get(ours, figure), get(base, figure)
            if target.key.endswith("_ratio"):
                measured[target.key] = (round(row["ours"] / row["baseline"], 3)
                                        if row["ours"] is not None and row["baseline"] else None)
                # The same ratio from CPU time per request: what it would be with the
                # server's core to itself, for reading a run made on a busy machine.
                cost, base_cost = ours.get("cpu_us_per_request"), base.get("cpu_us_per_request")
                row["by_cpu_cost"] = round(base_cost / cost, 3) if cost and base_cost else None
            else:
                measured[target.key] = row["ours"]
        value = measured.get(target.key)
        found.append({**row, "measured": value,
                      "met": value is not None and target.met_by(value)})
    return found


def failures(results: dict[str, Any]) -> list[str]:
    """Requests or events that went wrong: figures measured over failures are not figures."""
    found = []
    for name, figures in results["scenarios"].items():
        errors = sum(figures.get("errors", {}).values())
        if errors:
            found.append(f"{name}: {errors} failed requests ({figures['errors']})")
    for key in ("relay_latency", "relay_latency_light"):
        latency = results["scenarios"].get(key)
        if latency and (latency["failed_requests"]
                        or latency["events_received"] != latency["changes_committed"]):
            found.append(f"{key}: {latency['changes_committed']} changes committed, "
                         f"{latency['events_received']} events received, "
                         f"{latency['failed_requests']} requests failed")
    return found


def _exit_on_signal(number: int, _: object) -> None:
    raise SystemExit(128 + number)


#: The parts of a run, in order; ``--only`` picks some of them.
PARTS = ("goals", "crisis-plans", "risk", "training", "workforce", "gateway", "peer")


def run(scale: Scale, app: str | None = None, parts: Collection[str] = PARTS, *,
        profile: bool = False) -> dict[str, Any]:
    """The whole benchmark at ``scale`` (or ``parts`` only), each service profiled with py-spy
    when ``profile``; everything it starts is stopped before it returns. A run that breaks
    returns what it measured, with ``aborted`` saying why. Raises ``PostgresUnavailableError``
    before starting anything when the machine has no PostgreSQL server binaries."""
    # `kill` or a closed terminal stops the run the way Ctrl-C does: servers are stopped.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _exit_on_signal)
    cpus = plan_cpus()
    # The harness, NATS, PostgreSQL and wrk inherit the load cores; only the server under
    # test gets its own.
    os.sched_setaffinity(0, cpus.load)
    niceness = raise_priority()
    wrk = ensure_wrk()
    command, command_source = procfile_command()
    if app:
        # A what-if run: another factory (importable from the repository root or
        # PYTHONPATH) in place of the service's, everything else as `make run` has it.
        command = command.replace(SERVICE_APP, app)
        command_source += f", with --app {app}"
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[:1]
    postgres = start_postgres()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": asdict(scale),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "system": platform.platform(),
                    "load_generator": " ".join(" ".join(wrk_version).split()[:2]),
                    "database": postgres_version(postgres)},
        "cpu_plan": {**cpus.as_dict(), "niceness": niceness},
        # Other programs on the machine skew the figures; the load says how busy it was.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "command": {"source": command_source, "line": command},
        "parts": [part for part in PARTS if part in parts],
        "profiled": profile,
        "scenarios": {},
        "baseline": {},
    }
    if not cpus.isolated:
        say("only one core: the server and the load generator share it")
    say(f"scale {scale.name}; server on cores {sorted(cpus.server)}, load and "
        f"{results['machine']['database']} on {sorted(cpus.load)}; command from "
        f"{command_source}")
    try:
        with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
            bench = Bench(scale, Path(tmp), cpus, command, postgres, profile=profile)
            steps: dict[str, Callable[[], None]] = {
                "goals": lambda: run_goals(bench, results, command),
                "crisis-plans": lambda: run_crisis_plans(bench, results),
                "risk": lambda: run_risk(bench, results),
                "training": lambda: run_training(bench, results),
                "workforce": lambda: run_workforce(bench, results),
                "gateway": lambda: run_gateway(bench, results),
                "peer": lambda: run_peer(bench, results),
            }
            for part in PARTS:
                if part in parts:
                    steps[part]()
    except Exception as exc:
        # The figures gathered so far are still written, with the reason the run stopped.
        traceback.print_exc()
        results["aborted"] = f"{type(exc).__name__}: {exc}"
    finally:
        postgres.stop()
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["targets"] = measured_targets(results)
        results["failures"] = failures(results)
    return results
