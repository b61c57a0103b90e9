"""Schemathesis over a service's OpenAPI against the app served by one uvicorn server for the
whole module (one lifespan, as in production).

Schemathesis's own ASGI client starts and stops the app's lifespan around every operation, in
a new event loop each time, which is not how a service is ever run and now and then hung on
shutdown; a real server on a free port cannot.
"""

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from recovery.common.dev_issuer import DevIssuer
from recovery.common.migrations import upgrade_to_head
from recovery.common.settings import Settings
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.common.testing.processes import free_port

# Not negative_data_rejection: generated ids in paths are replaced by real ones, and unknown
# query parameters and headers are ignored, as HTTP servers do; unknown body fields are
# refused, which each service's bad-input tests check operation by operation.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


def fuzz_settings(max_examples: int = 15) -> Callable[[Any], Any]:
    """Hypothesis settings for a generated test: repeatable, no deadline, no example store."""
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def aim_path(case: Any, values: dict[str, str]) -> None:
    """Name real records in the case's path, and any version in If-Match, so generated
    bodies are judged by the domain code, not by a 404 or the ETag."""
    parameters = case.path_parameters
    if parameters:
        for name in parameters:
            if name in values:
                parameters[name] = values[name]
    if case.headers and "If-Match" in case.headers:
        case.headers["If-Match"] = "*"


@dataclass
class Served:
    """The running server: its address, a client of it and tokens its JWKS accepts."""

    base_url: str
    client: httpx.Client
    tokens: TokenFactory


class FuzzedService:
    """One service app for a fuzzing module, built when the module is imported (schemathesis
    reads the schema at collection), on SQLite in a temporary directory."""

    def __init__(self, service: str, create_app: Callable[[Settings], FastAPI],
                 migrations_dir: Path) -> None:
        directory = Path(tempfile.mkdtemp(prefix=f"{service}-fuzz-"))
        atexit.register(shutil.rmtree, directory, True)  # also when the test is deselected
        self.name = service
        self.migrations_dir = migrations_dir
        self.issuer = DevIssuer(directory / "issuer")
        self.settings = make_settings(
            service, database_url=f"sqlite+aiosqlite:///{directory}/{service}.db",
            jwks_file=self.issuer.jwks_path)
        self.app = create_app(self.settings)
        self.schema = schemathesis.openapi.from_dict(self.app.openapi())
        self.base_url = ""

    @contextmanager
    def serve(self, startup_timeout: float = 30) -> Iterator[Served]:
        """Migrate, start uvicorn in a thread, and stop it (bounded) at the end."""
        self.issuer.ensure_keys()
        upgrade_to_head(self.migrations_dir, self.settings.database_url)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, name=f"{self.name}-fuzz-server",
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=self.base_url, timeout=30) as client:
                yield Served(self.base_url, client, TokenFactory(self.issuer))
        finally:
            server.should_exit = True
            thread.join(30)

    def check(self, case: Any, headers: dict[str, str]) -> None:
        """Send the generated case to the server and validate the response."""
        response = case.call(base_url=self.base_url, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
