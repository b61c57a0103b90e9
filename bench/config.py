"""How big and how long each benchmark run is, and the targets the issue sets."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes and durations of one run; ``full`` fits a 2-core machine in a few minutes."""

    name: str
    duration_s: float
    warmup_s: float
    connections: int
    goals_to_read: int
    list_small_table: int
    list_large_table: int
    relay_events: int
    latency_rate_per_s: int
    latency_duration_s: float


FULL = Scale(name="full", duration_s=10, warmup_s=2, connections=32, goals_to_read=200,
             list_small_table=1_000, list_large_table=100_000, relay_events=20_000,
             latency_rate_per_s=200, latency_duration_s=10)
QUICK = Scale(name="quick", duration_s=3, warmup_s=1, connections=32, goals_to_read=50,
              list_small_table=1_000, list_large_table=10_000, relay_events=5_000,
              latency_rate_per_s=200, latency_duration_s=3)
# Only proves the plumbing (used by the harness's own test); its figures mean nothing.
TINY = Scale(name="tiny", duration_s=1, warmup_s=0, connections=4, goals_to_read=5,
             list_small_table=150, list_large_table=300, relay_events=200,
             latency_rate_per_s=50, latency_duration_s=1)

SCALES = {scale.name: scale for scale in (FULL, QUICK, TINY)}


@dataclass(frozen=True)
class Target:
    """One line of the issue's section 5: ``measured`` is compared with ``bound``."""

    key: str
    description: str
    bound: float
    unit: str
    higher_is_better: bool

    def met_by(self, measured: float) -> bool:
        return measured >= self.bound if self.higher_is_better else measured <= self.bound


TARGETS = [
    Target("get_ratio", "GET a goal by id: req/s vs baseline", 0.30, "x", True),
    Target("get_p99_ms", "GET a goal by id: p99 at 32 connections", 25.0, "ms", False),
    Target("post_ratio", "POST a goal (with its outbox row): req/s vs baseline", 0.15, "x",
           True),
    Target("list_ratio", "List 100 goals: req/s vs baseline (large table)", 0.10, "x", True),
    Target("list_p50_growth", "List 100 goals: p50 large table / p50 1,000 goals", 1.5, "x",
           False),
    Target("relay_events_per_s", "Outbox relay into JetStream", 5_000, "events/s", True),
    Target("relay_latency_p50_ms", "Commit-to-consumer latency p50 at 200 events/s", 10.0, "ms",
           False),
    Target("relay_latency_p99_ms", "Commit-to-consumer latency p99 at 200 events/s", 50.0, "ms",
           False),
    Target("rss_after_mb", "Service RSS after the run", 150.0, "MB", False),
    Target("crisis_get_active_ratio", "GET the active crisis plan: req/s vs baseline", 0.25,
           "x", True),
    Target("crisis_get_active_p99_ms", "GET the active crisis plan: p99 at 32 connections",
           25.0, "ms", False),
    Target("crisis_sign_ratio", "Sign a crisis plan version: req/s vs baseline", 0.10, "x",
           True),
    Target("crisis_rss_after_mb", "Crisis-plans service RSS after the run", 150.0, "MB", False),
    Target("risk_rss_after_mb", "Risk service RSS after the run", 150.0, "MB", False),
    Target("training_rss_after_mb", "Training service RSS after the run", 150.0, "MB", False),
    Target("workforce_peer_share_p99_ms",
           "Peer share, team of 200 staff and 100,000 contacts: p99 at 32 connections", 50.0,
           "ms", False),
    Target("workforce_readiness_p99_ms",
           "Readiness, team of 200 staff and 100,000 contacts: p99 at 32 connections", 50.0,
           "ms", False),
    Target("workforce_log_contact_ratio", "Log a care contact: req/s vs baseline", 0.15, "x",
           True),
    Target("workforce_rss_after_mb", "Workforce service RSS after the run", 150.0, "MB", False),
    Target("gateway_service_user_share",
           "Gateway `serviceUser` (goals, active plan, co-assessments), p50 over "
           "1.5 \u00d7 the slowest direct call's p50 + 3 ms", 1.0, "x", False),
    Target("gateway_one_service_share",
           "Gateway `prospectus`: req/s over the direct `GET /v1/courses` req/s", 0.25, "x",
           True),
    Target("gateway_team_200_p99_ms", "Gateway team of 200 staff with training status: p99",
           100.0, "ms", False),
    Target("gateway_subscription_p99_ms", "Gateway subscription, commit to client: p99",
           100.0, "ms", False),
    Target("gateway_rss_after_mb", "Gateway RSS after the run", 200.0, "MB", False),
]
