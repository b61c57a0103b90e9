"""Object-level access on every risk endpoint, on SQLite and PostgreSQL: a service user
reaches only their own co-assessments, staff only their teams'; a token without the
RiskAssessment scope gets 403. Every refused request is followed by a read-back showing it
changed nothing, and every decision is in the audit trail."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from risk_api import RiskApi, area, unique
from risk_operations import (
    Operation,
    assert_refused,
    fill_path,
    protected_operations,
    query_for,
    valid_body,
)

from recovery.common.testing.access import intruders
from recovery.common.testing.plugin import auth

SECRET_WORDS = "I hear voices when I do not sleep"


@dataclass
class Household:
    """Alice's agreed co-assessment in her team, and the people who must not reach it."""

    api: RiskApi
    team: str
    other_team: str
    alice: str
    bob: str
    assessment: dict[str, Any]
    bobs: dict[str, Any]

    @property
    def alice_token(self) -> str:
        return self.api.tokens.service_user(self.alice)

    @property
    def team_staff(self) -> str:
        return self.api.tokens.clinician("staff-in-team", [self.team])

    def intruders(self) -> dict[str, str]:
        """Callers with every scope they could need, but no claim on Alice's records."""
        return intruders(self.api.tokens, other_person=self.bob, other_team=self.other_team)

    async def read_back(self) -> tuple[str, str, int]:
        client, headers = self.api.client, auth(self.team_staff)
        one = await client.get(f"/v1/risk-assessments/{self.assessment['id']}", headers=headers)
        listed = await client.get("/v1/risk-assessments", params={"team_id": self.team},
                                  headers=headers)
        assert one.status_code == listed.status_code == 200
        return one.text, one.headers["etag"], len(listed.json()["items"])


async def household(api: RiskApi) -> Household:
    team, other_team, alice, bob = unique("team"), unique("team"), unique("su"), unique("su")
    agreed = await api.agreed(alice, team, staff="staff-in-team",
                              areas=[area(person=SECRET_WORDS)])
    bobs = await api.draft(api.tokens.clinician("staff-out", [other_team]),
                           service_user_id=bob, team_id=other_team)
    return Household(api, team, other_team, alice, bob, agreed, bobs)


async def _operations(api: RiskApi) -> list[Operation]:
    openapi = (await api.client.get("/openapi.json")).json()
    operations = [op for op in protected_operations(openapi) if not op.is_audit]
    assert len(operations) >= 14
    return operations


def _ids(body: dict[str, Any]) -> set[str]:
    if body.get("resourceType") == "Bundle":
        return {entry["resource"]["id"] for entry in body.get("entry", [])}
    if "results" in body:
        return {a["id"] for r in body["results"] for a in r["assessments"]}
    if "items" in body:
        return {item.get("id") or item.get("assessment_id") for item in body["items"]}
    return {body.get("id", "")}


async def _send(home: Household, operation: Operation, token: str, etag: str | None
                ) -> httpx.Response:
    record = home.assessment
    return await home.api.client.request(
        operation.method, fill_path(operation.template, assessment_id=record["id"],
                                    team_id=home.team, service_user_id=home.alice),
        params=query_for(operation, assessment_id=record["id"], service_user_id=home.alice),
        headers=auth(token, etag),
        json=valid_body(operation, service_user_id=home.alice, team_id=home.team,
                        content_hash=record["content_hash"]))


async def test_every_operation_refuses_everyone_outside_alices_reach_and_reveals_nothing(
        api: RiskApi) -> None:
    home = await household(api)
    before = await home.read_back()
    for operation in await _operations(api):
        for intruder, token in home.intruders().items():
            # A stale or missing If-Match must not give the record away with 412 or 428.
            for etag in ('"1"', '"999"', None):
                response = await _send(home, operation, token, etag)
                what = f"{operation} by {intruder} ({etag})"
                assert SECRET_WORDS not in response.text, what
                assert "etag" not in response.headers, what
                if response.status_code == 200:
                    # Lists, batch reads and searches answer, without Alice's record in them.
                    found = _ids(response.json())
                    assert home.assessment["id"] not in found and home.alice not in found, what
                    continue
                expected = 403 if str(operation) == "POST /v1/risk-assessments" else 404
                assert_refused(response, expected, "forbidden" if expected == 403
                               else "not-found", what)
    assert await home.read_back() == before


