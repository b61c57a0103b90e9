"""Core pinning: the server under test on one core, everything else on the others."""

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuPlan:
    server: set[int]
    load: set[int]

    @property
    def isolated(self) -> bool:
        return not (self.server & self.load)

    def as_dict(self) -> dict[str, object]:
        return {"server": sorted(self.server), "load": sorted(self.load),
                "isolated": self.isolated}


def plan_cpus() -> CpuPlan:
    """The last allowed core for the server, the rest for the load generator and helpers."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        # One core: nothing to separate; the figures then include the load generator's cost.
        return CpuPlan(server=set(allowed), load=set(allowed))
    return CpuPlan(server={allowed[-1]}, load=set(allowed[:-1]))


def raise_priority(niceness: int = -10) -> int:
    """Give this process (and so every child: servers, NATS, wrk) priority over other work
    on a shared machine, where allowed; returns the niceness in force."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    return os.getpriority(os.PRIO_PROCESS, 0)


def pinned(cpus: set[int]) -> Callable[[], None]:
    """A ``preexec_fn`` that pins the child before it execs, so its start-up is pinned too."""

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin
