"""Where a service spends its CPU during a scenario (``--profile``): py-spy samples the server
while wrk measures it, and the samples are summed by the package of the frame that was
running, for the report's "what limits it". py-spy is not a dependency of the platform;
install it into the virtual environment to profile (`.venv/bin/pip install py-spy`)."""

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: How often py-spy samples; enough for shares of a 10 s scenario, little cost to the server.
RATE_PER_S = 200
_FILE = re.compile(r"\(([^():]+):\d+\)$")


def py_spy() -> str | None:
    beside_python = Path(sys.executable).parent / "py-spy"
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


class Profile:
    """One py-spy recording of a process, started before a scenario and read after it."""

    def __init__(self, pid: int, duration_s: float, output: Path) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.output = output
        # Non-blocking: the server is not paused for each sample, so it runs at its pace.
        self.process = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))),
             "--rate", str(RATE_PER_S), "--format", "raw", "--nonblocking", "--full-filenames",
             "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def shares(self, top: int = 8) -> dict[str, float]:
        """Wait for the recording; the busiest packages' shares of the samples."""
        _, error = self.process.communicate(timeout=120)
        if self.process.returncode != 0 or not self.output.exists():
            raise RuntimeError(f"py-spy failed: {error.decode(errors='replace')[-500:]}")
        return package_shares(self.output.read_text(), top)


def package_of(frame: str) -> str:
    """The package a collapsed-stack frame (``function (path:line)``) runs in: the
    distribution under site-packages, the service's or kit's module, or the standard
    library's module."""
    found = _FILE.search(frame)
    if not found:
        return "other"
    path = found.group(1)
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/recovery/" in path:
        parts = path.split("/recovery/", 1)[1].split("/")
        return "recovery." + "/".join(parts[:2]).removesuffix(".py")
    return "python:" + Path(path).stem


def package_shares(collapsed: str, top: int = 8) -> dict[str, float]:
    """Shares of the samples by the package of the running (innermost) frame."""
    samples: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples[package_of(stack.rsplit(";", 1)[-1])] += int(count)
    total = sum(samples.values())
    if not total:
        return {}
    return {package: round(count / total, 3) for package, count in samples.most_common(top)}
