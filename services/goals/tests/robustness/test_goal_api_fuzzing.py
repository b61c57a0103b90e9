"""Schemathesis over the goals OpenAPI, against the app served by one uvicorn server on SQLite
(the kit's fuzzing harness): generated requests, valid and invalid, never get a server error,
an undocumented status or content type, or a response body that breaks the documented schema.

Requests carry a real token of a caller who may use the operation, and name a real goal (and
step and team), so generated data reaches the domain code and the database, not only the
router's 404.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.common.testing.fuzzing import FuzzedService, aim_path, fuzz_settings
from recovery.goals.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, PERSON = "team-fuzz", "su-fuzz"


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
        answers = case.operation.path.endswith(("/accept", "/decline"))
        aim_path(case, {"goal_id": self.proposal_id if answers else self.goal_id,
                        "step_id": self.step_id, "team_id": TEAM})
        return {"Authorization": f"Bearer {self.token_for(case.operation.path)}"}


GOALS = FuzzedService(SERVICE, create_app, MIGRATIONS_DIR)
schema = GOALS.schema


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    with GOALS.serve() as served:
        tokens = served.tokens
        staff = {"Authorization": f"Bearer {tokens.clinician('staff-fuzz', [TEAM])}"}
        person = {"Authorization": f"Bearer {tokens.service_user(PERSON)}"}
        life = served.client.post("/v1/goals", headers=person, json={
            "service_user_id": PERSON, "team_id": TEAM, "description": "Paint again",
            "steps": [{"who": "service_user", "what": "Buy brushes"}]})
        assert life.status_code == 201, life.text
        proposal = served.client.post("/v1/goals", headers=staff, json={
            "service_user_id": PERSON, "team_id": TEAM, "description": "Walk daily",
            "kind": "therapeutic", "serves_goal_ids": [life.json()["id"]]})
        assert proposal.status_code == 201, proposal.text
        yield FuzzTarget(life.json()["id"], life.json()["steps"][0]["id"],
                         proposal.json()["id"],
                         clinician=tokens.clinician("staff-fuzz", [TEAM]),
                         person=tokens.service_user(PERSON),
                         manager=tokens.manager("manager-fuzz", [TEAM]),
                         admin=tokens.admin("admin-fuzz", [TEAM]))


@schema.parametrize()
@fuzz_settings(max_examples=15)
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    GOALS.check(case, fuzz_target.aim(case))
