"""The risk scenario, in the same run as the baseline: read a co-assessment under load, and
the service's memory (its target is RSS only)."""

import asyncio
from typing import Any

import httpx

from bench.loadgen import Request
from bench.servers import ServiceUnderTest
from recovery.common.dev_issuer import DevIssuer

SERVICE = "risk"
TEAM = "bench-risk"
AREAS = [{"area": "substances", "service_user_view": "A drink at the weekend is fine for me",
          "clinician_view": "Drinking has led to two admissions", "views_agree": False,
          "difference": "We see the weekend drinking differently",
          "strengths": ["Walks the dog daily"], "protective_factors": ["Sister nearby"]}]


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
    from bench.run import expect, run_async

    issuer = DevIssuer(bench.workdir / "dev-issuer")
    issuer.ensure_keys()
    clinician = issuer.mint(role="clinician", sub="bench-clinician", teams=[TEAM],
                            ttl_seconds=4 * 3600)
    with ServiceUnderTest(bench, results, SERVICE) as risk:
        sampler = risk.sample_memory()
        people = [f"su-bench-risk-{n:05d}" for n in range(bench.scale.goals_to_read)]
        ids = run_async(_seed(risk.process.base_url, issuer, clinician, people))
        results["scenarios"]["get_risk_assessment"] = bench.load(
            "GET  /v1/risk-assessments/{id}", risk.process, sampler,
            [Request("GET", f"/v1/risk-assessments/{record}") for record in ids],
            {"Authorization": f"Bearer {clinician}"}, expect(200))
