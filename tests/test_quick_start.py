"""The README's quick start, for real: `make run`'s script, a development token, a goal, its
CloudEvent on NATS, another person refused, Ctrl-C, and a second start."""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.processes import free_port

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
PROCFILE = REPO / "deploy" / "local" / "Procfile"


def procfile_modules() -> list[str]:
    return sorted(set(re.findall(r"recovery\.[a-z_]+\.main", PROCFILE.read_text())))


def http_status(url: str, headers: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (or a POST with ``body``); 0 when nothing answers."""
    try:
        if body is None:
            response = httpx.get(url, headers=headers, timeout=5)
        else:
            response = httpx.post(url, headers=headers, json=body, timeout=5)
    except httpx.TransportError:
        return 0, b""
    return response.status_code, response.content


def port_is_listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalRun:
    """`deploy/local/run.sh` in a scratch copy of the repository's local set-up, on free
    ports, so it never touches the developer's own `var/` or a `make run` already going."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "deploy").mkdir(parents=True)
        shutil.copytree(REPO / "deploy" / "local", root / "deploy" / "local")
        (root / ".venv").symlink_to(VENV)
        # Every port variable the Procfile reads (NATS_PORT, GOALS_PORT, ...), each free.
        names = sorted(set(re.findall(r"\$\{([A-Z_]+_PORT):-\d+\}", PROCFILE.read_text())))
        self.ports = {name: free_port() for name in names}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "run.log"

    @property
    def goals_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['GOALS_PORT']}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['NATS_PORT']}"

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("RECOVERY_")}
        env.update({key: str(value) for key, value in self.ports.items()})
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(self.root / "deploy" / "local" / "run.sh")], cwd=self.root,
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.output()
            services = [port for name, port in self.ports.items()
                        if not name.startswith("NATS_")]
            if all(http_status(f"http://127.0.0.1:{port}/readyz")[0] == 200
                   for port in services):
                return
            time.sleep(0.25)
        raise AssertionError(f"services not ready in {timeout}s:\n{self.output()}")

    def press_ctrl_c(self, timeout: float = 20.0) -> int:
        """Send SIGINT to the whole foreground group, as a terminal does on Ctrl-C."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def output(self) -> str:
        """What went wrong first (a process that stopped by itself, errors), then the end."""
        text = self.log.read_text(errors="replace")
        telling = [line for line in text.splitlines()
                   if re.search(r"stopped \(rc=(?!-15\))|exited|Traceback|Error|\"error\"",
                                line) and "nats_" not in line]
        return "\n".join(["first signs of trouble:", *telling[:40], "the end of the log:",
                          text[-3000:]])


@pytest.fixture
def local_run(tmp_path: Path) -> Iterator[LocalRun]:
    run = LocalRun(tmp_path / "repo")
    yield run
    run.kill()


def test_procfile_names_every_service_with_its_contract() -> None:
    import importlib

    modules = procfile_modules()
    assert "recovery.goals.main" in modules
    for name in modules:
        module = importlib.import_module(name)
        assert isinstance(module.SERVICE, str)
        assert (Path(module.MIGRATIONS_DIR) / "env.py").exists()
        assert callable(module.create_app)


def test_make_token_prints_only_a_signed_token(tmp_path: Path) -> None:
    completed = subprocess.run(
        ["make", "-s", "--no-print-directory", "token", "ROLE=service_user", "SUB=su-1",
         "PATIENT=su-1"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    lines = completed.stdout.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", lines[0])
    import jwt

    claims = jwt.decode(lines[0], options={"verify_signature": False})
    assert claims["sub"] == "su-1"
    assert claims["patient"] == "su-1"
    assert claims["roles"] == ["service_user"]


def project_distributions() -> list[str]:
    """The names of the kit, every service and the gateway, from their pyproject.toml."""
    import tomllib

    paths = [REPO / "libs" / "common" / "pyproject.toml",
             *sorted((REPO / "services").glob("*/pyproject.toml")),
             *sorted(REPO.glob("gateway/pyproject.toml"))]
    return [tomllib.loads(path.read_text())["project"]["name"] for path in paths]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_package_the_project_needs_is_pinned_by_the_lock() -> None:
    from importlib import metadata

    from packaging.requirements import Requirement

    lock = {canonical(line.split("==")[0])
            for line in (REPO / "requirements" / "lock.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    wanted = [Requirement(line) for line in (REPO / "requirements" / "dev.txt").read_text()
              .splitlines() if line.strip() and not line.startswith("#")]
    wanted += [Requirement(name) for name in project_distributions()]
    needed: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonical(requirement.name)
        if name in needed:
            continue
        needed.add(name)
        for extra_or_plain in metadata.requires(requirement.name) or []:
            dependency = Requirement(extra_or_plain)
            markers = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(m) for m in markers):
                wanted.append(dependency)
    project_packages = {name for name in needed if name.startswith("recovery-")}
    assert needed - project_packages - lock == set()


@pytest.mark.integration
@pytest.mark.slow
async def test_quick_start_creates_a_goal_announces_it_and_stops_on_ctrl_c(
        local_run: LocalRun) -> None:
    local_run.start()
    await asyncio.to_thread(local_run.wait_ready)
    issuer = DevIssuer(local_run.root / "var" / "dev-issuer")
    clinician = issuer.mint(role="clinician", sub="staff-1", teams=["team-a"])
    someone_else = issuer.mint(role="service_user", sub="su-2", patient="su-2")

    client = await nats.connect(local_run.nats_url)
    try:
        received: asyncio.Queue[Any] = asyncio.Queue()
        await client.subscribe("recovery.goals.>", cb=received.put)
        await client.flush()
        words = "Get back to work as a carpenter"
        status, body = await asyncio.to_thread(
            http_status, local_run.goals_url + "/v1/goals",
            {"Authorization": f"Bearer {clinician}"},
            {"service_user_id": "su-1", "team_id": "team-a", "description": words})
        assert status == 201, body
        goal = json.loads(body)
        message = await asyncio.wait_for(received.get(), timeout=1.0)
    finally:
        await client.close()

    event = json.loads(message.data)
    assert event["specversion"] == "1.0"
    assert event["type"] == message.subject
    assert re.fullmatch(r"recovery\.goals\.goal\.[a-z-]+", event["type"])
    assert event["subject"] == goal["id"]
    assert words not in message.data.decode()

    status, _ = await asyncio.to_thread(
        http_status, f"{local_run.goals_url}/v1/goals/{goal['id']}",
        {"Authorization": f"Bearer {someone_else}"})
    assert status in {403, 404}

    assert await asyncio.to_thread(local_run.press_ctrl_c) == 0, local_run.output()
    for port in local_run.ports.values():
        assert not port_is_listening(port), f"port {port} still open after Ctrl-C"

    # A second run straight after the first finds nothing in its way, and the goal is kept.
    local_run.start()
    await asyncio.to_thread(local_run.wait_ready)
    status, _ = await asyncio.to_thread(
        http_status, f"{local_run.goals_url}/v1/goals/{goal['id']}",
        {"Authorization": f"Bearer {clinician}"})
    assert status == 200
    assert await asyncio.to_thread(local_run.press_ctrl_c) == 0, local_run.output()


def test_readme_quick_start_names_only_make_targets_that_exist() -> None:
    readme = (REPO / "README.md").read_text()
    for command in ("make run", "make -s token ROLE=clinician SUB=staff-1 TEAMS=team-a",
                    "make -s token ROLE=service_user SUB=su-1 PATIENT=su-1", "make test"):
        assert command in readme
    # Commands only: at the start of a line, in `code`, or in $(...), not "make" in prose.
    targets = set(re.findall(r"(?:^|`|\$\()make (?:-s )?([a-z][a-z-]*)", readme, re.MULTILINE))
    assert {"run", "token", "test", "lint", "bench"} <= targets
    for target in sorted(targets):
        dry_run = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=REPO,
                                 capture_output=True, text=True, timeout=60)
        assert dry_run.returncode == 0, (target, dry_run.stderr)
