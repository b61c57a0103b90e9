"""Keeps `make bench` from rotting: its plumbing end to end at a tiny scale on PostgreSQL, and
the pieces that turn a Procfile line, wrk's output and a run's figures into what the docs
show. No timing is asserted: figures on a shared test machine mean nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.config import TARGETS, Target
from bench.report import BEGIN, END, render, update_docs
from bench.run import PARTS, page_length
from bench.servers import PROCFILE, REPO, asyncpg_dsn, procfile_command, server_argv
from recovery.common.testing.plugin import running_in_ci
from recovery.common.testing.processes import postgres_binaries


def test_the_goals_line_of_the_procfile_becomes_a_loopback_server_on_the_chosen_port() -> None:
    command, source = procfile_command()
    argv, _ = server_argv(command, 43210)
    assert source == str(PROCFILE.relative_to(REPO))
    assert "recovery.goals.main:create_app" in argv
    assert argv[argv.index("--port") + 1] == "43210"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv.count("--port") == 1 and argv.count("--host") == 1
    assert Path(argv[0]).name == "uvicorn"


def test_environment_assignments_and_earlier_steps_of_a_procfile_line_are_understood() -> None:
    argv, env = server_argv(
        "python -m recovery.common.migrate x && RECOVERY_LOG_LEVEL=WARNING exec uvicorn "
        "--factory app:create --port=${PORT} --workers 1", 8123)
    assert env == {"RECOVERY_LOG_LEVEL": "WARNING"}
    assert argv[1:] == ["--factory", "app:create", "--workers", "1", "--host", "127.0.0.1",
                        "--port", "8123"]


@pytest.mark.parametrize("body", [[{}] * 3, {"items": [{}] * 3, "next_cursor": None},
                                  {"data": [{}] * 3}])
def test_a_list_page_is_counted_whatever_its_envelope_calls_the_records(body: Any) -> None:
    assert page_length(body) == 3


@pytest.mark.parametrize(("target", "measured", "met"), [
    (Target("a", "more is better", 0.3, "x", True), 0.31, True),
    (Target("a", "more is better", 0.3, "x", True), 0.29, False),
    (Target("b", "less is better", 25.0, "ms", False), 25.0, True),
    (Target("b", "less is better", 25.0, "ms", False), 25.1, False),
])
def test_a_target_is_met_only_on_its_own_side_of_the_bound(target: Target, measured: float,
                                                           met: bool) -> None:
    assert target.met_by(measured) is met


def test_the_baseline_connects_with_asyncpg_to_the_database_the_service_uses() -> None:
    assert (asyncpg_dsn("postgresql+asyncpg://recovery@127.0.0.1:5433/goals_1")
            == "postgresql://recovery@127.0.0.1:5433/goals_1")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One whole run at the tiny scale on PostgreSQL: services, baselines, gateway, NATS, wrk,
    seeding, relay; the peer (npm packages `make peer` installs) has its own test."""
    if postgres_binaries() is None:
        if running_in_ci():
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are required in CI; "
                        "install Debian's postgresql package")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on this machine; "
                    "install Debian's postgresql package to run the benchmark's own test")
    results_dir = tmp_path_factory.mktemp("bench-results")
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "tiny", "--results-dir", str(results_dir),
         "--no-docs", "--only", ",".join(part for part in PARTS if part != "peer")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")})
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    [written] = list(results_dir.glob("*-tiny.json"))
    results: dict[str, Any] = json.loads(written.read_text())
    return results


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_measures_every_scenario_and_its_baseline_without_a_failed_request(
        tiny_run: dict[str, Any]) -> None:
    assert "aborted" not in tiny_run
    assert tiny_run["failures"] == []
    for name in ("healthz", "get_goal", "post_goal", "get_active_plan", "sign_version",
                 "log_care_contact"):
        for figures in (tiny_run["scenarios"][name], tiny_run["baseline"][name]):
            assert figures["requests"] > 0, name
            assert sum(figures["errors"].values()) == 0, name
            assert figures["peak_rss_mb"] > 0, name
    assert tiny_run["machine"]["database"].startswith("PostgreSQL")


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_measures_the_gateway_beside_the_direct_calls_for_the_same_data(
        tiny_run: dict[str, Any]) -> None:
    for name in ("direct_goals", "direct_active_plan", "direct_risk", "gateway_service_user",
                 "gateway_floor", "direct_courses", "gateway_prospectus", "gateway_team_200"):
        figures = tiny_run["scenarios"][name]
        assert figures["requests"] > 0, name
        assert sum(figures["errors"].values()) == 0, name
    team = tiny_run["scenarios"]["gateway_team_200"]
    # A bigger team costs no more service calls than a team of 2.
    assert team["service_calls_per_query"] == team["service_calls_per_query_team_of_2"] > 0
    assert tiny_run["scenarios"]["gateway_subscription"]["events"] == 5
    assert tiny_run["gateway_service"]["rss_after_run_mb"] > 0


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_sees_every_committed_change_arrive_as_one_event(
        tiny_run: dict[str, Any]) -> None:
    for key in ("relay_latency", "relay_latency_light"):
        latency = tiny_run["scenarios"][key]
        assert latency["changes_committed"] == latency["changes"] > 0, key
        assert latency["events_received"] == latency["changes_committed"], key
    relay = tiny_run["scenarios"]["relay_throughput"]
    assert relay["events"] == 201 and relay["events_per_s"] > 0


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_gives_a_figure_for_every_target_and_renders_it_into_the_docs(
        tiny_run: dict[str, Any], tmp_path: Path) -> None:
    assert [t["key"] for t in tiny_run["targets"]] == [t.key for t in TARGETS]
    assert all(t["measured"] is not None for t in tiny_run["targets"]
               if t["part"] is None or t["part"] in tiny_run["parts"])
    # Every target measured in a scenario stands beside the baseline's run of it.
    assert all(t["ours"] is not None and t["baseline"] is not None
               for t in tiny_run["targets"] if t["scenario"])
    docs = tmp_path / "performance.md"
    docs.write_text(f"# Performance\n\nWritten by hand.\n\n{BEGIN}\nold figures\n{END}\n\n"
                    "## Analysis\nAlso by hand.\n")
    update_docs(tiny_run, docs)
    text = docs.read_text()
    assert "Written by hand." in text and "## Analysis\nAlso by hand." in text
    assert "old figures" not in text
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    for target in TARGETS:
        assert target.description in text
    assert render(tiny_run) in text
