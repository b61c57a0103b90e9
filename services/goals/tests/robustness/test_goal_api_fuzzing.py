"""Schemathesis over the goals OpenAPI, in process on SQLite: generated requests, valid and
invalid, never get a server error, an undocumented status or content type, or a response
body that breaks the documented schema.

Requests carry a real token of a caller who may use the operation, and name a real goal (and
step and team), so generated data reaches the domain code and the database, not only the
router's 404.
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
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, PERSON = "team-fuzz", "su-fuzz"
# Not negative_data_rejection: the generated ids in paths are replaced by real ones above, and
# unknown query parameters and headers are ignored, as HTTP servers do; unknown body fields are
# rejected, which test_goal_bad_input checks operation by operation.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class FuzzTarget:
    """Who calls which operation, and the records generated requests are pointed at."""

    goal_id: str
    step_id: str
    proposal_id: str
    clinician: str
    person: str
    manager: str
    admin: str

    def token_for(self, path: str) -> str:
        if path.startswith(("/v1/audit-events", "/fhir/AuditEvent")):
            return self.admin
        if path.endswith("/figures"):
            return self.manager
        if path.endswith(("/accept", "/decline")):
            return self.person  # only the person answers a proposal
        return self.clinician

    def aim(self, case: Any) -> dict[str, str]:
        """Point the case at the seeded goal, and answer with the headers to send."""
        parameters = case.path_parameters
        if parameters:
            if "goal_id" in parameters:
                answers = case.operation.path.endswith(("/accept", "/decline"))
                parameters["goal_id"] = self.proposal_id if answers else self.goal_id
            if "step_id" in parameters:
                parameters["step_id"] = self.step_id
            if "team_id" in parameters:
                parameters["team_id"] = TEAM
        headers = {"Authorization": f"Bearer {self.token_for(case.operation.path)}"}
        if case.headers and "If-Match" in case.headers:
            # Any version, so generated bodies are judged by the domain, not by the ETag.
            case.headers["If-Match"] = "*"
        return headers


# Schemathesis reads the schema when the module is collected (its fixture-based loader does
# not run under pytest 9), so the app exists from then on; its database is migrated and
# seeded by the fixture before the first generated request.
_DATABASE_DIR = Path(tempfile.mkdtemp(prefix="goals-fuzz-"))
atexit.register(shutil.rmtree, _DATABASE_DIR, True)  # also when the test is deselected
_ISSUER = DevIssuer(_DATABASE_DIR / "issuer")
_SETTINGS = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{_DATABASE_DIR}/goals.db",
                          jwks_file=_ISSUER.jwks_path)
APP = create_app(_SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    _ISSUER.ensure_keys()
    tokens = TokenFactory(_ISSUER)
    upgrade_to_head(MIGRATIONS_DIR, _SETTINGS.database_url)
    with asgi.get_client(cast(Any, APP)) as client:
        staff = {"Authorization": f"Bearer {tokens.clinician('staff-fuzz', [TEAM])}"}
        person = {"Authorization": f"Bearer {tokens.service_user(PERSON)}"}
        life = client.post("http://testserver/v1/goals", headers=person, json={
            "service_user_id": PERSON, "team_id": TEAM, "description": "Paint again",
            "steps": [{"who": "service_user", "what": "Buy brushes"}]})
        assert life.status_code == 201, life.text
        proposal = client.post("http://testserver/v1/goals", headers=staff, json={
            "service_user_id": PERSON, "team_id": TEAM, "description": "Walk daily",
            "kind": "therapeutic", "serves_goal_ids": [life.json()["id"]]})
        assert proposal.status_code == 201, proposal.text
    yield FuzzTarget(life.json()["id"], life.json()["steps"][0]["id"], proposal.json()["id"],
                     clinician=tokens.clinician("staff-fuzz", [TEAM]),
                     person=tokens.service_user(PERSON),
                     manager=tokens.manager("manager-fuzz", [TEAM]),
                     admin=tokens.admin("admin-fuzz", [TEAM]))
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=15, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    headers = fuzz_target.aim(case)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
