"""The load generator: wrk (compiled, epoll) driven by a Lua plan, on the cores the server
does not use. A Python client would saturate long before the server does."""

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.cpus import pinned

PLAN_SCRIPT = Path(__file__).parent / "wrk" / "plan.lua"


class WrkUnavailableError(RuntimeError):
    pass


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package when running as root and it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise WrkUnavailableError(
            "the benchmark needs wrk: install it with `sudo apt-get install -y wrk`")
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": False}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    attempt = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, **quiet)  # type: ignore[call-overload]
    if attempt.returncode != 0:
        # A fresh machine may not have package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, **quiet)  # type: ignore[call-overload]
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, **quiet)  # type: ignore[call-overload]
    found = shutil.which("wrk")
    if not found:
        raise WrkUnavailableError("could not install wrk with apt-get; install it by hand")
    return found


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str = ""


@dataclass(frozen=True)
class LoadResult:
    """What wrk measured over one run; latencies in milliseconds."""

    requests: int
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    # wrk's own CPU time over the run's wall time, in cores: far below its cores' count
    # means the load generator was not what limited the rate.
    load_generator_cpu: float = 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "errors": self.errors,
            "latency_ms": {"p50": self.p50_ms, "p90": self.p90_ms, "p99": self.p99_ms,
                           "p999": self.p999_ms, "max": self.max_ms, "mean": self.mean_ms},
            "load_generator_cpu": self.load_generator_cpu,
        }


def write_plan(directory: Path, requests: Sequence[Request], headers: dict[str, str]) -> Path:
    for request in requests:
        if "\t" in request.body or "\n" in request.body:
            raise ValueError("plan bodies are single-line JSON without tabs")
    lines = [f"HEADER\t{name}: {value}" for name, value in headers.items()]
    lines += [f"REQUEST\t{r.method}\t{r.path}\t{r.body}" for r in requests]
    handle, name = tempfile.mkstemp(prefix="plan-", suffix=".txt", dir=directory)
    with os.fdopen(handle, "w") as plan:
        plan.write("\n".join(lines) + "\n")
    return Path(name)


def run_wrk(base_url: str, plan: Path, *, connections: int, duration_s: float,
            cpus: set[int], timeout_s: float = 10.0) -> LoadResult:
    """Run wrk once against ``base_url`` with the plan's requests; one thread per load core."""
    threads = max(1, min(len(cpus), connections))
    command = [ensure_wrk(), "-t", str(threads), "-c", str(connections),
               "-d", f"{max(1, round(duration_s))}s", "--timeout", f"{round(timeout_s)}s",
               "-s", str(PLAN_SCRIPT), base_url, "--", str(plan)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=False,
                              preexec_fn=pinned(cpus), timeout=duration_s + timeout_s + 30)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall
    for line in finished.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            raw = json.loads(line.removeprefix("WRK_RESULT "))
            break
    else:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}"
                           f" {finished.stdout.strip()[-500:]}")
    latency = raw["latency_us"]
    return LoadResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        errors=raw["errors"],
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        p999_ms=latency["p999"] / 1000,
        max_ms=latency["max"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        load_generator_cpu=round(wrk_cpu, 3),
    )
