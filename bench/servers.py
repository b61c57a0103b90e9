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
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from bench.cpus import pinned
from recovery.common.testing.processes import (
    NatsServer,
    PostgresServer,
    free_port,
    postgres_binaries,
)

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


def _stolen_s() -> float:
    """Time the hypervisor ran something else on the machine's cores, summed over them
    (``steal`` in ``/proc/stat``): pauses no process here can see or cause."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
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
        """Yields a dict that holds the phase's ``peak_rss_mb``, ``cpu_share`` (cores busy),
        ``run_queue_wait_share`` and ``stolen_share`` (of the machine's core time, taken by
        the hypervisor) once the block ends."""
        self._phase_peak = 0
        self._sample()
        started, cpu, waited = time.perf_counter(), self._cpu_s(), _run_queue_wait_s(self._pid)
        stolen = _stolen_s()
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
            figures["stolen_share"] = round(
                (_stolen_s() - stolen) / (wall * (os.cpu_count() or 1)), 3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class PostgresUnavailableError(RuntimeError):
    pass


def start_postgres() -> PostgresServer:
    """The run's own PostgreSQL cluster, from the machine's server binaries, set up as the
    tests set it up (the kit's ``PostgresServer``)."""
    bin_dir = postgres_binaries()
    if bin_dir is None:
        raise PostgresUnavailableError(
            "the benchmark runs the services on PostgreSQL and needs its server binaries "
            "(initdb, pg_ctl): install Debian's postgresql package")
    server = PostgresServer(bin_dir)
    server.start()
    return server


def postgres_version(server: PostgresServer) -> str:
    """``PostgreSQL 15.18``, say, from ``postgres --version``."""
    finished = subprocess.run([str(server.bin_dir / "postgres"), "--version"],
                              capture_output=True, text=True, check=False)
    words = finished.stdout.replace("(PostgreSQL)", "PostgreSQL").split()
    return " ".join(words[1:3]) if len(words) >= 3 else "PostgreSQL"


def asyncpg_dsn(database_url: str) -> str:
    """The DSN asyncpg itself takes for a SQLAlchemy ``postgresql+asyncpg`` URL."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def service_environment(workdir: Path, database_url: str, nats_url: str,
                        extra: dict[str, str], service: str = SERVICE) -> dict[str, str]:
    """The environment `make run` gives ``service``, pointed at this run's database and NATS."""
    # The caller's own RECOVERY_* settings must not leak into the run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
    env.update(extra)
    env.update({
        "RECOVERY_SERVICE": service,
        "RECOVERY_ENVIRONMENT": "development",
        "RECOVERY_DATABASE_URL": database_url,
        "RECOVERY_NATS_URL": nats_url,
        "RECOVERY_JWKS_FILE": str(workdir / "dev-issuer" / "jwks.json"),
    })
    return env


def migrate(env: dict[str, str], service: str = SERVICE) -> None:
    """Apply ``service``'s migrations as `make run` does, in a process of their own."""
    package = service.replace("-", "_")
    finished = subprocess.run(
        [sys.executable, "-m", "recovery.common.migrate", f"recovery.{package}.main"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"migrations failed:\n{finished.stdout}\n{finished.stderr}")


class ServiceUnderTest:
    """One service for its scenarios: a NATS server (its own unless ``nats`` is shared) and a
    fresh PostgreSQL database on the run's cluster, migrated when the service has
    migrations, and its process started with its `make run` command line (or ``command``),
    pinned to ``cpus`` (the server core by default); ``environment`` is set over `make run`'s.

    ``results[key]`` gets the argv, the RSS at ``sample_memory()`` and, when the scenarios
    finish, the RSS after the run and the peak; a failure prints the end of its log.
    """

    def __init__(self, bench: Any, results: dict[str, Any], service: str, *,
                 nats: NatsServer | None = None, folder: Path | None = None,
                 cpus: set[int] | None = None, environment: dict[str, str] | None = None,
                 has_migrations: bool = True, command: str | None = None) -> None:
        self.name = service
        self.key = f"{service.replace('-', '_')}_service"
        workdir: Path = bench.workdir
        folder = folder or workdir
        if command is None:
            command, source = procfile_command(service)
        else:
            source = "the command given"
        self._own_nats = nats is None
        self.nats = nats or NatsServer(store_dir=folder / f"nats-{service}")
        self.database_url: str = bench.database(service)
        self.has_migrations = has_migrations
        port = free_port()
        argv, extra = server_argv(command, port)
        self.env = service_environment(workdir, self.database_url, self.nats.url, extra,
                                       service)
        self.env.update(environment or {})
        self.process = ServerProcess(service, argv, self.env, port, cpus or bench.cpus.server,
                                     folder / f"{service}.log")
        self.record: dict[str, Any] = {"argv": argv, "command_source": source}
        results[self.key] = self.record
        self.sampler: RssSampler | None = None

    def sample_memory(self) -> RssSampler:
        """Start sampling the service's memory (after any seeding that should not count)."""
        self.sampler = RssSampler(self.process.pid).start()
        self.record["rss_after_start_mb"] = round(self.process.rss_bytes() / 2**20, 1)
        return self.sampler

    def __enter__(self) -> "ServiceUnderTest":
        from bench.run import say

        try:
            if self._own_nats:
                self.nats.start()
            if self.has_migrations:
                migrate(self.env, self.name)
            self.process.start("/readyz")
        except BaseException:
            self._stop()
            raise
        say(f"{self.name} service ready on port {self.process.port} (pid {self.process.pid})")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: object) -> None:
        from bench.run import say

        try:
            if error is not None:
                say(f"the {self.name} service's log ends with:\n" + self.process.log_tail(15))
            elif self.sampler is not None:
                self.record["rss_after_run_mb"] = round(self.process.rss_bytes() / 2**20, 1)
                self.record["peak_rss_mb"] = round(self.sampler.peak / 2**20, 1)
                say(f"{self.name} RSS after the run {self.record['rss_after_run_mb']} MB")
        finally:
            if self.sampler is not None:
                self.sampler.stop()
            self._stop()

    def _stop(self) -> None:
        self.process.stop()
        if self._own_nats:
            self.nats.stop()
