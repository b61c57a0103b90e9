"""A crisis plan started under an ``Idempotency-Key`` and sent again is answered the same,
with no second plan and no second event, on SQLite and on PostgreSQL."""

from plans_api import PLAN_CONTENT, SHARED_DECISION, PlansApi, unique

from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    sent_twice,
)


async def test_a_retried_draft_answers_the_first_plan_with_one_plan_and_one_event(
        api: PlansApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    first = await sent_twice(api.client, "/v1/crisis-plans", headers=api.auth(staff),
                             json={"service_user_id": person, "team_id": "team-a",
                                   **PLAN_CONTENT})
    plans = await api.client.get(f"/v1/people/{person}/crisis-plans", headers=api.auth(staff))
    assert [plan["id"] for plan in plans.json()["items"]] == [first.json()["id"]]
    assert await events_about(api.client, first.json()["id"]) == [
        "recovery.crisis-plans.plan.created"]


async def test_a_refused_draft_keeps_no_answer_for_its_key(api: PlansApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    headers = {**api.auth(staff), "Idempotency-Key": unique("key")}
    body = {"service_user_id": person, "team_id": "team-b", **PLAN_CONTENT}
    refused = await api.client.post("/v1/crisis-plans", headers=headers, json=body)
    assert refused.status_code in (403, 404), refused.text
    corrected = await api.client.post("/v1/crisis-plans", headers=headers,
                                      json={**body, "team_id": "team-a"})
    assert corrected.status_code == 201, corrected.text
    assert "idempotent-replayed" not in corrected.headers


async def test_a_retried_medication_decision_answers_the_first_with_one_decision_and_event(
        api: PlansApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    plan = await api.draft(staff, person)
    path = f"/v1/crisis-plans/{plan['id']}/medication-decisions"
    first = await sent_twice(api.client, path, headers=api.auth(staff), json=SHARED_DECISION)
    listed = await api.client.get(path, headers=api.auth(staff))
    assert [item["id"] for item in listed.json()["items"]] == [first.json()["id"]]
    assert (await events_about(api.client, plan["id"])).count(
        "recovery.crisis-plans.medication-decision.recorded") == 1


async def test_the_plan_endpoints_that_create_document_the_key(api: PlansApi) -> None:
    await assert_the_key_is_documented(api.client, "/v1/crisis-plans",
                                       "/v1/crisis-plans/{plan_id}/medication-decisions")
