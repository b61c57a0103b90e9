"""Commands through the gateway: the caller's version passed through as If-Match, and every
refusal a typed result (StaleVersion, NotAllowed, Invalid, NotFound), never a generic error."""

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from recovery.common.audit import AuditEvent
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.crisis_plans.models import BreakGlassAccess
from recovery.gateway.testing import Platform, running_platform

PERSON, OTHER = "person-mut-1", "person-mut-2"
TODAY = date.today().isoformat()

PROPOSE = """
mutation ($input: GoalInput!) {
  proposeGoal(input: $input) {
    __typename
    ... on Goal { id version lifecycleStatus }
    ... on Invalid { message invalidParams }
    ... on NotAllowed { message }
  }
}"""
ACCEPT = """
mutation ($id: ID!, $v: Int!) {
  acceptGoal(id: $id, ifMatch: $v) {
    __typename
    ... on Goal { version lifecycleStatus }
    ... on StaleVersion { message versionRequired }
    ... on NotAllowed { message }
    ... on NotFound { message }
  }
}"""
SIGN = """
mutation ($id: ID!, $v: Int!, $hash: String!) {
  signCrisisPlan(id: $id, ifMatch: $v, contentHash: $hash) {
    __typename
    ... on CrisisPlan { version agreedAt signatures { party } }
    ... on StaleVersion { message }
    ... on NotAllowed { message }
  }
}"""


@pytest.fixture
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory,
                   tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens) as p:
        yield p


