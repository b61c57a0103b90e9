"""An enrolment made under an ``Idempotency-Key`` and sent again is answered the same, with
no second enrolment and no second event, on SQLite and on PostgreSQL."""

from training_api import TrainingApi, unique

from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    rows_with,
    sent_twice,
)
from recovery.training.models import Course, CourseRun, Educator

COURSE = Course.__table__  # type: ignore[attr-defined]
EDUCATOR = Educator.__table__  # type: ignore[attr-defined]
RUN = CourseRun.__table__  # type: ignore[attr-defined]


async def test_a_retried_enrolment_answers_the_first_with_one_place_and_one_event(
        api: TrainingApi) -> None:
    run_id = await api.run(await api.course(), capacity=1)
    first = await sent_twice(api.client, f"/v1/runs/{run_id}/enrolments",
                             headers=api.auth(api.college),
                             json={"learner_id": "staff-77", "learner_kind": "staff"})
    assert first.json()["status"] == "enrolled"
    listed = await api.ok("GET", "/v1/enrolments", api.college, params={"run_id": run_id})
    assert [item["id"] for item in listed["items"]] == [first.json()["id"]]
    assert await events_about(api.client, first.json()["id"]) == [
        "recovery.training.enrolment.created"]


async def test_the_enrolment_endpoint_documents_the_key(api: TrainingApi) -> None:
    await assert_the_key_is_documented(api.client, "/v1/runs/{run_id}/enrolments")


async def test_retried_courses_runs_and_educators_answer_the_first_and_are_added_once(
        api: TrainingApi) -> None:
    college = api.auth(api.college)
    title = unique("Course")
    course = await sent_twice(api.client, "/v1/courses", headers=college, json={
        "title": title, "learning_outcomes": ["Plan a recovery journey"],
        "audience": ["staff"], "co_produced_with": ["Peer trainers"]})
    assert await rows_with(api.client, COURSE.c.title, title) == 1
    name = unique("Educator")
    educator = await sent_twice(api.client, "/v1/educators", headers=college, json={
        "display_name": name, "kind": "service_user_educator", "lived_experience": True})
    assert await rows_with(api.client, EDUCATOR.c.display_name, name) == 1
    other = await api.educator(lived_experience=False)
    await sent_twice(api.client, f"/v1/courses/{course.json()['id']}/runs", headers=college,
                     json={"starts_on": "2030-03-01", "ends_on": "2030-03-02", "online": True,
                           "capacity": 5, "facilitator_ids": [educator.json()["id"], other]})
    assert await rows_with(api.client, RUN.c.course_id, course.json()["id"]) == 1
    await assert_the_key_is_documented(api.client, "/v1/courses", "/v1/educators",
                                       "/v1/courses/{course_id}/runs")
