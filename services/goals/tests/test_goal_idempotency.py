"""A goal or review created under an ``Idempotency-Key`` and sent again is answered the same,
with no second record and no second event, on SQLite and on PostgreSQL."""

from conftest import GoalsApi, unique

from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    sent_twice,
)


async def test_a_retried_goal_answers_the_first_goal_with_one_goal_and_one_event(
        api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    first = await sent_twice(api.client, "/v1/goals", headers=api.auth(staff), json={
        "service_user_id": person, "team_id": "team-a", "description": "Back to the choir"})
    listed = await api.client.get("/v1/goals", params={"service_user_id": person},
                                  headers=api.auth(staff))
    assert [goal["id"] for goal in listed.json()["items"]] == [first.json()["id"]]
    assert await events_about(api.client, first.json()["id"]) == ["recovery.goals.goal.proposed"]


async def test_a_retried_review_answers_the_first_review_with_one_review_and_one_event(
        api: GoalsApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician()
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Walk to the allotment")
    review = await sent_twice(api.client, f"/v1/goals/{goal['id']}/reviews",
                              headers=api.auth(staff, '"1"'),
                              json={"achievement_status": "improving", "rating": 6})
    assert review.headers["etag"] == '"2"'
    listed = await api.client.get(f"/v1/goals/{goal['id']}/reviews", headers=api.auth(own))
    assert [item["id"] for item in listed.json()["items"]] == [review.json()["id"]]
    assert await events_about(api.client, goal["id"]) == ["recovery.goals.goal.created",
                                                          "recovery.goals.goal.reviewed"]


async def test_a_key_reused_for_another_goal_is_refused_and_creates_nothing(
        api: GoalsApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    headers = {**api.auth(staff), "Idempotency-Key": unique("key")}
    body = {"service_user_id": person, "team_id": "team-a", "description": "Cook for friends"}
    assert (await api.client.post("/v1/goals", headers=headers, json=body)).status_code == 201
    reused = await api.client.post("/v1/goals", headers=headers,
                                   json={**body, "description": "Learn to swim"})
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("/idempotency-key-reused")
    listed = await api.client.get("/v1/goals", params={"service_user_id": person},
                                  headers=api.auth(staff))
    assert [goal["description"] for goal in listed.json()["items"]] == ["Cook for friends"]


async def test_the_goal_endpoints_that_create_document_the_key(api: GoalsApi) -> None:
    await assert_the_key_is_documented(api.client, "/v1/goals", "/v1/goals/{goal_id}/reviews")
