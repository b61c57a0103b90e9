"""The crisis-plans scenarios, in the same run as the baseline: GET the active plan (the read
a crisis team makes), sign a version, and the service's memory."""

import asyncio
import json
import time
from typing import Any

import httpx

from bench.loadgen import Request
from bench.seeding import clone_record
from bench.servers import ServiceUnderTest
from recovery.common.dev_issuer import DevIssuer

SERVICE = "crisis-plans"
TEAM = "bench-crisis"
#: Signatures the sign scenario may use per second of load (warm-up included), so wrk never
#: runs out of unsigned versions: a signature is made once, a second one is a 409.
SIGNATURES_PER_SECOND = 3000
PLAN = {"early_warning_signs": ["Sleeping less than four hours"],
        "what_helps": ["Sitting in the garden with my sister"],
        "helpful_contacts": [{"name": "Ana", "role": "sister", "how_to_reach": "mobile"}],
        "review_on": "2031-01-01"}


async def _seed(base_url: str, issuer: DevIssuer, clinician: str, people: list[str], *,
                agree: bool, parties: list[str]) -> list[dict[str, Any]]:
    """Plans for ``people`` (agreed by the person and the clinician when ``agree``), created
    over HTTP a few at a time."""
    staff = {"Authorization": f"Bearer {clinician}"}
    made: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(person: str) -> dict[str, Any]:
            created = await client.post("/v1/crisis-plans", headers=staff, json={
                "service_user_id": person, "team_id": TEAM, **PLAN,
                "clinician_parties_required": parties})
            if created.status_code != 201:
                raise RuntimeError(f"seeding a plan answered {created.status_code}: "
                                   f"{created.text[:300]}")
            plan: dict[str, Any] = created.json()
            if agree:
                own = issuer.mint(role="service_user", sub=person, patient=person,
                                  ttl_seconds=4 * 3600)
                for token in (own, clinician):
                    signed = await client.post(
                        f"/v1/crisis-plans/{plan['id']}/signatures",
                        headers={"Authorization": f"Bearer {token}", "If-Match": '"1"'},
                        json={"content_hash": plan["content_hash"]})
                    if signed.status_code != 201:
                        raise RuntimeError(f"seeding a signature answered "
                                           f"{signed.status_code}: {signed.text[:300]}")
            return plan

        for start in range(0, len(people), 16):
            made += await asyncio.gather(*(one(p) for p in people[start:start + 16]))
    return made


def run_crisis_plans(bench: Any, results: dict[str, Any]) -> None:
    """GET the active plan and sign a version against one crisis-plans process, started with
    its own `make run` command line; fills ``results`` as it goes."""
    from bench.run import expect, run_async, say

    scale = bench.scale
    scenarios: dict[str, Any] = results["scenarios"]
    issuer = DevIssuer(bench.workdir / "dev-issuer")
    issuer.ensure_keys()
    clinician = issuer.mint(role="clinician", sub="bench-clinician", teams=[TEAM],
                            ttl_seconds=4 * 3600)
    auth = {"Authorization": f"Bearer {clinician}"}

    with ServiceUnderTest(bench, results, SERVICE) as crisis_plans:
        service = crisis_plans.process
        sampler = crisis_plans.sample_memory()

        readers = [f"su-bench-cp-{n:05d}" for n in range(scale.goals_to_read)]
        run_async(_seed(service.base_url, issuer, clinician, readers, agree=True,
                        parties=["care_coordinator"]))
        reads = [Request("GET", f"/v1/people/{person}/crisis-plan") for person in readers]
        scenarios["get_active_plan"] = bench.load(
            "GET  /v1/people/{id}/crisis-plan", service, sampler, reads, auth, expect(200))

        # Each plan needs two clinicians, so one clinician's token signs it twice (as care
        # coordinator and as psychiatrist) and every request makes a new signature.
        seconds = scale.duration_s + 1
        threads = max(1, min(len(bench.cpus.load), scale.connections))
        count = max(10, int(seconds * SIGNATURES_PER_SECOND * threads / 2))
        started = time.perf_counter()
        # One draft made through the API, cloned in the database with its version rows.
        [draft] = run_async(_seed(service.base_url, issuer, clinician, ["su-bench-cp-sign"],
                                  agree=False, parties=["care_coordinator", "psychiatrist"]))
        clones = run_async(clone_record(
            crisis_plans.database_url, draft["id"],
            [f"su-bench-cp-sign-{n:06d}" for n in range(count - 1)]))
        drafts = [draft] + [{**draft, "id": plan_id} for plan_id in clones]
        say(f"seeded {len(drafts):,} draft plans to sign in "
            f"{time.perf_counter() - started:.1f} s")
        signs = [Request("POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                         json.dumps({"content_hash": plan["content_hash"], "party": party},
                                    separators=(",", ":")))
                 for party in ("care_coordinator", "psychiatrist") for plan in drafts]
        # A signature repeated would be a 409: the check signs a plan of its own, and there
        # is no warm-up, since each wrk run starts at a random place in the list. One wrk
        # thread walks the list once at most; more threads could meet, which the run reports
        # as failed requests.
        scenarios["sign_version"] = bench.load(
            "POST /v1/crisis-plans/{id}/signatures", service, sampler, signs[1:],
            {**auth, "Content-Type": "application/json", "If-Match": "*"}, expect(201),
            check_request=signs[0], warm_up=False)
        scenarios["sign_version"]["signatures_available"] = len(signs) - 1

        time.sleep(1)  # let the audit buffer and relay settle before the final reading

    # The bare baseline's same reads and signatures, on the database the service has just
    # used; a plan signed again only gains one more signature there.
    with bench.baseline(crisis_plans.database_url) as (baseline, memory_of_baseline):
        results["baseline"]["get_active_plan"] = bench.load(
            "baseline GET /v1/people/{id}/crisis-plan", baseline, memory_of_baseline,
            reads, {}, expect(200))
        results["baseline"]["sign_version"] = bench.load(
            "baseline POST /v1/crisis-plans/{id}/signatures", baseline, memory_of_baseline,
            signs[1:], {"Content-Type": "application/json"}, expect(201),
            check_request=signs[0], warm_up=False)
