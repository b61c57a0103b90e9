"""The gateway scenarios, in the same run as the baseline: one NATS, the five services and the
gateway as `make run` starts them; each GraphQL query beside the direct REST calls for the
same data, the service calls a team of 200 costs, subscription delivery, the gateway's memory.

The gateway has the server core to itself; the services share the load cores with wrk and
the harness (a lone caller's latency leaves them mostly idle)."""

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.loadgen import Request
from bench.relay import latency_summary
from bench.servers import ServiceUnderTest
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.processes import NatsServer
from recovery.gateway.settings import UPSTREAMS

PERSON, TEAM, BIG_TEAM = "bench-gw-person", "bench-gw-team", "bench-gw-team-200"
BIG_TEAM_SIZE = 200
SERVICE_USER = """query ($id: ID!) { serviceUser(id: $id) {
  goals { edges { node { id description lifecycleStatus } } }
  activeCrisisPlan { id version agreedAt }
  riskAssessments { edges { node { id status } } } } }"""
PROSPECTUS = "{ prospectus { edges { node { id title summary foundation } } } }"
TEAM_STAFF = """query ($id: ID!) { team(id: $id) { staff(first: 200) { totalCount
  edges { node { id profession trainingStatus { status } } } } } }"""
PLAN_CHANGES = """subscription ($id: ID!) { crisisPlanChanged(serviceUserId: $id) {
  eventType plan { id version } } }"""
#: Queries sent one after another to count the service calls a query costs.
COUNTED_QUERIES = 10


def start_platform(stack: contextlib.ExitStack, bench: Any, results: dict[str, Any],
                   platform: dict[str, Any], folder: Path
                   ) -> tuple[dict[str, ServiceUnderTest], dict[str, str], ServiceUnderTest]:
    """NATS, the five services on the load cores and the gateway over them, as `make run`
    starts them, each stopped when ``stack`` closes: the services, their URLs, the gateway."""
    nats = NatsServer(store_dir=folder / "nats")
    nats.start()
    stack.callback(nats.stop)
    services = {name: stack.enter_context(ServiceUnderTest(
        bench, platform, name, nats=nats, folder=folder, cpus=bench.cpus.load))
        for name in UPSTREAMS}
    urls = {name: service.process.base_url for name, service in services.items()}
    gateway = stack.enter_context(ServiceUnderTest(
        bench, results, "gateway", nats=nats, folder=folder, has_migrations=False,
        environment={f"RECOVERY_{name.upper().replace('-', '_')}_URL": url
                     for name, url in urls.items()}))
    return services, urls, gateway


def graphql_request(query: str, variables: dict[str, Any] | None = None) -> Request:
    return Request("POST", "/graphql", json.dumps({"query": query, "variables": variables or {}},
                                                  separators=(",", ":")))


def expect_data(answer: httpx.Response) -> None:
    """A GraphQL answer with data and no errors (a refusal is a 200 too)."""
    body = answer.json() if answer.status_code == 200 else {}
    if answer.status_code != 200 or body.get("errors") or not body.get("data"):
        raise RuntimeError(f"the gateway answered {answer.status_code}: {answer.text[:300]}")


def seeding(http: httpx.AsyncClient, urls: dict[str, str]
            ) -> Callable[..., Awaitable[Any]]:
    """A REST call to one of the services for seeding: its JSON answer, or an error that
    says which call was refused and why."""
    async def rest(service: str, method: str, path: str, headers: dict[str, str],
                   **kw: Any) -> Any:
        answer = await http.request(method, urls[service] + path, headers=headers, **kw)
        if answer.status_code >= 400:
            raise RuntimeError(f"seeding {method} {path} answered {answer.status_code}: "
                               f"{answer.text[:300]}")
        return answer.json()

    return rest