async def test_alice_and_her_team_reach_every_read_operation(api: RiskApi) -> None:
    """The control of the refusals above: the same requests from the right people work."""
    home = await household(api)
    for operation in await _operations(api):
        if operation.changes:
            continue
        for who, token in (("Alice", home.alice_token), ("her team", home.team_staff)):
            response = await _send(home, operation, token, None)
            if "risk-reviews-due" in operation.template and who == "Alice":
                assert response.status_code == 404  # the team's list is staff's
                continue
            assert response.status_code == 200, f"{operation} by {who}: {response.text}"
            if operation.template in {"/fhir/RiskAssessment", "/fhir/Patient"}:
                assert response.json()["entry"], f"{operation} by {who} found nothing"


async def test_a_service_user_lists_and_batch_reads_only_their_own(api: RiskApi) -> None:
    home = await household(api)
    bob = auth(api.tokens.service_user(home.bob))
    listed = await api.client.get("/v1/risk-assessments", headers=bob)
    assert _ids(listed.json()) == {home.bobs["id"]}
    by_alice = await api.client.get("/v1/risk-assessments",
                                    params={"service_user_id": home.alice}, headers=bob)
    assert by_alice.status_code == 404
    own = await api.client.get("/v1/risk-assessments", headers=auth(home.alice_token))
    assert _ids(own.json()) == {home.assessment["id"]}


@pytest.mark.parametrize("holder", ["staff", "service user"])
async def test_a_token_without_the_risk_assessment_scope_gets_403_everywhere(
        api: RiskApi, holder: str) -> None:
    home = await household(api)
    token = (api.tokens.clinician("staff-in-team", [home.team], scope="user/Goal.cruds")
             if holder == "staff" else
             api.tokens.service_user(home.alice, scope="patient/Goal.cruds"))
    before = await home.read_back()
    for operation in await _operations(api):
        response = await _send(home, operation, token, '"1"')
        assert_refused(response, 403, "insufficient-scope", str(operation))
    assert await home.read_back() == before


async def test_a_read_only_scope_cannot_change_anything(api: RiskApi) -> None:
    home = await household(api)
    token = api.tokens.clinician("staff-in-team", [home.team], scope="user/RiskAssessment.rs")
    before = await home.read_back()
    changing = [op for op in await _operations(api) if op.changes]
    assert len(changing) >= 5
    for operation in changing:
        response = await _send(home, operation, token, '"1"')
        assert response.status_code == 403, f"{operation}: {response.text}"
    assert await home.read_back() == before


async def test_refused_and_allowed_decisions_are_in_the_audit_trail(api: RiskApi) -> None:
    home = await household(api)
    record = home.assessment["id"]
    bob = api.tokens.service_user(home.bob)
    assert (await api.client.get(f"/v1/risk-assessments/{record}",
                                 headers=auth(bob))).status_code == 404
    assert (await api.client.patch(f"/v1/risk-assessments/{record}",
                                   json={"review_date": "2031-01-01"},
                                   headers=auth(bob, '"1"'))).status_code == 404
    assert (await api.client.get(f"/v1/risk-assessments/{record}",
                                 headers=auth(home.alice_token))).status_code == 200
    await api.client.app.state.kit.audit.flush()  # type: ignore[attr-defined]
    admin = auth(api.tokens.admin("auditor", []))
    denied = await api.client.get("/v1/audit-events", params={"record_id": record,
                                                              "actor": home.bob}, headers=admin)
    assert denied.status_code == 200, denied.text
    assert {(e["action"], e["outcome"]) for e in denied.json()["items"]} >= {
        ("read", "denied"), ("edited", "denied")}
    allowed = await api.client.get("/v1/audit-events", params={"record_id": record,
                                                               "actor": home.alice},
                                   headers=admin)
    assert ("read", "allowed") in {(e["action"], e["outcome"]) for e in allowed.json()["items"]}
    assert SECRET_WORDS not in denied.text + allowed.text


async def test_a_co_assessment_cannot_be_moved_to_another_person_or_team(api: RiskApi) -> None:
    home = await household(api)
    before = await home.read_back()
    for move in ({"team_id": home.other_team}, {"service_user_id": home.bob}):
        response = await api.client.patch(f"/v1/risk-assessments/{home.assessment['id']}",
                                          json=move, headers=auth(home.team_staff, '"1"'))
        assert response.status_code == 422, move
    assert await home.read_back() == before
