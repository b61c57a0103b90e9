"""The risk scenario, in the same run as the baseline: read a co-assessment under load, and
the service's memory (its target is RSS only)."""

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx

from bench.loadgen import Request
from bench.servers import REPO, RssSampler, ServerProcess, procfile_command, server_argv
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.processes import NatsServer, free_port

SERVICE = "risk"
TEAM = "bench-risk"
AREAS = [{"area": "substances", "service_user_view": "A drink at the weekend is fine for me",
          "clinician_view": "Drinking has led to two admissions", "views_agree": False,
          "difference": "We see the weekend drinking differently",
          "strengths": ["Walks the dog daily"], "protective_factors": ["Sister nearby"]}]


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
        [sys.executable, "-m", "recovery.common.migrate", "recovery.risk.main"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"migrations failed:\n{finished.stdout}\n{finished.stderr}")


async def _seed(base_url: str, issuer: DevIssuer, clinician: str,
                people: list[str]) -> list[str]:
    """One co-assessment per person, signed by the person and the clinician (agreed)."""
    staff = {"Authorization": f"Bearer {clinician}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(person: str) -> str:
            created = await client.post("/v1/risk-assessments", headers=staff, json={
                "service_user_id": person, "team_id": TEAM, "areas": AREAS})
            if created.status_code != 201:
                raise RuntimeError(f"seeding answered {created.status_code}: "
                                   f"{created.text[:300]}")
            body: dict[str, Any] = created.json()
            own = issuer.mint(role="service_user", sub=person, patient=person,
                              ttl_seconds=4 * 3600)
            for token in (own, clinician):
                signed = await client.post(
                    f"/v1/risk-assessments/{body['id']}/signatures",
                    headers={"Authorization": f"Bearer {token}", "If-Match": '"1"'},
                    json={"content_hash": body["content_hash"]})
                if signed.status_code != 201:
                    raise RuntimeError(f"seeding a signature answered {signed.status_code}: "
                                       f"{signed.text[:300]}")
            return str(body["id"])

        made: list[str] = []
        for start in range(0, len(people), 16):
            made += await asyncio.gather(*(one(p) for p in people[start:start + 16]))
    return made


def run_risk(bench: Any, results: dict[str, Any]) -> None:
    """Read co-assessments against one risk process, started with its own `make run` command
    line, and measure its memory; fills ``results`` as it goes."""
    from bench.run import expect, run_async, say

    scale, workdir = bench.scale, bench.workdir
    command, source = procfile_command(SERVICE)
    issuer = DevIssuer(workdir / "dev-issuer")
    issuer.ensure_keys()
    clinician = issuer.mint(role="clinician", sub="bench-clinician", teams=[TEAM],
                            ttl_seconds=4 * 3600)
    nats_server = NatsServer(store_dir=workdir / "nats-risk")
    database_url = f"sqlite+aiosqlite:///{workdir / 'risk.db'}"
    port = free_port()
    argv, extra = server_argv(command, port)
    env = _environment(workdir, database_url, nats_server.url, extra)
    service = ServerProcess(SERVICE, argv, env, port, bench.cpus.server, workdir / "risk.log")
    results["risk_service"] = {"argv": argv, "command_source": source}
    try:
        nats_server.start()
        _migrate(env)
        service.start("/readyz")
        say(f"risk service ready on port {port} (pid {service.pid})")
        sampler = RssSampler(service.pid).start()
        results["risk_service"]["rss_after_start_mb"] = round(service.rss_bytes() / 2**20, 1)
        people = [f"su-bench-risk-{n:05d}" for n in range(scale.goals_to_read)]
        ids = run_async(_seed(service.base_url, issuer, clinician, people))
        results["scenarios"]["get_risk_assessment"] = bench.load(
            "GET  /v1/risk-assessments/{id}", service, sampler,
            [Request("GET", f"/v1/risk-assessments/{record}") for record in ids],
            {"Authorization": f"Bearer {clinician}"}, expect(200))
        results["risk_service"]["rss_after_run_mb"] = round(service.rss_bytes() / 2**20, 1)
        results["risk_service"]["peak_rss_mb"] = round(sampler.peak / 2**20, 1)
        sampler.stop()
        say(f"risk RSS after the run {results['risk_service']['rss_after_run_mb']} MB")
    except Exception:
        say("the risk service's log ends with:\n" + service.log_tail(15))
        raise
    finally:
        service.stop()
        nats_server.stop()
