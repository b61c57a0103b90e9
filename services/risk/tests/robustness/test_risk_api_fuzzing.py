"""Schemathesis over the risk OpenAPI, against the app served by uvicorn on SQLite:
generated requests, valid and invalid, never get a server error, an undocumented status or
content type, or a response body that breaks the documented schema.

Requests carry a real token of a caller who may use the operation and name a real
co-assessment, so generated data reaches the domain code and the database. The app runs in
one uvicorn server for the whole module (one lifespan), as in production: schemathesis's own
ASGI client starts and stops the lifespan around every operation, in a new event loop each
time, which is not how the service is ever run.
"""

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
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
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.common.testing.processes import free_port
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, PERSON = "team-fuzz", "su-fuzz"
# Not negative_data_rejection: generated ids in paths are replaced by real ones, and unknown
# query parameters are ignored as HTTP servers do (except score-like names, refused).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class FuzzTarget:
    base_url: str
    assessment_id: str
    clinician: str
    person: str
    admin: str

    def token_for(self, path: str) -> str:
        if path.startswith(("/v1/audit-events", "/fhir/AuditEvent")):
            return self.admin
        if path.endswith("/withdraw-agreement"):
            return self.person  # only the person withdraws their agreement
        return self.clinician

    def aim(self, case: Any) -> dict[str, str]:
        parameters = case.path_parameters
        if parameters:
            if "assessment_id" in parameters:
                parameters["assessment_id"] = self.assessment_id
            if "team_id" in parameters:
                parameters["team_id"] = TEAM
        if case.operation.path == "/fhir/Provenance" and isinstance(case.query, dict):
            case.query["target"] = f"RiskAssessment/{self.assessment_id}"
        if case.headers and "If-Match" in case.headers:
            case.headers["If-Match"] = "*"
        return {"Authorization": f"Bearer {self.token_for(case.operation.path)}"}


_DATABASE_DIR = Path(tempfile.mkdtemp(prefix="risk-fuzz-"))
atexit.register(shutil.rmtree, _DATABASE_DIR, True)
_ISSUER = DevIssuer(_DATABASE_DIR / "issuer")
_SETTINGS = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{_DATABASE_DIR}/risk.db",
                          jwks_file=_ISSUER.jwks_path)
APP = create_app(_SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    _ISSUER.ensure_keys()
    tokens = TokenFactory(_ISSUER)
    upgrade_to_head(MIGRATIONS_DIR, _SETTINGS.database_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="risk-fuzz-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    clinician = tokens.clinician("staff-fuzz", [TEAM])
    try:
        created = httpx.post(f"{base_url}/v1/risk-assessments",
                             headers={"Authorization": f"Bearer {clinician}"}, json={
                                 "service_user_id": PERSON, "team_id": TEAM, "areas": [{
                                     "area": "substances", "service_user_view": "Less now",
                                     "clinician_view": "Agreed", "views_agree": True}]})
        assert created.status_code == 201, created.text
        yield FuzzTarget(base_url, created.json()["id"], clinician=clinician,
                         person=tokens.service_user(PERSON),
                         admin=tokens.admin("admin-fuzz", [TEAM]))
    finally:
        server.should_exit = True
        thread.join(30)


@schema.parametrize()
@settings(max_examples=15, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    headers = fuzz_target.aim(case)
    response = case.call(base_url=fuzz_target.base_url, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
