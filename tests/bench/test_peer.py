"""The bench's peer: pinned as committed, composed of every service, asked for the same data
as our gateway; and, where `make peer` has installed it, one tiny run of both gateways. No
timing is asserted."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graphql import FieldNode, build_schema, parse, validate, visit
from graphql.language import Visitor

from bench.config import PEER_QUERIES, TARGETS
from bench.peer import OURS, PEER_SOURCE, TITLES, VARIANTS, peer_installed, peer_query
from bench.servers import REPO
from recovery.common.testing.plugin import running_in_ci
from recovery.common.testing.processes import postgres_binaries
from recovery.gateway.schema import build_schema as gateway_schema
from recovery.gateway.settings import UPSTREAMS

PACKAGES = {"@graphql-hive/gateway", "@graphql-mesh/compose-cli", "@omnigraph/openapi"}
#: The peer's names for what ours calls by another: a plan's id in a batch read, and the
#: person a caseload entry is about.
PEER_NAMES = {"plan_id": "id", "service_user_id": "id"}


def leaves(query: str) -> set[str]:
    """The scalar fields a query selects, in the services' snake case."""
    found: set[str] = set()

    class Leaves(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.selection_set is None:
                name = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), node.name.value)
                found.add(PEER_NAMES.get(name, name))

    visit(parse(query), Leaves())
    return found


def test_the_peer_is_pinned_exactly_and_its_lock_names_no_registry_host() -> None:
    manifest = json.loads((PEER_SOURCE / "package.json").read_text())
    lock_text = (PEER_SOURCE / "package-lock.json").read_text()
    lock = json.loads(lock_text)
    assert set(manifest["dependencies"]) == PACKAGES
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in manifest["dependencies"].values())
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    assert all("resolved" not in entry for entry in lock["packages"].values())
    assert "registry" not in lock_text
    assert "omit-lockfile-registry-resolved=true" in (PEER_SOURCE / ".npmrc").read_text()


def test_the_peer_composes_every_service_our_gateway_calls_with_the_callers_token() -> None:
    config = (PEER_SOURCE / "mesh.config.ts").read_text()
    services = json.loads(re.search(r"SERVICES = (\[[^\]]*\])", config)
                          .group(1).replace("'", '"'))  # type: ignore[union-attr]
    assert services == list(UPSTREAMS)
    assert "Authorization: '{context.headers.authorization}'" in config


def test_both_gateways_are_asked_for_the_same_data_in_every_query() -> None:
    assert set(OURS) == set(TITLES) == set(PEER_QUERIES)
    for query in OURS:
        asked = {peer_query(query, variant) for variant in range(VARIANTS)}
        # Every variant is another request (another person, or the caseload in another
        # order) asking for the same fields.
        assert len(asked) == VARIANTS, query
        assert all(leaves(OURS[query]) == leaves(text) for text in asked), query


def test_our_queries_are_valid_against_our_schema() -> None:
    schema = build_schema(gateway_schema().as_str())
    for query in OURS.values():
        assert validate(schema, parse(query)) == []


def test_each_query_has_a_cpu_and_a_throughput_target_against_the_peer() -> None:
    keys = {t.key for t in TARGETS if t.part == "peer"}
    assert keys == {f"peer_{q}_{kind}" for q in PEER_QUERIES for kind in ("cpu", "rate")}


@pytest.mark.slow
@pytest.mark.integration
def test_a_tiny_run_answers_every_query_through_both_gateways(tmp_path: Path) -> None:
    if not peer_installed():
        if running_in_ci():
            pytest.fail("the peer is required in CI: `make test` installs it (npm ci)")
        pytest.skip("the peer is not installed: `make peer` installs it into var/peer")
    if postgres_binaries() is None:
        if running_in_ci():
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are required in CI")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "tiny", "--only", "peer",
         "--results-dir", str(tmp_path), "--no-docs"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")})
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    [written] = list(tmp_path.glob("*-tiny.json"))
    results = json.loads(written.read_text())
    # Each query was checked to answer data without errors through both before it was
    # measured (a second at this scale may end before a slow query's first answer).
    assert "aborted" not in results and results["failures"] == []
    for query in PEER_QUERIES:
        for figures in (results["scenarios"][f"ours_{query}"], results["peer"][query]):
            assert sum(figures["errors"].values()) == 0, query
    assert {t["key"] for t in results["targets"] if t["part"] == "peer"} == {
        f"peer_{q}_{kind}" for q in PEER_QUERIES for kind in ("cpu", "rate")}
