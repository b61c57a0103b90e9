"""Schemathesis over the training OpenAPI, against the app served by one uvicorn server on
SQLite (the kit's fuzzing harness): generated requests, valid and invalid, never get a server
error, an undocumented status or content type, or a response body that breaks the documented
schema.

Requests carry a real token of a caller who may use the operation and name real records, so
generated data reaches the domain code and the database, not only the router's 404.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.common.testing.fuzzing import FuzzedService, aim_path, fuzz_settings
from recovery.training.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, LEARNER = "team-fuzz", "staff-fuzz"


@dataclass
class FuzzTarget:
    """Who calls which operation, and the records generated requests are pointed at."""

    ids: dict[str, str]
    admin: str
    learner: str

    def aim(self, case: Any) -> dict[str, str]:
        aim_path(case, self.ids)
        token = self.learner if case.operation.path.endswith("/feedback") else self.admin
        return {"Authorization": f"Bearer {token}"}


TRAINING = FuzzedService(SERVICE, create_app, MIGRATIONS_DIR)
schema = TRAINING.schema


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    with TRAINING.serve() as served:
        tokens, client = served.tokens, served.client
        admin = tokens.admin("admin-fuzz", [TEAM])
        learner = tokens.clinician(LEARNER, [TEAM])
        college = {"Authorization": f"Bearer {admin}"}
        educators = [client.post("/v1/educators", headers=college, json={
            "display_name": "Fuzz", "kind": "peer_educator", "lived_experience": lived}
        ).json()["id"] for lived in (True, False)]
        course = client.post("/v1/courses", headers=college, json={
            "title": "Fuzz", "learning_outcomes": ["x"], "audience": ["staff"],
            "co_produced_with": ["Peers"]}).json()
        run = client.post(f"/v1/courses/{course['id']}/runs", headers=college, json={
            "starts_on": "2030-01-01", "ends_on": "2030-01-01", "online": True,
            "capacity": 3, "facilitator_ids": educators}).json()
        enrolment = client.post(f"/v1/runs/{run['id']}/enrolments",
                                headers={"Authorization": f"Bearer {learner}"}, json={})
        assert enrolment.status_code == 201, enrolment.text
        yield FuzzTarget({"course_id": course["id"], "run_id": run["id"],
                          "educator_id": educators[0], "enrolment_id": enrolment.json()["id"],
                          "staff_id": LEARNER, "team_id": TEAM}, admin, learner)


@schema.parametrize()
@fuzz_settings(max_examples=15)
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    TRAINING.check(case, fuzz_target.aim(case))
