"""An enrolment made under an ``Idempotency-Key`` and sent again is answered the same, with
no second enrolment and no second event, on SQLite and on PostgreSQL."""

from training_api import TrainingApi

from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    sent_twice,
)


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
