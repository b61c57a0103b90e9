"""A co-assessment started under an ``Idempotency-Key`` and sent again is answered the same,
with no second co-assessment and no second event, on SQLite and on PostgreSQL."""

from risk_api import RiskApi, area, unique

from recovery.common.testing.idempotency import (
    assert_the_key_is_documented,
    events_about,
    sent_twice,
)


async def test_a_retried_draft_answers_the_first_assessment_with_one_and_one_event(
        api: RiskApi) -> None:
    person, staff = unique("su"), api.tokens.clinician()
    first = await sent_twice(api.client, "/v1/risk-assessments", headers=api.auth(staff),
                             json={"service_user_id": person, "team_id": "team-a",
                                   "areas": [area()]})
    listed = await api.client.get("/v1/risk-assessments", params={"service_user_id": person},
                                  headers=api.auth(staff))
    assert [item["id"] for item in listed.json()["items"]] == [first.json()["id"]]
    assert await events_about(api.client, first.json()["id"]) == [
        "recovery.risk.assessment.drafted"]


async def test_the_risk_endpoint_that_creates_documents_the_key(api: RiskApi) -> None:
    await assert_the_key_is_documented(api.client, "/v1/risk-assessments")
