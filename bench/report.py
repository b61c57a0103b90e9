"""Writes a run's figures: the JSON file in bench/results and the generated part of
docs/performance.md (the text outside its markers is written by hand and kept)."""

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.gateway import gateway_bound_ms
from bench.peer import CONNECTIONS as PEER_CONNECTIONS
from bench.peer import TITLES as PEER_TITLES
from bench.servers import REPO

RESULTS_DIR = REPO / "bench" / "results"
DOCS = REPO / "docs" / "performance.md"
BEGIN = "<!-- bench:results:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:results:end -->"

#: What holds a figure back, shown beside a missed target; from profiling a run on
#: PostgreSQL (py-spy on the service during the scenario; see docs/performance.md).
_READ = ("Profiled 2026-12-07 21:36 (py-spy, quick run): SQLAlchemy ~22 % and asyncpg ~17 % "
         "of the server's CPU, FastAPI ~14-21 %, uvicorn ~12 %, the kit's request middleware "
         "~6 %, Starlette ~5 %. In process, a read through SQLAlchemy's async engine (pool "
         "checkout, execution, return) costs ~440 µs of CPU where asyncpg's prepared fetch "
         "costs ~70; the framework floor (`GET /healthz`) is ~390 µs against Starlette's "
         "~130 (FastAPI's included routers, dependency resolution and its own middleware); "
         "and every read is audited, ~100 µs for its row in the trail's batched INSERTs, a "
         "row the baseline does not write. Reads already run in autocommit on an engine of "
         "their own (one round trip, decision 31); what is left is the framework and the "
         "ORM library's per-statement work, which the kit does not bypass.")
_WRITE = ("Profiled 2026-12-07 21:36 (py-spy): SQLAlchemy ~26-32 % and asyncpg ~17-22 % of the "
          "server's CPU (statement execution, the ORM's unit of work where a change loads "
          "records), FastAPI ~8-13 %.")
#: What holds a figure back, shown beside a missed target; from profiling a run on
#: PostgreSQL (py-spy on the service during the scenario: `python -m bench --profile`).
LIMITS: dict[str, str] = {
    "get_ratio": _READ,
    "get_p99_ms": "A closed loop of 32 connections waits 32 times the CPU per read on "
                  "average: at ~1.3 ms of CPU a read (780 reads a second on one core) that "
                  "is ~41 ms before any tail. The p99 follows throughput (see the ratio).",
    "crisis_get_active_ratio": _READ,
    "crisis_get_active_p99_ms": "As for a goal by id: 32 connections over ~800 reads a "
                                "second is ~40 ms of queueing on average before any tail.",
    "post_ratio": _WRITE,
    "crisis_sign_ratio": _WRITE,
    "workforce_log_contact_ratio": _WRITE,
    "relay_events_per_s": "The relay shares the goals service's one core; each batch is one "
                          "transaction (read, publish with nats-py's publish_async, mark).",
    "relay_latency_p99_ms": "At 200 creates a second the service's core is busy with the "
                            "creates themselves; events wait behind them.",
}
TIMES = "\u00d7"  # the multiplication sign, spelled out for linters

SCENARIO_TITLES = {
    "healthz": "`GET /healthz` of the service (framework floor: no token, no database)",
    "get_goal": "`GET /v1/goals/{id}`, authenticated",
    "post_goal": "`POST /v1/goals` (minimal create: goal, version, audit entry, outbox row)",
    "get_active_plan": "crisis-plans `GET /v1/people/{id}/crisis-plan` (the active plan)",
    "sign_version": "crisis-plans `POST /v1/crisis-plans/{id}/signatures` (sign a version)",
    "get_risk_assessment": "risk `GET /v1/risk-assessments/{id}` (an agreed co-assessment)",
    "foundation_coverage": "training `GET /v1/teams/{id}/foundation-coverage` (200 staff)",
    "workforce_peer_share": "workforce `GET /v1/teams/{id}/peer-share` (200 staff, 100,000 "
                            "contacts)",
    "workforce_readiness": "workforce `GET /v1/teams/{id}/readiness` (200 staff)",
    "log_care_contact": "workforce `POST /v1/care-contacts` (with the monthly minutes)",
    "direct_goals": "goals `POST /v1/goals:batch-read`, one person, a lone caller",
    "direct_active_plan": "crisis-plans `GET /v1/people/{id}/crisis-plan`, a lone caller",
    "direct_risk": "risk `POST /v1/risk-assessments:batch-read`, one person, a lone caller",
    "gateway_service_user": "gateway `serviceUser` (the three above composed), a lone caller",
    "gateway_floor": "gateway `{ me }` (its own floor: no service called), a lone caller",
    "direct_courses": "training `GET /v1/courses`",
    "gateway_prospectus": "gateway `prospectus` (the same courses through GraphQL)",
    "gateway_team_200": "gateway team of 200 staff with training status, a lone caller",
}