def result(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert "errors" not in body, body
    outcome: dict[str, Any] = body["data"][field]
    return outcome


async def test_staff_propose_a_goal_and_only_the_person_accepts_it_at_the_version_read(
        platform: Platform) -> None:
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    proposed = result(await platform.query(staff, PROPOSE, {"input": {
        "serviceUserId": PERSON, "teamId": "team-a",
        "description": "Take my daughter to the seaside"}}), "proposeGoal")
    assert proposed["__typename"] == "Goal"
    assert proposed["lifecycleStatus"] == "PROPOSED"

    other = result(await platform.query(platform.tokens.service_user(OTHER), ACCEPT,
                                        {"id": proposed["id"], "v": proposed["version"]}),
                   "acceptGoal")
    assert other["__typename"] in {"NotAllowed", "NotFound"}

    own = platform.tokens.service_user(PERSON)
    accepted = result(await platform.query(own, ACCEPT, {"id": proposed["id"],
                                                         "v": proposed["version"]}),
                      "acceptGoal")
    assert accepted["__typename"] == "Goal" and accepted["lifecycleStatus"] == "ACTIVE"
    stale = result(await platform.query(own, ACCEPT, {"id": proposed["id"],
                                                      "v": proposed["version"]}),
                   "acceptGoal")
    assert stale["__typename"] == "StaleVersion" and stale["versionRequired"] is False


async def test_a_therapeutic_goal_serving_no_life_goal_is_invalid_not_an_error(
        platform: Platform) -> None:
    refused = result(await platform.query(platform.tokens.service_user(PERSON), PROPOSE, {
        "input": {"serviceUserId": PERSON, "teamId": "team-a", "kind": "THERAPEUTIC",
                  "description": "Fewer side effects"}}), "proposeGoal")
    assert refused["__typename"] == "Invalid"
    assert refused["message"]


async def test_a_goal_review_is_recorded_at_the_goals_version(platform: Platform) -> None:
    own = platform.tokens.service_user(PERSON)
    goal = result(await platform.query(own, PROPOSE, {"input": {
        "serviceUserId": PERSON, "teamId": "team-a", "description": "Run 5k"}}), "proposeGoal")
    review = """mutation ($id: ID!, $v: Int!) { reviewGoal(id: $id, ifMatch: $v,
      input: {achievementStatus: IMPROVING, rating: 7}) {
        __typename ... on GoalReview { achievementStatus rating } } }"""
    done = result(await platform.query(own, review, {"id": goal["id"], "v": goal["version"]}),
                  "reviewGoal")
    assert done == {"__typename": "GoalReview", "achievementStatus": "IMPROVING", "rating": 7}


async def test_a_crisis_plan_drafted_and_signed_by_both_is_agreed(platform: Platform) -> None:
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    own = platform.tokens.service_user(PERSON)
    draft = """mutation ($person: ID!, $content: JSON!) { draftCrisisPlan(
      serviceUserId: $person, teamId: "team-a", content: $content) { __typename
      ... on CrisisPlan { id version contentHash } ... on Invalid { message } } }"""
    plan = result(await platform.query(staff, draft, {"person": PERSON, "content": {
        "when_well": ["I paint in the mornings"],
        "early_warning_signs": ["Not sleeping"],
        "participants": [{"role": "service_user"},
                         {"role": "care_coordinator", "id": "staff-1"}]}}), "draftCrisisPlan")
    assert plan["__typename"] == "CrisisPlan", plan
    variables = {"id": plan["id"], "v": plan["version"], "hash": plan["contentHash"]}
    assert result(await platform.query(own, SIGN, variables),
                  "signCrisisPlan")["__typename"] == "CrisisPlan"
    agreed = result(await platform.query(staff, SIGN, variables), "signCrisisPlan")
    assert agreed["agreedAt"] is not None
    stale = result(await platform.query(staff, SIGN, {**variables, "v": plan["version"] + 5}),
                   "signCrisisPlan")
    assert stale["__typename"] == "StaleVersion"
    active = await platform.query(own, '{ me { serviceUser { activeCrisisPlan { id } } } }')
    assert active["data"]["me"]["serviceUser"]["activeCrisisPlan"]["id"] == plan["id"]


async def test_risk_views_are_recorded_and_agreed_by_both(platform: Platform) -> None:
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    own = platform.tokens.service_user(PERSON)
    record = """mutation ($person: ID!, $areas: JSON!) { recordRiskViews(
      serviceUserId: $person, teamId: "team-a", areas: $areas) { __typename
      ... on RiskAssessment { id localId version status } ... on Invalid { message } } }"""
    drafted = result(await platform.query(staff, record, {"person": PERSON, "areas": [{
        "area": "safety_of_self", "service_user_view": "I know my signs now",
        "clinician_view": "Fewer crises since spring", "views_agree": True}]}),
        "recordRiskViews")
    assert drafted["__typename"] == "RiskAssessment", drafted
    read = await platform.rest("risk", "GET", f"/v1/risk-assessments/{drafted['localId']}", staff)
    agree = """mutation ($id: ID!, $v: Int!, $hash: String!) { agreeRiskAssessment(id: $id,
      ifMatch: $v, contentHash: $hash) { __typename ... on RiskAssessment { missingParties }
      ... on StaleVersion { message } } }"""
    variables = {"id": drafted["id"], "v": drafted["version"], "hash": read["content_hash"]}
    await platform.query(own, agree, variables)
    both = result(await platform.query(staff, agree, variables), "agreeRiskAssessment")
    assert both == {"__typename": "RiskAssessment", "missingParties": []}
    other = result(await platform.query(platform.tokens.service_user(OTHER), agree, variables),
                   "agreeRiskAssessment")
    assert other["__typename"] != "RiskAssessment"


async def test_care_contacts_and_supervision_are_logged_for_the_team(
        platform: Platform) -> None:
    admin = platform.tokens.admin("admin-1", ["team-a"])
    await platform.rest("workforce", "POST", "/v1/teams", admin,
                        json={"id": "team-a", "name": "Team A"})
    start = (date.today() - timedelta(days=30)).isoformat()
    for staff_id, role in (("peer-9", "peer_specialist"), ("nurse-9", "professional")):
        await platform.rest("workforce", "POST", "/v1/staff", admin, json={
            "id": staff_id, "team_id": "team-a", "display_name": staff_id,
            "profession": "peer_support" if role == "peer_specialist" else "nursing",
            "grade": "band-5", "role_type": role, "fte": 1.0, "start_date": start})
    contact = """mutation ($input: CareContactInput!) { logCareContact(input: $input) {
      __typename ... on CareContact { minutes teamId }
      ... on NotAllowed { message } ... on Invalid { message } ... on NotFound { message } } }"""
    given = {"input": {"staffId": "peer-9", "serviceUserId": PERSON, "occurredOn": TODAY,
                       "minutes": 45}}
    logged = result(await platform.query(platform.tokens.peer_specialist("peer-9", ["team-a"]),
                                         contact, given), "logCareContact")
    assert logged == {"__typename": "CareContact", "minutes": 45, "teamId": "team-a"}
    outsider = result(await platform.query(platform.tokens.service_user(PERSON), contact,
                                           given), "logCareContact")
    assert outsider["__typename"] in {"NotAllowed", "NotFound"}
    supervision = """mutation ($on: Date!) { recordSupervision(input: {staffId: "peer-9",
      supervisorId: "nurse-9", heldOn: $on, recoveryFocused: true, quality: 4}) {
      __typename ... on SupervisionSession { quality recoveryFocused }
      ... on NotAllowed { message } ... on Invalid { message } } }"""
    manager = platform.tokens("manager", "manager-1", teams=["team-a"], scope="user/*.cruds")
    recorded = result(await platform.query(manager, supervision, {"on": TODAY}),
                      "recordSupervision")
    assert recorded == {"__typename": "SupervisionSession", "quality": 4,
                        "recoveryFocused": True}


async def test_a_committed_mutation_is_answered_beside_one_whose_service_is_down(
        dev_issuer: DevIssuer, tokens: TokenFactory, tmp_path: Path) -> None:
    both = """mutation ($person: ID!) {
      proposeGoal(input: {serviceUserId: $person, teamId: "team-a",
                          description: "Walk the coast path"}) {
        __typename ... on Goal { localId description } }
      draftCrisisPlan(serviceUserId: $person, teamId: "team-a",
                      content: {when_well: ["I walk every day"]}) {
        __typename ... on CrisisPlan { id } } }"""
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                stopped=("crisis-plans",)) as platform:
        own = tokens.service_user(PERSON)
        body = await platform.query(own, both, {"person": PERSON})
        assert body["data"] is not None, body
        goal = body["data"]["proposeGoal"]
        assert goal["__typename"] == "Goal"
        assert goal["description"] == "Walk the coast path"
        assert body["data"]["draftCrisisPlan"] is None
        [error] = body["errors"]
        assert error["path"] == ["draftCrisisPlan"]
        assert error["extensions"] == {"code": "UPSTREAM_UNAVAILABLE",
                                       "service": "crisis-plans"}
        stored = await platform.rest("goals", "GET", f"/v1/goals?service_user_id={PERSON}", own)
        assert [g["id"] for g in stored["items"]] == [goal["localId"]]


