"""The training scenario, in the same run as the baseline: a team of 200 staff arrives as
workforce events, is enrolled in the foundation course by the consumer, half complete it;
then the team's foundation coverage is read under load, and the service's memory."""

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import nats
from nats.js.errors import NotFoundError

from bench.loadgen import Request
from bench.servers import REPO, RssSampler, ServerProcess, procfile_command, server_argv
from recovery.common.dev_issuer import DevIssuer
from recovery.common.events import CloudEvent
from recovery.common.testing.processes import NatsServer, free_port

SERVICE = "training"
TEAM = "bench-training"
STAFF = 200
FOUNDATION = "00000000-0000-4000-8000-000000000001"


def _environment(workdir: Any, database_url: str, nats_url: str,
                 extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
    env.update(extra)
    env.update({"RECOVERY_SERVICE": SERVICE, "RECOVERY_ENVIRONMENT": "development",
                "RECOVERY_DATABASE_URL": database_url, "RECOVERY_NATS_URL": nats_url,
                "RECOVERY_JWKS_FILE": str(workdir / "dev-issuer" / "jwks.json")})
    return env


def _migrate(env: dict[str, str]) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "recovery.common.migrate", "recovery.training.main"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"migrations failed:\n{finished.stdout}\n{finished.stderr}")


async def _staff_join(nats_url: str, staff: list[str]) -> None:
    """Workforce's staff-joined events, as workforce publishes them."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        try:
            await js.stream_info("WORKFORCE")
        except NotFoundError:
            await js.add_stream(name="WORKFORCE", subjects=["recovery.workforce.>"])
        for n, staff_id in enumerate(staff):
            event = CloudEvent(source="workforce", type="recovery.workforce.staff.joined",
                               subject=staff_id, data={
                                   "staff_id": staff_id, "team_id": TEAM,
                                   "profession": ("peer_support", "nursing", "psychology")[n % 3],
                                   "grade": f"band-{4 + n % 4}", "role_type": "professional",
                                   "effective_date": "2026-01-05", "version": 1})
            await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})
    finally:
        await connection.drain()


async def _seed(base_url: str, issuer: DevIssuer, admin: str, staff: list[str]) -> None:
    """Wait for every newcomer's foundation enrolment; half take a place and complete."""
    college = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        deadline = time.monotonic() + 120
        while True:
            figures = (await client.get(f"/v1/teams/{TEAM}/foundation-coverage",
                                        headers=college)).json()
            enrolled = (await client.get("/v1/enrolments", headers=college, params={
                "course_id": FOUNDATION, "limit": 1000})).json()["items"]
            if figures.get("staff") == len(staff) and len(enrolled) >= len(staff):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the staff-joined events were not all consumed in 2 minutes")
            await asyncio.sleep(0.5)
        educators = []
        for lived in (True, False):
            made = await client.post("/v1/educators", headers=college, json={
                "display_name": "Bench", "kind": "peer_educator", "lived_experience": lived})
            educators.append(made.json()["id"])
        run = (await client.post(f"/v1/courses/{FOUNDATION}/runs", headers=college, json={
            "starts_on": "2026-02-02", "ends_on": "2026-02-03", "online": True,
            "capacity": len(staff), "facilitator_ids": educators})).json()

        async def completes(staff_id: str) -> None:
            own = {"Authorization": "Bearer " + issuer.mint(
                role="clinician", sub=staff_id, teams=[TEAM], ttl_seconds=3600)}
            placed = await client.post(f"/v1/runs/{run['id']}/enrolments", headers=own, json={})
            if placed.status_code != 201:
                raise RuntimeError(f"enrolling answered {placed.status_code}: "
                                   f"{placed.text[:300]}")
            path = f"/v1/enrolments/{placed.json()['id']}"
            for step, body in (("attendance", {"attended": True}),
                               ("completion", {"completed_on": "2026-02-03"})):
                answer = await client.post(f"{path}/{step}", headers=college, json=body)
                if answer.status_code != 200:
                    raise RuntimeError(f"{step} answered {answer.status_code}: "
                                       f"{answer.text[:300]}")

        half = staff[: len(staff) // 2]
        for start in range(0, len(half), 16):
            await asyncio.gather(*(completes(s) for s in half[start:start + 16]))


def run_training(bench: Any, results: dict[str, Any]) -> None:
    """Read a 200-strong team's foundation coverage against one training process, started
    with its own `make run` command line, and measure its memory; fills ``results``."""
    from bench.run import expect, run_async, say

    workdir = bench.workdir
    command, source = procfile_command(SERVICE)
    issuer = DevIssuer(workdir / "dev-issuer")
    issuer.ensure_keys()
    admin = issuer.mint(role="admin", sub="bench-admin", teams=[TEAM], ttl_seconds=4 * 3600)
    nats_server = NatsServer(store_dir=workdir / "nats-training")
    database_url = f"sqlite+aiosqlite:///{workdir / 'training.db'}"
    port = free_port()
    argv, extra = server_argv(command, port)
    env = _environment(workdir, database_url, nats_server.url, extra)
    service = ServerProcess(SERVICE, argv, env, port, bench.cpus.server,
                            workdir / "training.log")
    results["training_service"] = {"argv": argv, "command_source": source}
    try:
        nats_server.start()
        _migrate(env)
        service.start("/readyz")
        say(f"training service ready on port {port} (pid {service.pid})")
        sampler = RssSampler(service.pid).start()
        results["training_service"]["rss_after_start_mb"] = round(
            service.rss_bytes() / 2**20, 1)
        # The tiny scale only proves the plumbing.
        size = STAFF if bench.scale.name != "tiny" else 20
        staff = [f"staff-bench-{n:04d}" for n in range(size)]
        run_async(_staff_join(nats_server.url, staff))
        run_async(_seed(service.base_url, issuer, admin, staff))
        results["scenarios"]["foundation_coverage"] = bench.load(
            "GET  /v1/teams/{id}/foundation-coverage", service, sampler,
            [Request("GET", f"/v1/teams/{TEAM}/foundation-coverage")],
            {"Authorization": f"Bearer {admin}"}, expect(200))
        results["training_service"]["rss_after_run_mb"] = round(
            service.rss_bytes() / 2**20, 1)
        results["training_service"]["peak_rss_mb"] = round(sampler.peak / 2**20, 1)
        sampler.stop()
        say(f"training RSS after the run {results['training_service']['rss_after_run_mb']} MB")
    except Exception:
        say("the training service's log ends with:\n" + service.log_tail(15))
        raise
    finally:
        service.stop()
        nats_server.stop()
