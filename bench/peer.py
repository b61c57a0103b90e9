"""Our gateway beside the peer a team would otherwise pick: Hive Gateway serving a GraphQL
Mesh composition of the same services' OpenAPI documents (`bench/peer/`, installed by
`make bench` into var/peer). Both run in the same run over the same seeded data, one at a
time on the server core, and answer the same three queries: a person's 20 goals, their goals
and crisis plans, and a clinician's caseload of 20 people."""

import asyncio
import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import (
    calls_per_query,
    expect_data,
    graphql_request,
    seeding,
    start_platform,
)
from bench.servers import REPO, RssSampler, ServerProcess
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.processes import free_port

#: What is committed (package.json, package-lock.json, the mesh config) and where make
#: installs it (`npm ci`).
PEER_SOURCE = REPO / "bench" / "peer"
PEER_DIR = REPO / "var" / "peer"
COMPOSE = PEER_DIR / "node_modules" / ".bin" / "mesh-compose"
HIVE_GATEWAY = PEER_DIR / "node_modules" / ".bin" / "hive-gateway"
#: wrk's connections for these scenarios (fewer at a scale with fewer): a front-end's
#: burst, not the services' 32.
CONNECTIONS = 16
TEAM = "bench-peer-team"
PEOPLE = 20
GOALS_EACH = 20
CASELOAD_GOALS = 5


def person(number: int) -> str:
    return f"bench-peer-person-{number:02d}"


CASELOAD = [person(n) for n in range(PEOPLE)]

#: Our three queries. The caseload asks each person's newest goals and their agreed plan.
OURS = {
    "goals": """query ($id: ID!) { serviceUser(id: $id) {
  goals(first: 20) { edges { node { id description lifecycleStatus version } } } } }""",
    "goals_and_plans": """query ($id: ID!) { serviceUser(id: $id) {
  goals(first: 20) { edges { node { id description lifecycleStatus version } } }
  crisisPlans(first: 20) { edges { node { id status version agreedAt } } } } }""",
    "caseload": """query ($ids: [ID!]!) { serviceUsers(ids: $ids) { id
  goals(first: 5) { edges { node { id description lifecycleStatus version } } }
  activeCrisisPlan { id version agreedAt } } }""",
}
_GOALS_PAGE = "goals_Page_LEFT_SQUARE_BRACE_GoalPublic_RIGHT_SQUARE_BRACE_"
_PLANS_PAGE = "crisis_plans_Page_LEFT_SQUARE_BRACE_PlanPublic_RIGHT_SQUARE_BRACE_"
#: Each query is sent in 20 variants (each person; the caseload in 20 orders), the same
#: set to both gateways: identical requests in flight at once could be answered by one
#: service call (the peer may share them), which would not measure a front-end's load.
VARIANTS = PEOPLE


def caseload(variant: int) -> list[str]:
    return CASELOAD[variant:] + CASELOAD[:variant]


def _goals(who: str) -> str:
    return (f"goals_list_goals_v1_goals_get(service_user_id: {json.dumps(who)}, limit: 20) "
            f"{{ ... on {_GOALS_PAGE} {{ items {{ id description lifecycle_status version }} }} }}")


def peer_query(query: str, variant: int) -> str:
    """The same data through the peer's composed schema: the services' operations by their
    operation ids, each answer a union of the page and a problem document. The ids are
    literals: the composition gives each service's id parameters a scalar of their own."""
    who = person(variant)
    if query == "goals":
        return f"{{ {_goals(who)} }}"
    if query == "goals_and_plans":
        return f"""{{ {_goals(who)}
  crisis_plans_list_person_plans_v1_people__service_user_id__crisis_plans_get(
    service_user_id: {json.dumps(who)}, limit: 20) {{ ... on {_PLANS_PAGE} {{
      items {{ id status version agreed_at }} }} }} }}"""
    people = json.dumps(caseload(variant))
    return f"""{{
  goals_batch_read_v1_goals_batch_read_post(
    input: {{service_user_ids: {people}, limit_per_person: {CASELOAD_GOALS}}}) {{
    ... on goals_BatchReadResult {{ results {{ service_user_id
      goals {{ id description lifecycle_status version }} }} }} }}
  crisis_plans_batch_read_v1_crisis_plans_batch_read_post(
    input: {{service_user_ids: {people}}}) {{
    ... on crisis_plans_BatchReadResult {{ results {{ service_user_id
      active_plan {{ plan_id version agreed_at }} }} }} }} }}"""


