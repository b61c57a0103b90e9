"""Schemathesis over the crisis-plans OpenAPI, against the app served by one uvicorn server on
SQLite (the kit's fuzzing harness): generated requests, valid and invalid, never get a server
error, an undocumented status or content type, or a response body that breaks the documented
schema.

Requests carry a real token of a caller who may use the operation, and name a real plan,
person and team, so generated data reaches the domain code and the database.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.common.testing.fuzzing import FuzzedService, aim_path, fuzz_settings
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, PERSON = "team-fuzz", "su-fuzz"


@dataclass
class FuzzTarget:
    """Who calls which operation, and the records generated requests are pointed at."""

    plan_id: str
    clinician: str
    person: str
    responder: str
    admin: str

    def token_for(self, path: str) -> str:
        if path.startswith(("/v1/audit-events", "/fhir/AuditEvent")):
            return self.admin
        if path.endswith(":break-glass"):
            return self.responder
        if path.endswith(("/withdraw-agreement", "/entered-in-error")):
            # Only the person withdraws; and they cannot close the plan the other generated
            # requests are aimed at by marking it entered-in-error (staff do that).
            return self.person
        return self.clinician

    def aim(self, case: Any) -> dict[str, str]:
        """Point the case at the seeded plan, and answer with the headers to send."""
        aim_path(case, {"plan_id": self.plan_id, "service_user_id": PERSON, "team_id": TEAM,
                        "person": PERSON, "version_id": "1"})
        return {"Authorization": f"Bearer {self.token_for(case.operation.path)}"}


PLANS = FuzzedService(SERVICE, create_app, MIGRATIONS_DIR)
schema = PLANS.schema


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    with PLANS.serve() as served:
        tokens, client = served.tokens, served.client
        clinician, person = tokens.clinician("staff-fuzz", [TEAM]), tokens.service_user(PERSON)
        created = client.post("/v1/crisis-plans",
                              headers={"Authorization": f"Bearer {clinician}"},
                              json={"service_user_id": PERSON, "team_id": TEAM,
                                    "triggers": ["Crowded trains"]})
        assert created.status_code == 201, created.text
        plan = created.json()
        for token in (person, clinician):
            signed = client.post(f"/v1/crisis-plans/{plan['id']}/signatures",
                                 headers={"Authorization": f"Bearer {token}", "If-Match": '"1"'},
                                 json={"content_hash": plan["content_hash"]})
            assert signed.status_code == 201, signed.text
        yield FuzzTarget(plan["id"], clinician=clinician, person=person,
                         responder=tokens.clinician("crisis-fuzz", ["crisis-team"]),
                         admin=tokens.admin("admin-fuzz", [TEAM]))


@schema.parametrize()
@fuzz_settings(max_examples=15)
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    PLANS.check(case, fuzz_target.aim(case))