def write_json(results: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(results["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}-{results['scale']['name']}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "not measured"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _bound(target: dict[str, Any]) -> str:
    sign = "≥" if target["higher_is_better"] else "≤"
    unit = target["unit"]
    if unit == "x":
        unit = f"{TIMES} baseline" if target["key"].endswith("_ratio") else TIMES
        return f"{sign} {_number(target['bound'])}{unit}"
    return f"{sign} {_number(target['bound'])} {unit}"


def _figure(target: dict[str, Any], value: float | None) -> str:
    if value is None:
        return "—"
    if target["key"].endswith("_ratio"):
        return f"{_number(value, 0)} req/s"
    return f"{_number(value)} {target['unit']}"


def _measured(target: dict[str, Any]) -> str:
    if target["measured"] is None:
        return "not measured"
    suffix = TIMES if target["unit"] == "x" else f" {target['unit']}"
    text = f"{_number(target['measured'])}{suffix}"
    if target.get("by_cpu_cost") is not None:
        text += f" ({_number(target['by_cpu_cost'])}{TIMES} by CPU time per request)"
    return text


def _scenario_row(title: str, figures: dict[str, Any], base_rate: float | None) -> str:
    latency = figures["latency_ms"]
    rate = figures["requests_per_s"]
    ratio = f"{rate / base_rate:.2f}" if base_rate else "—"
    return (f"| {title} | {rate:,.0f} | {ratio} | {latency['p50']:.2f} | "
            f"{latency['p90']:.2f} | {latency['p99']:.2f} | {figures['peak_rss_mb']} | "
            f"{_share(figures.get('cpu_share'))} | "
            f"{_share(figures.get('run_queue_wait_share'))} | "
            f"{_share(figures.get('stolen_share'))} | "
            f"{_number(figures.get('cpu_us_per_request'), 0)} | "
            f"{_number(figures.get('database_cpu_us_per_request'), 0)} | "
            f"{_share(figures.get('load_generator_cpu'))} | "
            f"{sum(figures['errors'].values())} |")


def what_limits(target: dict[str, Any], results: dict[str, Any]) -> str:
    """The note on a missed target: what this run measured of the service's and the
    database's CPU per request beside the baseline's, the profile's shares when the run was
    profiled, and the hand-written note from the last profiling (``LIMITS``)."""
    notes = []
    scenario = target.get("scenario")
    ours = results["scenarios"].get(scenario, {}) if scenario else {}
    base = results.get("baseline", {}).get(scenario, {}) if scenario else {}
    if ours.get("cpu_us_per_request") and base.get("cpu_us_per_request"):
        notes.append(
            f"Server CPU per request {_number(ours['cpu_us_per_request'], 0)} µs against the "
            f"baseline's {_number(base['cpu_us_per_request'], 0)} µs; PostgreSQL's "
            f"{_number(ours.get('database_cpu_us_per_request'), 0)} against "
            f"{_number(base.get('database_cpu_us_per_request'), 0)} µs.")
    if ours.get("profile"):
        shares = ", ".join(f"{package} {share:.0%}"
                           for package, share in ours["profile"].items())
        notes.append(f"The server's CPU by package (py-spy): {shares}.")
    if target["key"] in LIMITS:
        notes.append(LIMITS[target["key"]])
    return " ".join(notes)


def render(results: dict[str, Any]) -> str:
    """The generated block of docs/performance.md, markers included."""
    scale = results["scale"]
    cpus = results["cpu_plan"]
    baselines = results.get("baseline", {})
    scenarios = results["scenarios"]
    placement = (f"service on core {cpus['server']}; wrk, NATS, PostgreSQL and the harness on "
                 f"core(s) {cpus['load']}" if cpus["isolated"]
                 else "one core shared by everything")
    if cpus.get("niceness"):
        placement += f", all at niceness {cpus['niceness']}"
    lines = [
        BEGIN,
        "",
        f"### Run of {results['started_at']}",
        "",
        f"Scale `{scale['name']}`: {scale['duration_s']:g} s per scenario after a "
        f"{scale['warmup_s']:g} s warm-up, {scale['connections']} connections; "
        f"{results['machine']['cpus']} cores ({placement}); Python "
        f"{results['machine']['python']}; {results['machine']['load_generator']}; "
        f"{results['machine'].get('database', 'PostgreSQL')}, a cluster of the run's own "
        "(fsync off, as the tests run it), a fresh database per service, migrated; service "
        f"command from {results['command']['source']}: `{results['command']['line']}`. "
        "The baseline is `bench/baseline.py`: bare Starlette and asyncpg doing the "
        "scenario's database work on the service's database, served the same way. "
        f"Load average (1 min) {results.get('load_average_at_start', ['?'])[0]} at the start, "
        f"{results.get('load_average_at_end', ['?'])[0]} at the end: the machine is shared, "
        "and the server's wait for its core is shown per scenario.",
        "",
    ]
    if results.get("aborted"):
        lines += [f"**The run stopped early:** {results['aborted']}", ""]
    lines += ["| Target | Bound | Ours | Baseline | Measured | Result | What limits it |",
              "|---|---|---|---|---|---|---|"]
    for target in results["targets"]:
        met = target["met"]
        result = "met" if met else ("**missed**" if target["measured"] is not None else "—")
        limit = "" if met else what_limits(target, results)
        lines.append(f"| {target['description']} | {_bound(target)} | "
                     f"{_figure(target, target.get('ours'))} | "
                     f"{_figure(target, target.get('baseline'))} | {_measured(target)} | "
                     f"{result} | {limit} |")
    lines += ["", f"| Scenario | req/s | {TIMES} baseline | p50 ms | p90 ms | p99 ms | peak RSS MB "
              "| server CPU | server waiting for its core | machine time taken by the hypervisor "
              "| CPU µs per request | PostgreSQL CPU µs per request | wrk CPU | failed requests |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, title in SCENARIO_TITLES.items():
        base = baselines.get(key)
        base_rate = base["requests_per_s"] if base else None
        if key in scenarios:
            lines.append(_scenario_row(title, scenarios[key], base_rate))
        if base:
            lines.append(_scenario_row(f"Baseline (Starlette, asyncpg): {title}", base,
                                       base_rate))
    relay = scenarios.get("relay_throughput")
    latency_runs = [scenarios[key] for key in ("relay_latency", "relay_latency_light")
                    if key in scenarios]
    if relay or latency_runs:
        lines += ["", "| Outbox relay | Figure |", "|---|---|"]
    if relay:
        lines += [f"| Events committed at once, then one change to wake the relay | "
                  f"{relay['events']:,} |",
                  f"| Until all were stored in JetStream | {relay['seconds']} s "
                  f"({relay['events_per_s']:,.0f} events/s) |"]
    for latency_run in latency_runs:
        figures = latency_run["latency_ms"]
        rate = latency_run["rate_per_s"]
        lines += [f"| Commit-to-consumer latency at {rate} changes/s: "
                  f"p50 / p90 / p99 / max | {figures['p50']} / {figures['p90']} / "
                  f"{figures['p99']} / {figures['max']} ms |",
                  f"| … at {rate}/s: changes committed (achieved rate) / events received "
                  f"/ server CPU | {latency_run['changes_committed']:,} "
                  f"({latency_run['achieved_rate_per_s']:g}/s) / "
                  f"{latency_run['events_received']:,} / "
                  f"{_share(latency_run.get('cpu_share'))} |"]
    goals = results.get("goals_service")
    if goals:
        lines += ["", f"Goals memory (RSS): {goals.get('rss_after_start_mb', '—')} MB after "
                  f"start, {goals.get('peak_rss_mb', '—')} MB at peak, "
                  f"{goals.get('rss_after_run_mb', '—')} MB after the run."]
    crisis = results.get("crisis_plans_service")
    if crisis:
        lines += ["", f"Crisis-plans memory (RSS): {crisis.get('rss_after_start_mb', '—')} MB "
                  f"after start, {crisis.get('peak_rss_mb', '—')} MB at peak, "
                  f"{crisis.get('rss_after_run_mb', '—')} MB after the run."]
    risk = results.get("risk_service")
    if risk:
        lines += ["", f"Risk memory (RSS): {risk.get('rss_after_start_mb', '—')} MB after "
                  f"start, {risk.get('peak_rss_mb', '—')} MB at peak, "
                  f"{risk.get('rss_after_run_mb', '—')} MB after the run."]
    training = results.get("training_service")
    if training:
        lines += ["", f"Training memory (RSS): {training.get('rss_after_start_mb', '—')} MB "
                  f"after start, {training.get('peak_rss_mb', '—')} MB at peak, "
                  f"{training.get('rss_after_run_mb', '—')} MB after the run."]
    workforce = results.get("workforce_service")
    if workforce:
        lines += ["", f"Workforce memory (RSS): {workforce.get('rss_after_start_mb', '—')} MB "
                  f"after start, {workforce.get('peak_rss_mb', '—')} MB at peak, "
                  f"{workforce.get('rss_after_run_mb', '—')} MB after the run."]
    lines += _gateway_lines(results)
    lines += _peer_lines(results)
    problems = results.get("failures") or []
    lines += ["", "Failures during the run: " + ("; ".join(problems) if problems else "none.")]
    lines += ["", END]
    return "\n".join(lines)


def _gateway_lines(results: dict[str, Any]) -> list[str]:
    """The gateway's figures in milliseconds and calls, beside its targets' shares."""
    scenarios = results["scenarios"]
    gateway = results.get("gateway_service")
    if not gateway:
        return []
    lines = ["", "| Gateway (the five services and NATS as `make run` has them; the gateway on "
             "the server core) | Figure |", "|---|---|"]
    composed, bound = scenarios.get("gateway_service_user"), gateway_bound_ms(scenarios)
    if composed and bound is not None:
        lines.append(f"| `serviceUser` p50 against its bound (1.5 {TIMES} the slowest direct "
                     f"call + 3 ms) | {composed['latency_ms']['p50']:.2f} ms against "
                     f"{bound:.2f} ms |")
    floor = scenarios.get("gateway_floor")
    if floor:
        lines.append(f"| The gateway's own floor (`me`, no service called): p50 / CPU per "
                     f"request | {floor['latency_ms']['p50']:.2f} ms / "
                     f"{_number(floor.get('cpu_us_per_request'), 0)} µs |")
    team = scenarios.get("gateway_team_200")
    if team:
        lines.append(f"| Team of {gateway.get('big_team_staff', 200)} with training status: "
                     f"p50 / p99; service calls per query (team of 2) | "
                     f"{team['latency_ms']['p50']:.2f} / {team['latency_ms']['p99']:.2f} ms; "
                     f"{_number(team.get('service_calls_per_query'), 1)} "
                     f"({_number(team.get('service_calls_per_query_team_of_2'), 1)}) |")
    delivery = scenarios.get("gateway_subscription")
    if delivery:
        figures = delivery["latency_ms"]
        lines.append(f"| Subscription, commit to client over {delivery['events']} edits: "
                     f"p50 / p90 / p99 / max | {figures['p50']} / {figures['p90']} / "
                     f"{figures['p99']} / {figures['max']} ms |")
    lines.append(f"| Gateway memory (RSS): after start / at peak / after the run | "
                 f"{gateway.get('rss_after_start_mb', '—')} / {gateway.get('peak_rss_mb', '—')}"
                 f" / {gateway.get('rss_after_run_mb', '—')} MB |")
    return lines


def _peer_lines(results: dict[str, Any]) -> list[str]:
    """Our gateway beside the peer on each query of the same run, and the ratios."""
    peer = results.get("peer") or {}
    rows = [(query, results["scenarios"].get(f"ours_{query}"), peer.get(query))
            for query in PEER_TITLES]
    if not any(ours and theirs for _, ours, theirs in rows):
        return []
    lines = ["", f"| Query, at {PEER_CONNECTIONS} connections (ours and the peer, Hive Gateway "
             "over a Mesh composition, in this run) | ours req/s | peer req/s | ours CPU µs "
             "per request | peer CPU µs per request | ours / peer CPU | ours / peer req/s | "
             "our service calls per query |", "|---|---|---|---|---|---|---|---|"]
    for query, ours, theirs in rows:
        if not (ours and theirs):
            continue
        ratios = ours.get("versus_peer", {})
        lines.append(
            f"| {PEER_TITLES[query]} | {ours['requests_per_s']:,.0f} | "
            f"{theirs['requests_per_s']:,.0f} | {_number(ours.get('cpu_us_per_request'), 0)} | "
            f"{_number(theirs.get('cpu_us_per_request'), 0)} | "
            f"{_number(ratios.get('cpu_ratio'))} | {_number(ratios.get('rate_ratio'))} | "
            f"{_number(ours.get('service_calls_per_query'), 1)} |")
    return lines


def update_docs(results: dict[str, Any], path: Path = DOCS) -> None:
    """Replace the generated block in ``path``, keeping the hand-written text around it."""
    block = render(results)
    text = path.read_text() if path.exists() else "# Performance\n\n" + BEGIN + "\n" + END + "\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