TITLES = {
    "goals": "a person's 20 goals (one service call)",
    "goals_and_plans": "their goals and crisis plans (two service calls)",
    "caseload": f"a caseload: {PEOPLE} people's newest {CASELOAD_GOALS} goals and agreed "
                "crisis plan",
}


def variables(query: str, variant: int = 0) -> dict[str, Any]:
    return {"ids": caseload(variant)} if query == "caseload" else {"id": person(variant)}


def peer_installed() -> bool:
    """The peer's packages are installed, from the committed lock file as it stands."""
    installed = PEER_DIR / "package-lock.json"
    return (COMPOSE.exists() and HIVE_GATEWAY.exists() and installed.exists()
            and installed.read_bytes() == (PEER_SOURCE / "package-lock.json").read_bytes())


def compose(urls: dict[str, str], folder: Path) -> Path:
    """The peer's supergraph, composed from the running services' /openapi.json."""
    output = folder / "supergraph.graphql"
    # Beside its node_modules, so that its imports resolve to the installed packages.
    (PEER_DIR / "mesh.config.ts").write_bytes((PEER_SOURCE / "mesh.config.ts").read_bytes())
    env = {**os.environ, **{f"RECOVERY_{name.upper().replace('-', '_')}_URL": url
                            for name, url in urls.items()}}
    finished = subprocess.run(
        [str(COMPOSE), "-o", str(output)], cwd=PEER_DIR, env=env, capture_output=True,
        text=True, check=False, timeout=300)
    if finished.returncode != 0 or not output.exists():
        raise RuntimeError(f"mesh-compose failed: {finished.stdout[-2000:]}"
                           f"{finished.stderr[-2000:]}")
    return output


def peer_gateway(supergraph: Path, cpus: set[int], folder: Path) -> ServerProcess:
    """Hive Gateway in one process (no forked workers), as our gateway runs in one."""
    port = free_port()
    argv = [str(HIVE_GATEWAY), "supergraph", str(supergraph), "--host", "127.0.0.1",
            "--port", str(port), "--fork", "0", "--disable-websockets"]
    env = {**os.environ, "NODE_ENV": "production"}
    return ServerProcess("peer", argv, env, port, cpus, folder / "peer.log")


async def _seed(urls: dict[str, str], issuer: DevIssuer, staff: dict[str, str]) -> None:
    """Each of the people writes their goals and agrees a crisis plan with a clinician."""
    async with httpx.AsyncClient(timeout=30) as http:
        rest = seeding(http, urls)

        async def one(number: int) -> None:
            who = person(number)
            own = {"Authorization": "Bearer " + issuer.mint(
                role="service_user", sub=who, patient=who, ttl_seconds=3600)}
            for goal in range(GOALS_EACH):
                await rest("goals", "POST", "/v1/goals", own, json={
                    "service_user_id": who, "team_id": TEAM,
                    "description": f"Goal {goal}: back to the allotment on Sundays"})
            plan = await rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
                "service_user_id": who, "team_id": TEAM, "when_well": ["Walking the dog"],
                "participants": [{"role": "service_user"}, {"role": "care_coordinator"}]})
            for signer in (own, staff):
                await rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                           {**signer, "If-Match": f'"{plan["version"]}"'},
                           json={"content_hash": plan["content_hash"]})

        for first in range(0, PEOPLE, 5):
            await asyncio.gather(*(one(n) for n in range(first, min(first + 5, PEOPLE))))


