"""The processes under test: the goals service started as `make run` starts it, the
baseline under the same server settings, and a sampler of their memory."""

import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from bench.cpus import pinned

REPO = Path(__file__).resolve().parent.parent
PROCFILE = REPO / "deploy" / "local" / "Procfile"
SERVICE = "goals"
# Used only while deploy/local/Procfile has no goals line.
FALLBACK_COMMAND = ("uvicorn --factory recovery.goals.main:create_app --host 127.0.0.1 "
                    "--port $PORT --no-access-log --loop uvloop --http httptools")
_PR_SET_PDEATHSIG = 1
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def procfile_command(service: str = SERVICE, procfile: Path = PROCFILE) -> tuple[str, str]:
    """The command line `make run` uses for ``service``, and where it came from."""
    if procfile.exists():
        for line in procfile.read_text().splitlines():
            name, _, command = line.partition(":")
            if name.strip() == service and command.strip():
                return command.strip(), str(procfile.relative_to(REPO))
    return FALLBACK_COMMAND, "fallback (no goals line in deploy/local/Procfile)"


def server_argv(command: str, port: int) -> tuple[list[str], dict[str, str]]:
    """Turn a Procfile command into argv and environment for one port.

    Keeps only the last ``&&`` segment (the server itself), takes leading ``VAR=value``
    assignments as environment, and points ``--host``/``--port`` at loopback and ``port``.
    """
    command = command.split("&&")[-1].strip()
    words = shlex.split(command)
    env: dict[str, str] = {}
    while words and (words[0] in {"exec", "env"} or _ASSIGNMENT.match(words[0])):
        word = words.pop(0)
        if "=" in word:
            key, _, value = word.partition("=")
            env[key] = value
    argv: list[str] = []
    skip = False
    for index, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word in {"--port", "--host"} and index + 1 < len(words):
            skip = True
            continue
        if word.startswith(("--port=", "--host=")):
            continue
        argv.append(word.replace("${PORT}", str(port)).replace("$PORT", str(port)))
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    argv[0] = _resolve_executable(argv[0])
    return argv, env


def _resolve_executable(name: str) -> str:
    if "/" in name:
        path = (REPO / name) if not os.path.isabs(name) else Path(name)
        return str(path)
    beside_python = Path(sys.executable).parent / name
    return str(beside_python) if beside_python.exists() else name


def _server_child(cpus: set[int]) -> Callable[[], None]:
    """Pin the child, and have the kernel stop it should the harness die without cleaning
    up, so no server outlives a killed run."""
    pin = pinned(cpus)

    def setup() -> None:
        pin()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


class ServerProcess:
    """One HTTP server process, pinned to the server core, its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 cpus: set[int], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.cpus = cpus
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_path: str, timeout_s: float = 60.0) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=_server_child(self.cpus))
        log.close()
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                answer = httpx.get(self.base_url + ready_path, timeout=2)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:300]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s: {last}\n{self.log_tail()}")

    def rss_bytes(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop as Ctrl-C under `make run` would, and wait; kill only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _run_queue_wait_s(pid: int) -> float:
    """Time the process's main thread (the event loop) spent runnable but waiting for a core:
    on a shared machine, the part of the latency that other programs caused."""
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class RssSampler:
    """Samples a process's resident memory in the background; peaks per phase and overall.
    Each phase also records the process's CPU use and how long it waited for its core."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self._pid = pid
        self._process = psutil.Process(pid)
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = 0
        self._phase_peak = 0

    def _sample(self) -> None:
        try:
            rss = int(self._process.memory_info().rss)
        except psutil.Error:
            return
        self.peak = max(self.peak, rss)
        self._phase_peak = max(self._phase_peak, rss)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self._sample()

    def start(self) -> "RssSampler":
        self._sample()
        self._thread.start()
        return self

    def _cpu_s(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    @contextmanager
    def phase(self) -> Iterator[dict[str, float]]:
        """Yields a dict that holds the phase's ``peak_rss_mb``, ``cpu_share`` (cores busy)
        and ``run_queue_wait_share`` once the block ends."""
        self._phase_peak = 0
        self._sample()
        started, cpu, waited = time.perf_counter(), self._cpu_s(), _run_queue_wait_s(self._pid)
        figures: dict[str, float] = {}
        try:
            yield figures
        finally:
            self._sample()
            wall = max(time.perf_counter() - started, 1e-9)
            figures["peak_rss_mb"] = round(self._phase_peak / 2**20, 1)
            figures["cpu_share"] = round((self._cpu_s() - cpu) / wall, 3)
            figures["run_queue_wait_share"] = round(
                (_run_queue_wait_s(self._pid) - waited) / wall, 3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
