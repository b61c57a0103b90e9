"""Object-level access on every training endpoint, on SQLite and PostgreSQL: an enrolment is
the learner's, the college's and their team's managers'; an educator's record is the
college's and the educator's; the prospectus is everyone's who is signed in; figures are
for managers and admins. Every refused change is read back to show it changed nothing."""

from typing import Any

import httpx
from training_api import TrainingApi, unique
from training_operations import PROBLEM, Operation, Records, protected_operations, valid_body

from recovery.common.events import CloudEvent
from recovery.training.service import apply_staff_event

#: What a caller with no claim on the records gets, operation by operation. An operation
#: missing here fails the test, so a new endpoint must say who may use it.
OUTSIDER: dict[str, int] = {
    "GET /v1/courses": 200, "GET /v1/courses/{course_id}": 200,
    "GET /v1/courses/{course_id}/runs": 200, "GET /v1/runs/{run_id}": 200,
    "POST /v1/runs:batch-read": 200,
    "POST /v1/courses": 403, "PATCH /v1/courses/{course_id}": 403,
    "POST /v1/courses/{course_id}/runs": 403, "POST /v1/runs/{run_id}/delivery": 403,
    "POST /v1/educators": 403,
    "GET /v1/educators": 403, "GET /v1/educators/{educator_id}": 404,
    "POST /v1/educators/{educator_id}/training": 404,
    "POST /v1/educators/{educator_id}/supervision": 404,
    "POST /v1/educators/{educator_id}/support": 404,
    "POST /v1/runs/{run_id}/enrolments": 403,  # enrolling the learner, not themselves
    "GET /v1/enrolments": 200,  # but without the learner's enrolment
    "GET /v1/enrolments/{enrolment_id}": 404,
    "POST /v1/enrolments/{enrolment_id}/attendance": 404,
    "POST /v1/enrolments/{enrolment_id}/completion": 404,
    "POST /v1/enrolments/{enrolment_id}/withdrawal": 404,
    "POST /v1/enrolments/{enrolment_id}/feedback": 404,
    "GET /v1/staff/{staff_id}": 404,
    "GET /v1/figures/foundation-coverage": 403,
    "GET /v1/teams/{team_id}/foundation-coverage": 403,
    "GET /v1/figures/quality": 403,
}
PROSPECTUS = {"GET /v1/courses", "GET /v1/courses/{course_id}",
              "GET /v1/courses/{course_id}/runs", "GET /v1/runs/{run_id}",
              "POST /v1/runs:batch-read"}


async def setting(api: TrainingApi) -> tuple[Records, list[Operation]]:
    """A learner in a team, placed on a run; an educator who is also staff."""
    team, learner = unique("team"), unique("staff")
    event = CloudEvent(source="workforce", type="recovery.workforce.staff.joined",
                       subject=learner, data={
                           "staff_id": learner, "team_id": team, "profession": "nursing",
                           "grade": "band-5", "role_type": "professional",
                           "effective_date": "2030-01-01", "version": 1})
    async with api.client.app.state.kit.sessions() as session:  # type: ignore[attr-defined]
        await apply_staff_event(session, event)
        await session.commit()
    course_id = await api.course()
    run_id = await api.run(course_id)
    enrolment = await api.enrol(run_id, api.tokens.clinician(learner, teams=[team]))
    educator_id = await api.educator(lived_experience=True, staff_id=unique("educator"))
    openapi = (await api.client.get("/openapi.json")).json()
    operations = [op for op in protected_operations(openapi) if not op.is_audit]
    return Records(course_id, run_id, educator_id, enrolment["id"], learner, team), operations


async def snapshot(api: TrainingApi, records: Records) -> list[str]:
    admin = api.auth(api.tokens.admin())
    paths = [f"/v1/courses/{records.course_id}", f"/v1/runs/{records.run_id}",
             f"/v1/educators/{records.educator_id}", f"/v1/enrolments/{records.enrolment_id}",
             f"/v1/staff/{records.staff_id}", "/v1/courses?limit=1000"]
    texts = []
    for path in paths:
        response = await api.client.get(path, headers=admin)
        assert response.status_code == 200, response.text
        texts.append(response.text)
    return texts


async def call(api: TrainingApi, operation: Operation, records: Records,
               token: str) -> httpx.Response:
    return await api.client.request(
        operation.method, records.fill(operation.template),
        json=valid_body(operation, learner_id=records.staff_id),
        headers={**api.auth(token), "If-Match": "*"})


