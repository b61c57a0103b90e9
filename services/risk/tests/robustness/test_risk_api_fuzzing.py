"""Schemathesis over the risk OpenAPI, against the app served by one uvicorn server on SQLite
(the kit's fuzzing harness): generated requests, valid and invalid, never get a server error,
an undocumented status or content type, or a response body that breaks the documented schema.

Requests carry a real token of a caller who may use the operation and name a real
co-assessment, so generated data reaches the domain code and the database. Unknown query
parameters are ignored as HTTP servers do, except score-like names, which are refused.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.common.testing.fuzzing import FuzzedService, aim_path, fuzz_settings
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, PERSON = "team-fuzz", "su-fuzz"


@dataclass
class FuzzTarget:
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
        aim_path(case, {"assessment_id": self.assessment_id, "team_id": TEAM,
                        "person": PERSON, "version_id": "1"})
        if case.operation.path == "/fhir/Provenance" and isinstance(case.query, dict):
            case.query["target"] = f"RiskAssessment/{self.assessment_id}"
        return {"Authorization": f"Bearer {self.token_for(case.operation.path)}"}


RISK = FuzzedService(SERVICE, create_app, MIGRATIONS_DIR)
schema = RISK.schema


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    with RISK.serve() as served:
        tokens = served.tokens
        clinician = tokens.clinician("staff-fuzz", [TEAM])
        created = served.client.post(
            "/v1/risk-assessments", headers={"Authorization": f"Bearer {clinician}"}, json={
                "service_user_id": PERSON, "team_id": TEAM, "areas": [{
                    "area": "substances", "service_user_view": "Less now",
                    "clinician_view": "Agreed", "views_agree": True}]})
        assert created.status_code == 201, created.text
        yield FuzzTarget(created.json()["id"], clinician=clinician,
                         person=tokens.service_user(PERSON),
                         admin=tokens.admin("admin-fuzz", [TEAM]))


@schema.parametrize()
@fuzz_settings(max_examples=15)
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    RISK.check(case, fuzz_target.aim(case))
