"""Schemathesis over the training OpenAPI, in process on SQLite: generated requests, valid
and invalid, never get a server error, an undocumented status or content type, or a response
body that breaks the documented schema.

Requests carry a real token of a caller who may use the operation and name real records, so
generated data reaches the domain code and the database, not only the router's 404.
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
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, LEARNER = "team-fuzz", "staff-fuzz"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class FuzzTarget:
    """Who calls which operation, and the records generated requests are pointed at."""

    ids: dict[str, str]
    admin: str
    learner: str

    def aim(self, case: Any) -> dict[str, str]:
        parameters = case.path_parameters
        if parameters:
            for name in parameters:
                if name in self.ids:
                    parameters[name] = self.ids[name]
        token = self.learner if case.operation.path.endswith("/feedback") else self.admin
        if case.headers and "If-Match" in case.headers:
            case.headers["If-Match"] = "*"
        return {"Authorization": f"Bearer {token}"}


# Schemathesis reads the schema when the module is collected, so the app exists from then
# on; its database is migrated and seeded by the fixture before the first generated request.
_DATABASE_DIR = Path(tempfile.mkdtemp(prefix="training-fuzz-"))
atexit.register(shutil.rmtree, _DATABASE_DIR, True)
_ISSUER = DevIssuer(_DATABASE_DIR / "issuer")
_SETTINGS = make_settings(SERVICE,
                          database_url=f"sqlite+aiosqlite:///{_DATABASE_DIR}/training.db",
                          jwks_file=_ISSUER.jwks_path)
APP = create_app(_SETTINGS)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    _ISSUER.ensure_keys()
    tokens = TokenFactory(_ISSUER)
    upgrade_to_head(MIGRATIONS_DIR, _SETTINGS.database_url)
    admin = tokens.admin("admin-fuzz", [TEAM])
    learner = tokens.clinician(LEARNER, [TEAM])
    base = "http://testserver/v1"
    with asgi.get_client(cast(Any, APP)) as client:
        college = {"Authorization": f"Bearer {admin}"}
        educators = [client.post(f"{base}/educators", headers=college, json={
            "display_name": "Fuzz", "kind": "peer_educator", "lived_experience": lived}
        ).json()["id"] for lived in (True, False)]
        course = client.post(f"{base}/courses", headers=college, json={
            "title": "Fuzz", "learning_outcomes": ["x"], "audience": ["staff"],
            "co_produced_with": ["Peers"]}).json()
        run = client.post(f"{base}/courses/{course['id']}/runs", headers=college, json={
            "starts_on": "2030-01-01", "ends_on": "2030-01-01", "online": True,
            "capacity": 3, "facilitator_ids": educators}).json()
        enrolment = client.post(f"{base}/runs/{run['id']}/enrolments",
                                headers={"Authorization": f"Bearer {learner}"}, json={})
        assert enrolment.status_code == 201, enrolment.text
    yield FuzzTarget({"course_id": course["id"], "run_id": run["id"],
                      "educator_id": educators[0], "enrolment_id": enrolment.json()["id"],
                      "staff_id": LEARNER, "team_id": TEAM}, admin, learner)
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=15, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    headers = fuzz_target.aim(case)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
