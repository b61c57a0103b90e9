"""Schemathesis over the workforce OpenAPI, against the app served by one uvicorn server on
SQLite (the kit's fuzzing harness): generated requests, valid and invalid, never get a server
error, an undocumented status or content type, or a response body that breaks the documented
schema.

Requests carry a real token of a caller who may use the operation and name a real team and
member of staff, so generated data reaches the domain code and the database.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from recovery.common.testing.fuzzing import FuzzedService, aim_path, fuzz_settings
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app

TEAM, STAFF = "team-fuzz", "staff-fuzz"


@dataclass
class FuzzTarget:
    """Who calls which operation: the person for their own declaration, else an admin."""

    admin: str
    person: str

    def aim(self, case: Any) -> dict[str, str]:
        aim_path(case, {"team_id": TEAM, "staff_id": STAFF})
        token = self.person if case.operation.path.endswith("/lived-experience") else self.admin
        return {"Authorization": f"Bearer {token}"}


WORKFORCE = FuzzedService(SERVICE, create_app, MIGRATIONS_DIR)
schema = WORKFORCE.schema


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    with WORKFORCE.serve() as served:
        tokens, client = served.tokens, served.client
        admin = tokens.admin("admin-fuzz", [TEAM, "team-other"])
        headers = {"Authorization": f"Bearer {admin}"}
        for team in (TEAM, "team-other"):
            created = client.post("/v1/teams", headers=headers, json={"id": team, "name": team})
            assert created.status_code == 201, created.text
        staff = client.post("/v1/staff", headers=headers, json={
            "id": STAFF, "team_id": TEAM, "display_name": "Fuzz", "profession": "nursing",
            "grade": "band-5", "role_type": "peer_specialist", "fte": 1,
            "start_date": "2024-01-01"})
        assert staff.status_code == 201, staff.text
        yield FuzzTarget(admin=admin, person=tokens.peer_specialist(STAFF, [TEAM]))


@schema.parametrize()
@fuzz_settings(max_examples=12)
def test_generated_requests_get_no_server_error_and_only_documented_responses(
        case: Any, fuzz_target: FuzzTarget) -> None:
    WORKFORCE.check(case, fuzz_target.aim(case))
