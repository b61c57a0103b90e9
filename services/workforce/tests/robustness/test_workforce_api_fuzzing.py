"""Schemathesis over the workforce OpenAPI, in process on SQLite: generated requests, valid
and invalid, never get a server error, an undocumented status or content type, or a response
body that breaks the documented schema.

Requests carry a real token of a caller who may use the operation and name a real team and
member of staff, so generated data reaches the domain code and the database.
"""

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from recovery.common.dev_issuer import DevIssuer
from recovery.common.migrations import upgrade_to_head
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, STAFF = "team-fuzz", "staff-fuzz"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class FuzzTarget:
    admin: str
    person: str

    def aim(self, case: Any) -> dict[str, str]:
        parameters = case.path_parameters
        if parameters:
            if "team_id" in parameters:
                parameters["team_id"] = TEAM
            if "staff_id" in parameters:
                parameters["staff_id"] = STAFF
        if case.headers and "If-Match" in case.headers:
            case.headers["If-Match"] = "*"
        token = self.person if case.operation.path.endswith("/lived-experience") else self.admin
        return {"Authorization": f"Bearer {token}"}


_DATABASE_DIR = Path(tempfile.mkdtemp(prefix="workforce-fuzz-"))
atexit.register(shutil.rmtree, _DATABASE_DIR, True)
_ISSUER = DevIssuer(_DATABASE_DIR / "issuer")
_SETTINGS = make_settings(SERVICE,
                          database_url=f"sqlite+aiosqlite:///{_DATABASE_DIR}/workforce.db",
                          jwks_file=_ISSUER.jwks_path)
APP = create_app(_SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    _ISSUER.ensure_keys()
    tokens = TokenFactory(_ISSUER)
    upgrade_to_head(MIGRATIONS_DIR, _SETTINGS.database_url)
    admin = tokens("admin", "admin-fuzz", teams=[TEAM, "team-other"])
    with asgi.get_client(cast(Any, APP)) as client:
        headers = {"Authorization": f"Bearer {admin}"}
        for team in (TEAM, "team-other"):
            created = client.post("http://testserver/v1/teams", headers=headers,
                                  json={"id": team, "name": team})
            assert created.status_code == 201, created.text
        staff = client.post("http://testserver/v1/staff", headers=headers, json={
            "id": STAFF, "team_id": TEAM, "display_name": "Fuzz", "profession": "nursing",
            "grade": "band-5", "role_type": "peer_specialist", "fte": 1,
            "start_date": "2024-01-01"})
        assert staff.status_code == 201, staff.text
    yield FuzzTarget(admin=admin, person=tokens.peer_specialist(STAFF, [TEAM]))
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    headers = fuzz_target.aim(case)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
