"""The training scenario, in the same run as the baseline: a team of 200 staff arrives as
workforce events, is enrolled in the foundation course by the consumer, half complete it;
then the team's foundation coverage is read under load, and the service's memory."""

import asyncio
import time
from typing import Any

import httpx
import nats
from nats.js.errors import NotFoundError

from bench.loadgen import Request
from bench.servers import ServiceUnderTest
from recovery.common.dev_issuer import DevIssuer
from recovery.common.events import CloudEvent

SERVICE = "training"
TEAM = "bench-training"
STAFF = 200
FOUNDATION = "00000000-0000-4000-8000-000000000001"


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
    from bench.run import expect, run_async

    issuer = DevIssuer(bench.workdir / "dev-issuer")
    issuer.ensure_keys()
    admin = issuer.mint(role="admin", sub="bench-admin", teams=[TEAM], ttl_seconds=4 * 3600)
    with ServiceUnderTest(bench, results, SERVICE) as training:
        sampler = training.sample_memory()
        # The tiny scale only proves the plumbing.
        size = STAFF if bench.scale.name != "tiny" else 20
        staff = [f"staff-bench-{n:04d}" for n in range(size)]
        run_async(_staff_join(training.nats.url, staff))
        run_async(_seed(training.process.base_url, issuer, admin, staff))
        results["scenarios"]["foundation_coverage"] = bench.load(
            "GET  /v1/teams/{id}/foundation-coverage", training.process, sampler,
            [Request("GET", f"/v1/teams/{TEAM}/foundation-coverage")],
            {"Authorization": f"Bearer {admin}"}, expect(200))