def _expect_peer_data(answer: httpx.Response) -> None:
    """The peer answers a service's refusal as a problem document in data, where a page or
    a batch should be (a union, so the selection comes back empty): each field must hold
    its items."""
    expect_data(answer)
    for field, value in answer.json()["data"].items():
        listed = (value or {}).get("items") or (value or {}).get("results")
        if not listed:
            raise RuntimeError(f"the peer answered no items for {field}: {answer.text[:300]}")


def versus(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    """Ours over the peer's: CPU time per request (at most 1 meets the target) and
    requests per second (at least 1)."""
    cost, peer_cost = ours.get("cpu_us_per_request"), peer.get("cpu_us_per_request")
    rate, peer_rate = ours.get("requests_per_s"), peer.get("requests_per_s")
    return {"cpu_ratio": round(cost / peer_cost, 3) if cost and peer_cost else None,
            "rate_ratio": round(rate / peer_rate, 3) if rate and peer_rate else None}


def run_peer(bench: Any, results: dict[str, Any]) -> None:
    """The three queries through our gateway and through the peer, over one platform; fills
    ``results["scenarios"]["ours_<query>"]`` and ``results["peer"]``."""
    from bench.run import run_async, say

    if not peer_installed():
        raise RuntimeError("the peer is not installed (or not from the committed lock): run "
                           "`make peer` (make bench does it) to `npm ci` it into var/peer")
    scenarios: dict[str, Any] = results["scenarios"]
    peer_results: dict[str, Any] = results.setdefault("peer", {})
    folder = bench.workdir / "peer-platform"
    folder.mkdir()
    issuer = DevIssuer(bench.workdir / "dev-issuer")
    issuer.ensure_keys()
    staff = {"Authorization": "Bearer " + issuer.mint(
        role="clinician", sub="bench-peer-clinician", teams=[TEAM], ttl_seconds=4 * 3600)}
    as_json = {**staff, "Content-Type": "application/json"}
    platform: dict[str, Any] = results.setdefault("peer_platform", {})
    with contextlib.ExitStack() as stack:
        _, urls, ours = start_platform(stack, bench, results, platform, folder)
        run_async(_seed(urls, issuer, staff))
        supergraph = compose(urls, folder)
        peer = peer_gateway(supergraph, bench.cpus.server, folder)
        peer.start("/healthcheck")
        stack.callback(peer.stop)
        say(f"peer (Hive Gateway) ready on port {peer.port} (pid {peer.pid})")
        samplers = {"ours": ours.sample_memory(), "peer": RssSampler(peer.pid).start()}
        stack.callback(samplers["peer"].stop)
        connections = min(CONNECTIONS, bench.scale.connections)
        for query in OURS:
            scenarios[f"ours_{query}"] = bench.load(
                f"ours: {TITLES[query]}", ours.process, samplers["ours"],
                [graphql_request(OURS[query], variables(query, v)) for v in range(VARIANTS)],
                as_json, expect_data,
                connections=connections)
            peer_results[query] = bench.load(
                f"peer: {TITLES[query]}", peer, samplers["peer"],
                [graphql_request(peer_query(query, v)) for v in range(VARIANTS)],
                as_json, _expect_peer_data,
                connections=connections)
            scenarios[f"ours_{query}"]["versus_peer"] = figures = versus(
                scenarios[f"ours_{query}"], peer_results[query])
            say(f"{TITLES[query]}: ours/peer CPU per request {figures['cpu_ratio']}, "
                f"req/s {figures['rate_ratio']}")
        scenarios["ours_caseload"]["service_calls_per_query"] = run_async(calls_per_query(
            ours.process.base_url, graphql_request(OURS["caseload"], variables("caseload")),
            as_json))
        platform["peer_rss_after_run_mb"] = round(peer.rss_bytes() / 2**20, 1)