def outsiders(api: TrainingApi, records: Records) -> dict[str, tuple[str, dict[str, int]]]:
    """Callers with no claim on the learner's or educator's records, and what differs."""
    t = api.tokens
    return {
        "a clinician of another team": (t.clinician(unique("staff"), [unique("team")]), {}),
        "a peer specialist of the learner's team": (t.peer_specialist(
            unique("peer"), [records.team_id]), {}),
        "a service user": (t.service_user(unique("su")), {}),
        # Organisation-wide figures are for every manager, the team's only for its own; a
        # manager's token reads only (user/*.rs), so changes fail on the scope first.
        "a manager of another team": (t.manager(unique("manager"), [unique("team")]), {
            "GET /v1/figures/foundation-coverage": 200, "GET /v1/figures/quality": 200,
            **{f"POST /v1/enrolments/{{enrolment_id}}/{step}": 403
               for step in ("attendance", "completion", "withdrawal", "feedback")}}),
        "a clinician claiming system scopes": (t.clinician(
            unique("staff"), [unique("team")], scope="system/*.cruds"), {}),
    }


async def test_nobody_without_a_claim_reaches_or_changes_anything_on_any_endpoint(
        api: TrainingApi) -> None:
    records, operations = await setting(api)
    assert {str(op) for op in operations} == set(OUTSIDER), "say who may use each operation"
    before = await snapshot(api, records)
    wrong: list[str] = []
    for who, (token, differences) in outsiders(api, records).items():
        for operation in operations:
            expected = differences.get(str(operation), OUTSIDER[str(operation)])
            response = await call(api, operation, records, token)
            if response.status_code != expected:
                wrong.append(f"{who}: {operation} -> {response.status_code} (not {expected})")
            elif expected >= 400 and response.headers["content-type"] != PROBLEM:
                wrong.append(f"{who}: {operation} answered without a problem document")
            elif str(operation) == "GET /v1/enrolments":
                ids = {e["id"] for e in response.json()["items"]}
                if records.enrolment_id in ids:
                    wrong.append(f"{who}: the learner's enrolment is listed")
    assert wrong == [], "\n".join(wrong)
    assert await snapshot(api, records) == before


async def test_the_learner_the_college_and_the_teams_manager_reach_the_enrolment(
        api: TrainingApi) -> None:
    records, _ = await setting(api)
    path = f"/v1/enrolments/{records.enrolment_id}"
    for token in (api.tokens.clinician(records.staff_id, []), api.college,
                  api.tokens.manager(teams=[records.team_id])):
        assert (await api.send("GET", path, token)).status_code == 200
    figures = f"/v1/teams/{records.team_id}/foundation-coverage"
    assert (await api.send("GET", figures, api.tokens.manager(
        teams=[records.team_id]))).status_code == 200


async def test_a_token_without_the_scopes_gets_403_except_on_the_prospectus(
        api: TrainingApi) -> None:
    records, operations = await setting(api)
    before = await snapshot(api, records)
    token = api.tokens("admin", unique("admin"), teams=[records.team_id], scope="user/Goal.rs")
    wrong: list[str] = []
    for operation in operations:
        if str(operation).endswith("foundation-coverage") or "quality" in str(operation):
            continue  # aggregates go by role (manager, admin), as in every service
        response = await call(api, operation, records, token)
        expected = 200 if str(operation) in PROSPECTUS else 403
        if response.status_code != expected:
            wrong.append(f"{operation} -> {response.status_code}")
    assert wrong == [], "\n".join(wrong)
    assert await snapshot(api, records) == before


async def test_refused_reads_are_in_the_audit_trail_as_denied(api: TrainingApi) -> None:
    records, _ = await setting(api)
    intruder = unique("staff")
    response = await api.send("GET", f"/v1/enrolments/{records.enrolment_id}",
                              api.tokens.clinician(intruder, [unique("team")]))
    assert response.status_code == 404
    kit: Any = api.client.app.state.kit  # type: ignore[attr-defined]
    await kit.audit.flush()
    trail = await api.ok("GET", "/v1/audit-events", api.tokens.admin(),
                         params={"record_id": records.enrolment_id})
    outcomes = {(e["actor"], e["outcome"]) for e in trail["items"]}
    assert (intruder, "denied") in outcomes