async def _seed(urls: dict[str, str], tokens: dict[str, dict[str, str]],
                team_size: int) -> None:
    """The person's goal, agreed crisis plan and co-assessment; a team of 2 and a big one,
    whose staff-joined events the training service turns into foundation enrolments."""
    person, staff, admin = tokens["person"], tokens["staff"], tokens["admin"]
    async with httpx.AsyncClient(timeout=30) as http:
        rest = seeding(http, urls)

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
        for team, size in ((TEAM, 2), (BIG_TEAM, team_size)):
            await rest("workforce", "POST", "/v1/teams", admin, json={"id": team, "name": team})

            async def join(n: int, team: str = team) -> None:
                await rest("workforce", "POST", "/v1/staff", admin, json={
                    "id": f"{team}-{n:03d}", "team_id": team, "display_name": f"Staff {n}",
                    "profession": "nursing", "grade": "band-5", "role_type": "professional",
                    "fte": 1.0, "start_date": start})
            for first in range(0, size, 20):
                await asyncio.gather(*(join(n) for n in range(first, min(first + 20, size))))
        # The training service enrols newcomers from workforce's events: wait until it has.
        deadline = time.monotonic() + 120
        while (await rest("training", "GET", f"/v1/teams/{BIG_TEAM}/foundation-coverage",
                          admin))["staff"] < team_size:
            if time.monotonic() > deadline:
                raise RuntimeError("training did not hear of every new member of staff in 2 "
                                   "minutes")
            await asyncio.sleep(0.5)


async def calls_per_query(gateway: str, query: Request, headers: dict[str, str]) -> float:
    """Service calls one query costs, from the gateway's own counter."""
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        async def calls() -> float:
            text = (await http.get("/metrics")).text
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("gateway_upstream_calls_total{"))
        before = await calls()
        for _ in range(COUNTED_QUERIES):
            expect_data(await http.post("/graphql", content=query.body, headers=headers))
        return (await calls() - before) / COUNTED_QUERIES


async def subscription_latency(gateway: str, crisis_plans: str, person: dict[str, str],
                               staff: dict[str, str], events: int) -> list[float]:
    """Milliseconds from the service's answer to an edit of the plan (its commit) to the
    subscriber's message about it, for each of ``events`` edits."""
    async with websockets.connect(f"ws://{gateway.removeprefix('http://')}/graphql",
                                  subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                                  ) as socket, httpx.AsyncClient(timeout=30) as http:
        await socket.send(json.dumps({"type": "connection_init", "payload": person}))
        json.loads(await socket.recv())
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": PLAN_CHANGES, "variables": {"id": PERSON}}}))
        await asyncio.sleep(0.3)
        plan_id = (await http.get(f"{crisis_plans}/v1/people/{PERSON}/crisis-plan",
                                  headers=staff)).json()["plan_id"]
        samples = []
        for i in range(events):
            version = (await http.get(f"{crisis_plans}/v1/crisis-plans/{plan_id}",
                                      headers=staff)).json()["version"]
            edited = await http.put(f"{crisis_plans}/v1/crisis-plans/{plan_id}",
                                    headers={**staff, "If-Match": f'"{version}"'},
                                    json={"when_well": [f"Walking the dog, edit {i}"]})
            edited.raise_for_status()
            committed = time.perf_counter()
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if message.get("type") == "next":
                    samples.append((time.perf_counter() - committed) * 1000)
                    break
                if message.get("type") == "error":
                    raise RuntimeError(f"the subscription failed: {message}")
        return samples


#: The direct REST calls that fetch what the gateway's serviceUser query composes.
DIRECT_CALLS = ("direct_goals", "direct_active_plan", "direct_risk")


def gateway_bound_ms(scenarios: dict[str, Any]) -> float | None:
    """Issue 5's bound on the composed query: 1.5 times the slowest direct call's p50, plus
    3 ms (the fan-out is parallel)."""
    if not all(key in scenarios for key in DIRECT_CALLS):
        return None
    slowest: float = max(scenarios[key]["latency_ms"]["p50"] for key in DIRECT_CALLS)
    return 1.5 * slowest + 3


def gateway_share(scenarios: dict[str, Any]) -> float | None:
    """The serviceUser query's p50 over its bound: at most 1 meets the target."""
    bound = gateway_bound_ms(scenarios)
    if bound is None or "gateway_service_user" not in scenarios:
        return None
    p50: float = scenarios["gateway_service_user"]["latency_ms"]["p50"]
    return round(p50 / bound, 3)