async def test_refusals_through_the_gateway_never_tell_a_plan_out_of_reach_from_none(
        platform: Platform) -> None:
    draft = """mutation ($person: ID!, $team: ID!) { draftCrisisPlan(serviceUserId: $person,
      teamId: $team, content: {}) { __typename ... on CrisisPlan { id version contentHash }
      ... on NotAllowed { message } ... on Invalid { message } } }"""
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    plan = result(await platform.query(staff, draft, {"person": PERSON, "team": "team-a"}),
                  "draftCrisisPlan")
    outsider = platform.tokens.clinician("staff-b", ["team-b"])
    held_elsewhere = result(await platform.query(outsider, draft, {"person": PERSON,
                                                                   "team": "team-b"}),
                            "draftCrisisPlan")
    not_theirs = result(await platform.query(outsider, draft, {"person": OTHER,
                                                               "team": "team-a"}),
                        "draftCrisisPlan")
    assert held_elsewhere == not_theirs
    assert held_elsewhere["__typename"] == "NotAllowed"

    sign = """mutation ($id: ID!, $hash: String!) { signCrisisPlan(id: $id, ifMatch: 1,
      contentHash: $hash) { __typename ... on NotFound { message } ... on Invalid { message } } }"""
    unreachable = result(await platform.query(outsider, sign, {
        "id": plan["id"], "hash": plan["contentHash"]}), "signCrisisPlan")
    unknown = result(await platform.query(outsider, sign, {
        "id": "0190f3a0-0000-7000-8000-000000000000", "hash": plan["contentHash"]}),
        "signCrisisPlan")
    assert unreachable == unknown == {
        "__typename": "NotFound", "message": "No crisis plan with that id is available to you."}


async def test_a_crisis_team_clinician_breaks_the_glass_with_a_reason(
        platform: Platform) -> None:
    staff = platform.tokens.clinician("staff-1", ["team-a"])
    own = platform.tokens.service_user(PERSON)
    plan = await platform.rest("crisis-plans", "POST", "/v1/crisis-plans", staff, json={
        "service_user_id": PERSON, "team_id": "team-a", "when_well": ["I paint"],
        "participants": [{"role": "service_user"},
                         {"role": "care_coordinator", "id": "staff-1"}]})
    for token in (own, staff):
        await platform.rest("crisis-plans", "POST", f"/v1/crisis-plans/{plan['id']}/signatures",
                            token, json={"content_hash": plan["content_hash"]}, etag='"1"',
                            status=201)
    glass = """mutation ($person: ID!, $reason: String!) { breakGlass(serviceUserId: $person,
      reason: $reason) { __typename ... on CrisisPlan { localId version agreedAt }
      ... on NotAllowed { message } ... on Invalid { message } ... on NotFound { message } } }"""
    reason = "Found at the station at 2am, asking for help"
    responder = platform.tokens.clinician("crisis-7", ["crisis-team"])

    read = result(await platform.query(responder, glass, {"person": PERSON, "reason": reason}),
                  "breakGlass")
    assert read["__typename"] == "CrisisPlan" and read["localId"] == plan["id"]
    assert read["agreedAt"] is not None
    no_reason = result(await platform.query(responder, glass, {"person": PERSON,
                                                               "reason": " "}), "breakGlass")
    assert no_reason["__typename"] == "Invalid" and "reason" in no_reason["message"]
    for outsider in (platform.tokens.clinician("staff-b", ["team-b"]),
                     platform.tokens.peer_specialist("peer-7", ["crisis-team"])):
        refused = result(await platform.query(outsider, glass, {"person": PERSON,
                                                                "reason": reason}),
                         "breakGlass")
        assert refused["__typename"] == "NotAllowed"
    kit = platform.services["crisis-plans"].app.state.kit  # type: ignore[attr-defined]
    await kit.audit.flush()
    async with kit.sessions() as session:
        audited = (await session.exec(select(AuditEvent.outcome, AuditEvent.actor).where(
            col(AuditEvent.service_user_id) == PERSON,
            col(AuditEvent.action) == "break-glass"))).all()
        kept = (await session.exec(select(BreakGlassAccess.reason))).all()
    assert sorted(audited) == [("allowed", "crisis-7"), ("denied", "crisis-7"),
                               ("denied", "peer-7"), ("denied", "staff-b")]
    assert list(kept) == [reason]
