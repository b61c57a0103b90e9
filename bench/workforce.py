"""The workforce scenarios, in the same run as the baseline: peer share and readiness of a team
of 200 staff with 100,000 care contacts, logging a care contact, and the service's memory."""

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import Request
from bench.seeding import seed_workforce_team
from bench.servers import ServiceUnderTest
from recovery.common.dev_issuer import DevIssuer

SERVICE = "workforce"
TEAM = "bench-workforce"
LOG_TEAM = "bench-workforce-log"
STAFF = 200
PEER_EVERY = 4  # one in four is a peer specialist
CONTACTS = 100_000
CONTACT_DAYS = 365


async def _seed_team(base_url: str, manager: str, team: str, staff: int) -> list[str]:
    """A team and its staff, made through the API (so staff joined events go out too)."""
    headers = {"Authorization": f"Bearer {manager}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        made = await client.post("/v1/teams", headers=headers, json={"id": team, "name": team})
        if made.status_code != 201:
            raise RuntimeError(f"seeding the team answered {made.status_code}: {made.text}")

        async def one(n: int) -> str:
            peer = n % PEER_EVERY == 0
            created = await client.post("/v1/staff", headers=headers, json={
                "id": f"{team}-staff-{n:04d}", "team_id": team, "display_name": f"Staff {n}",
                "profession": "peer_support" if peer else "nursing", "grade": "band-5",
                "role_type": "peer_specialist" if peer else "professional",
                "fte": 1.0 if n % 3 else 0.6, "start_date": "2020-01-01"})
            if created.status_code != 201:
                raise RuntimeError(f"seeding staff answered {created.status_code}: "
                                   f"{created.text[:300]}")
            staff_id: str = created.json()["id"]
            return staff_id

        ids: list[str] = []
        for start in range(0, staff, 20):
            ids += await asyncio.gather(*(one(n) for n in range(start, min(start + 20, staff))))
    return ids


def run_workforce(bench: Any, results: dict[str, Any]) -> None:
    """Peer share and readiness of a large team, and logging care contacts, against one
    workforce process started with its own `make run` command line."""
    from bench.run import expect, run_async, say

    workdir: Path = bench.workdir
    # The tiny scale only proves the plumbing (the harness's own test).
    staff, contacts_count = (20, 2_000) if bench.scale.name == "tiny" else (STAFF, CONTACTS)
    scenarios: dict[str, Any] = results["scenarios"]
    issuer = DevIssuer(workdir / "dev-issuer")
    issuer.ensure_keys()
    manager = issuer.mint(role="manager", sub="bench-manager", teams=[TEAM, LOG_TEAM],
                          scope="user/*.cruds", ttl_seconds=4 * 3600)
    auth = {"Authorization": f"Bearer {manager}"}

    with ServiceUnderTest(bench, results, SERVICE) as workforce:
        service = workforce.process
        results["workforce_service"].update({"staff": staff, "care_contacts": contacts_count})
        staff_ids = run_async(_seed_team(service.base_url, manager, TEAM, staff))
        log_staff = run_async(_seed_team(service.base_url, manager, LOG_TEAM, 20))
        run_async(seed_workforce_team(workforce.database_url, TEAM, staff_ids, contacts_count,
                                      peer_every=PEER_EVERY, contact_days=CONTACT_DAYS))
        say(f"seeded a team of {staff} staff with {contacts_count:,} care contacts")
        sampler = workforce.sample_memory()

        scenarios["workforce_peer_share"] = bench.load(
            "GET  /v1/teams/{id}/peer-share", service, sampler,
            [Request("GET", f"/v1/teams/{TEAM}/peer-share")], auth, expect(200))
        scenarios["workforce_readiness"] = bench.load(
            "GET  /v1/teams/{id}/readiness", service, sampler,
            [Request("GET", f"/v1/teams/{TEAM}/readiness")], auth, expect(200))
        today = date.today().isoformat()
        contacts = [Request("POST", "/v1/care-contacts", json.dumps(
            {"staff_id": staff_id, "service_user_id": f"su-log-{n:03d}", "minutes": 30,
             "mode": "individual", "occurred_on": today}, separators=(",", ":")))
            for n, staff_id in enumerate(log_staff * 5)]
        scenarios["log_care_contact"] = bench.load(
            "POST /v1/care-contacts", service, sampler, contacts,
            {**auth, "Content-Type": "application/json"}, expect(201))

    # The bare baseline's same inserts, on the database the service has just used.
    with bench.baseline(workforce.database_url) as (baseline, memory_of_baseline):
        results["baseline"]["log_care_contact"] = bench.load(
            "baseline POST /v1/care-contacts", baseline, memory_of_baseline, contacts,
            {"Content-Type": "application/json"}, expect(201))
