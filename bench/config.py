"""How big and how long each benchmark run is, and the targets the issue sets."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes and durations of one run; ``full`` fits a 2-core machine in about ten minutes."""

    name: str
    duration_s: float
    warmup_s: float
    connections: int
    goals_to_read: int
    relay_events: int
    latency_rate_per_s: int
    latency_duration_s: float


FULL = Scale(name="full", duration_s=10, warmup_s=2, connections=32, goals_to_read=200,
             relay_events=20_000, latency_rate_per_s=200, latency_duration_s=10)
QUICK = Scale(name="quick", duration_s=3, warmup_s=1, connections=32, goals_to_read=50,
              relay_events=5_000, latency_rate_per_s=200, latency_duration_s=3)
# Only proves the plumbing (used by the harness's own test); its figures mean nothing.
TINY = Scale(name="tiny", duration_s=1, warmup_s=0, connections=4, goals_to_read=5,
             relay_events=200, latency_rate_per_s=50, latency_duration_s=1)

SCALES = {scale.name: scale for scale in (FULL, QUICK, TINY)}


@dataclass(frozen=True)
class Target:
    """One target of the issue: ``measured`` is compared with ``bound``. A target with a
    ``scenario`` is measured there and shown beside the baseline's run of the same scenario:
    a ``_ratio`` target divides the two req/s, a latency target takes the scenario's p99."""

    key: str
    description: str
    bound: float
    unit: str
    higher_is_better: bool
    scenario: str | None = None
    #: The part of a run that measures it, when only that part does (``--only``).
    part: str | None = None

    def met_by(self, measured: float) -> bool:
        return measured >= self.bound if self.higher_is_better else measured <= self.bound


#: One uvicorn worker on one core, 32 connections, PostgreSQL; the baseline is a bare
#: Starlette app doing the scenario's database work with asyncpg (bench/baseline.py).
TARGETS = [
    Target("get_ratio", "GET a goal by id: req/s vs baseline", 0.35, "x", True, "get_goal"),
    Target("get_p99_ms", "GET a goal by id: p99 at 32 connections", 20.0, "ms", False,
           "get_goal"),
    Target("crisis_get_active_ratio", "GET the active crisis plan: req/s vs baseline", 0.35,
           "x", True, "get_active_plan"),
    Target("crisis_get_active_p99_ms", "GET the active crisis plan: p99 at 32 connections",
           20.0, "ms", False, "get_active_plan"),
    Target("post_ratio", "POST a goal: req/s vs baseline", 0.25, "x", True, "post_goal"),
    Target("crisis_sign_ratio", "Sign a crisis plan version: req/s vs baseline", 0.20, "x",
           True, "sign_version"),
    Target("workforce_log_contact_ratio", "Log a care contact: req/s vs baseline", 0.25, "x",
           True, "log_care_contact"),
    Target("relay_events_per_s", "Outbox relay into JetStream", 5_000, "events/s", True),
    Target("relay_latency_p99_ms", "Commit-to-consumer latency p99 at 200 creates/s", 50.0,
           "ms", False),
    Target("rss_after_mb", "Goals service RSS after the run", 150.0, "MB", False),
    Target("crisis_rss_after_mb", "Crisis-plans service RSS after the run", 150.0, "MB", False),
    Target("risk_rss_after_mb", "Risk service RSS after the run", 150.0, "MB", False),
    Target("training_rss_after_mb", "Training service RSS after the run", 150.0, "MB", False),
    Target("workforce_rss_after_mb", "Workforce service RSS after the run", 150.0, "MB", False),
]
#: Our gateway against the peer (Hive Gateway over a Mesh composition; bench/peer.py) on
#: each query: CPU time per request ours over the peer's, and requests per second.
PEER_QUERIES = {"goals": "a person's 20 goals",
                "goals_and_plans": "their goals and crisis plans",
                "caseload": "a caseload of 20 people"}
TARGETS += [target for query, title in PEER_QUERIES.items() for target in (
    Target(f"peer_{query}_cpu", f"Gateway, {title}: CPU per request vs the peer's", 1.0, "x",
           False, part="peer"),
    Target(f"peer_{query}_rate", f"Gateway, {title}: req/s vs the peer's", 1.0, "x", True,
           part="peer"))]