def run_gateway(bench: Any, results: dict[str, Any]) -> None:
    """The gateway's scenarios against NATS, the five services and the gateway; fills
    ``results`` (the services' memory under ``gateway_platform``)."""
    from bench.run import expect, run_async, say

    scenarios: dict[str, Any] = results["scenarios"]
    folder = bench.workdir / "gateway-platform"
    folder.mkdir()
    issuer = DevIssuer(bench.workdir / "dev-issuer")
    issuer.ensure_keys()

    def bearer(role: str, sub: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + issuer.mint(role=role, sub=sub,
                                                         ttl_seconds=4 * 3600, **claims)}
    tokens = {"person": bearer("service_user", PERSON, patient=PERSON),
              "staff": bearer("clinician", "bench-gw-staff", teams=[TEAM]),
              "admin": bearer("admin", "bench-gw-admin", teams=[TEAM, BIG_TEAM]),
              "manager": bearer("manager", "bench-gw-manager", teams=[TEAM, BIG_TEAM])}
    staff, manager = tokens["staff"], tokens["manager"]
    as_json = {"Content-Type": "application/json"}
    team_size = BIG_TEAM_SIZE if bench.scale.name != "tiny" else 20
    platform: dict[str, Any] = results.setdefault("gateway_platform", {})
    with contextlib.ExitStack() as stack:
        services, urls, gateway = start_platform(stack, bench, results, platform, folder)
        run_async(_seed(urls, tokens, team_size))
        samplers = {name: service.sample_memory() for name, service in services.items()}
        sampler = gateway.sample_memory()
        results["gateway_service"]["big_team_staff"] = team_size

        lone = {"connections": 1}
        batch = json.dumps({"service_user_ids": [PERSON]})
        for key, service, request in (
                ("direct_goals", "goals", Request("POST", "/v1/goals:batch-read", batch)),
                ("direct_active_plan", "crisis-plans",
                 Request("GET", f"/v1/people/{PERSON}/crisis-plan")),
                ("direct_risk", "risk",
                 Request("POST", "/v1/risk-assessments:batch-read", batch))):
            scenarios[key] = bench.load(f"{service} {request.method} {request.path}, alone",
                                        services[service].process, samplers[service],
                                        [request], {**staff, **as_json}, expect(200), **lone)
        scenarios["gateway_service_user"] = bench.load(
            "gateway serviceUser, alone", gateway.process, sampler,
            [graphql_request(SERVICE_USER, {"id": PERSON})], {**staff, **as_json},
            expect_data, **lone)
        scenarios["gateway_floor"] = bench.load(
            "gateway { me }, alone", gateway.process, sampler,
            [graphql_request("{ me { sub roles } }")], {**staff, **as_json}, expect_data,
            **lone)

        scenarios["direct_courses"] = bench.load(
            "training GET /v1/courses", services["training"].process, samplers["training"],
            [Request("GET", "/v1/courses")], staff, expect(200))
        scenarios["gateway_prospectus"] = bench.load(
            "gateway prospectus", gateway.process, sampler, [graphql_request(PROSPECTUS)],
            {**staff, **as_json}, expect_data)

        big, small = (graphql_request(TEAM_STAFF, {"id": team}) for team in (BIG_TEAM, TEAM))
        scenarios["gateway_team_200"] = bench.load(
            f"gateway team of {team_size} with training status, alone", gateway.process,
            sampler, [big], {**manager, **as_json}, expect_data, **lone)
        scenarios["gateway_team_200"]["service_calls_per_query"] = run_async(
            calls_per_query(gateway.process.base_url, big, {**manager, **as_json}))
        scenarios["gateway_team_200"]["service_calls_per_query_team_of_2"] = run_async(
            calls_per_query(gateway.process.base_url, small, {**manager, **as_json}))

        with sampler.phase() as memory:
            delivery = run_async(subscription_latency(
                gateway.process.base_url, urls["crisis-plans"], tokens["person"], staff,
                100 if bench.scale.name != "tiny" else 5))
        scenarios["gateway_subscription"] = {
            "events": len(delivery), "latency_ms": latency_summary(sorted(delivery)), **memory}
        say(f"subscription, commit to client: p50 "
            f"{scenarios['gateway_subscription']['latency_ms']['p50']} ms, p99 "
            f"{scenarios['gateway_subscription']['latency_ms']['p99']} ms over "
            f"{len(delivery)} edits")
