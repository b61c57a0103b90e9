"""Object-level access on every crisis-plans endpoint, on SQLite and PostgreSQL: a service user
reaches only their own plan, staff only their teams' plans (break-glass aside, which needs a
crisis-team clinician and a reason); a token without the CarePlan scope gets 403. Every
refused change is read back with an allowed token to show it changed nothing.
"""

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
from plan_operations import (
    Operation,
    assert_refused,
    fill_path,
    protected_operations,
    query_for,
    valid_body,
)
from sqlmodel import col, func, select

from recovery.common.testing.access import intruders
from recovery.common.testing.plugin import TokenFactory, auth, unique
from recovery.crisis_plans.models import BreakGlassAccess

SECRET_WORDS = "The smell of the hospital ward"


class PlansClient(Protocol):
    client: httpx.AsyncClient
    tokens: TokenFactory


@dataclass
class Household:
    """Alice's plan in her team (agreed, then edited into a new draft), and Bob's."""

    api: PlansClient
    team: str
    other_team: str
    alice: str
    bob: str
    plan: dict[str, Any]

    @property
    def alice_token(self) -> str:
        return self.api.tokens.service_user(self.alice)

    @property
    def team_staff(self) -> str:
        return self.api.tokens.clinician("staff-in-team", [self.team])

    def intruders(self) -> dict[str, str]:
        """Callers with every scope they could need, but no claim on Alice's plan."""
        return {
            **intruders(self.api.tokens, other_person=self.bob, other_team=self.other_team),
            # A crisis-team clinician reaches the plan only through break-glass.
            "a crisis-team clinician reading directly": self.api.tokens.clinician(
                "crisis-out", ["crisis-team"]),
        }

    def path(self, template: str) -> str:
        return fill_path(template, plan_id=self.plan["id"], service_user_id=self.alice,
                         team_id=self.team)

    async def read_back(self) -> tuple[str, str, int, int, int]:
        """The plan, its ETag, how many versions and decisions, how many break-glass reads."""
        client, headers = self.api.client, auth(self.team_staff)
        base = f"/v1/crisis-plans/{self.plan['id']}"
        plan = await client.get(base, headers=headers)
        versions = await client.get(f"{base}/versions", headers=headers)
        decisions = await client.get(f"{base}/medication-decisions", headers=headers)
        assert plan.status_code == versions.status_code == decisions.status_code == 200
        kit = client.app.state.kit  # type: ignore[attr-defined]
        await kit.audit.flush()
        async with kit.sessions() as session:
            glass = (await session.exec(select(func.count()).where(
                col(BreakGlassAccess.service_user_id) == self.alice))).one()
        return (plan.text, plan.headers["etag"], len(versions.json()["items"]),
                len(decisions.json()["items"]),
                int(glass))


async def household(api: PlansClient) -> Household:
    team, other_team, alice, bob = unique("team"), unique("team"), unique("su"), unique("su")
    client, tokens = api.client, api.tokens
    staff, own = tokens.clinician("staff-in-team", [team]), tokens.service_user(alice)
    created = await client.post("/v1/crisis-plans", headers=auth(staff), json={
        "service_user_id": alice, "team_id": team, "triggers": [SECRET_WORDS]})
    assert created.status_code == 201, created.text
    plan = created.json()
    for token in (own, staff):
        signed = await client.post(f"/v1/crisis-plans/{plan['id']}/signatures",
                                   json={"content_hash": plan["content_hash"]},
                                   headers=auth(token, '"1"'))
        assert signed.status_code == 201, signed.text
    edited = await client.put(f"/v1/crisis-plans/{plan['id']}", headers=auth(own, '"1"'),
                              json={"triggers": [SECRET_WORDS, "Loud voices"]})
    assert edited.status_code == 200, edited.text
    bobs = await client.post("/v1/crisis-plans", headers=auth(tokens.service_user(bob)),
                             json={"service_user_id": bob, "team_id": other_team})
    assert bobs.status_code == 201, bobs.text
    return Household(api, team, other_team, alice, bob, edited.json())


async def _operations(api: PlansClient) -> list[Operation]:
    openapi = (await api.client.get("/openapi.json")).json()
    operations = [op for op in protected_operations(openapi) if not op.is_audit]
    assert len(operations) == 24
    return operations


#: What an intruder gets from each operation: records of others are not revealed (404), a
#: plan for someone else is not written (403), break-glass is for crisis teams (403), and a
#: batch read or a FHIR search answers with nothing for the person.
INTRUDER_ANSWERS = {
    "POST /v1/crisis-plans": (403, "forbidden"),
    "POST /v1/people/{service_user_id}/crisis-plan:break-glass": (
        403, "not-a-crisis-team-clinician"),
    "POST /v1/crisis-plans:batch-read": (200, ""),
    "GET /fhir/CarePlan": (200, ""),
    "GET /fhir/Patient": (200, ""),
}
#: The person's plan list: 404 for callers who reach nobody by it (other service users,
#: staff of no team); staff of other teams get the empty page a person without a plan gives.
PERSON_LIST = "GET /v1/people/{service_user_id}/crisis-plans"


async def test_nobody_outside_the_persons_reach_uses_any_operation_and_nothing_changes(
        api: PlansClient) -> None:
    home = await household(api)
    before = await home.read_back()
    for operation in await _operations(api):
        path = home.path(operation.template)
        body = valid_body(operation, service_user_id=home.alice, team_id=home.team,
                          content_hash=home.plan["content_hash"])
        status, kind = INTRUDER_ANSWERS.get(str(operation), (404, "not-found"))
        for intruder, token in home.intruders().items():
            if (str(operation) in INTRUDER_ANSWERS and "crisis-team" in intruder
                    and "break-glass" in operation.template):
                continue  # that one is the crisis team's own route, tested below
            # A stale or missing If-Match must not give the plan away with a 412 or 428.
            for etag in (f'"{home.plan["version"]}"', '"999"', None):
                response = await api.client.request(
                    operation.method, path, json=body, headers=auth(token, etag),
                    params=query_for(operation, plan_id=home.plan["id"],
                                     service_user_id=home.alice))
                what = f"{operation} by {intruder} ({etag})"
                if str(operation) == PERSON_LIST and response.status_code == 200:
                    assert "clinician" in intruder or "admin" in intruder, what
                    assert response.json() == {"items": [], "next_cursor": None}, what
                elif status == 200 and operation.template.startswith("/fhir/"):
                    assert response.status_code == 200, what
                    assert response.json()["entry"] == [], what
                elif status == 200:
                    assert response.status_code == 200, what
                    assert response.json()["results"][0]["active_plan"] is None, what
                else:
                    assert_refused(response, status, kind, what)
                assert SECRET_WORDS not in response.text, what
                assert "etag" not in response.headers, what
    assert await home.read_back() == before


@pytest.mark.parametrize("caller", ["the person", "their team"])
async def test_the_person_and_their_team_reach_every_operation(api: PlansClient,
                                                                caller: str) -> None:
    """The control for the refusals above: the same requests go through for them."""
    home = await household(api)
    token = home.alice_token if caller == "the person" else home.team_staff
    # Withdrawing ends the active plan and marking it in error closes it, so they go last.
    operations = sorted(await _operations(api),
                        key=lambda op: op.template.endswith(("withdraw-agreement",
                                                             "entered-in-error")))
    for operation in operations:
        if "break-glass" in operation.template or operation.template == "/v1/crisis-plans":
            continue  # break-glass is the crisis team's; Alice already has her one plan
        if caller == "the person" and operation.template.startswith("/v1/teams/"):
            continue  # team lists are for staff
        if caller == "their team" and operation.template.endswith("withdraw-agreement"):
            continue  # only the person withdraws
        if caller == "the person" and operation.template.endswith("entered-in-error"):
            continue  # staff mark a plan made in error
        current = (await api.client.get(f"/v1/crisis-plans/{home.plan['id']}",
                                        headers=auth(token))).json()
        body = valid_body(operation, service_user_id=home.alice, team_id=home.team,
                          content_hash=current["content_hash"])
        response = await api.client.request(operation.method, home.path(operation.template),
                                            json=body,
                                            headers=auth(token, f'"{current["version"]}"'),
                                            params=query_for(operation, plan_id=home.plan["id"],
                                                             service_user_id=home.alice))
        assert response.status_code in (200, 201), f"{caller}: {operation}: {response.text}"
        if operation.template in {"/fhir/CarePlan", "/fhir/Patient"}:
            assert response.json()["entry"], f"{caller}: {operation} found nothing"


async def test_break_glass_reaches_the_active_plan_for_a_crisis_team_clinician_only(
        api: PlansClient) -> None:
    home = await household(api)
    path = f"/v1/people/{home.alice}/crisis-plan:break-glass"
    body = {"reason": "Brought to the emergency department confused"}
    responder = api.tokens.clinician("crisis-1", ["crisis-team"])
    allowed = await api.client.post(path, json=body, headers=auth(responder))
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["plan"]["version"] == 1  # the agreed version, not the new draft
    # Through break-glass only: the same clinician still cannot read the plan directly.
    assert_refused(await api.client.get(f"/v1/crisis-plans/{home.plan['id']}",
                                        headers=auth(responder)), 404, "not-found", "direct")


async def test_nobody_writes_a_plan_for_another_person_or_into_another_team(
        api: PlansClient) -> None:
    home = await household(api)
    carol = unique("su")
    body = {"service_user_id": carol, "team_id": home.team}
    for intruder, token in home.intruders().items():
        refused = await api.client.post("/v1/crisis-plans", json=body, headers=auth(token))
        assert_refused(refused, 403, "forbidden", f"a plan for Carol written by {intruder}")
    staff = auth(home.team_staff)
    assert_refused(await api.client.get(f"/v1/people/{carol}/crisis-plan", headers=staff),
                   404, "not-found", "Carol has no plan yet")
    made = await api.client.post("/v1/crisis-plans", json=body, headers=staff)
    assert made.status_code == 201, made.text


@pytest.mark.parametrize("holder", ["staff", "service user"])
async def test_a_token_without_a_care_plan_scope_gets_403_on_every_operation(
        api: PlansClient, holder: str) -> None:
    home = await household(api)
    token = (api.tokens.clinician("staff-in-team", [home.team, "crisis-team"],
                                  scope="user/Goal.cruds")
             if holder == "staff" else
             api.tokens.service_user(home.alice, scope="patient/Goal.cruds"))
    before = await home.read_back()
    for operation in await _operations(api):
        response = await api.client.request(
            operation.method, home.path(operation.template),
            headers=auth(token, f'"{home.plan["version"]}"'),
            params=query_for(operation, plan_id=home.plan["id"], service_user_id=home.alice),
            json=valid_body(operation, service_user_id=home.alice, team_id=home.team,
                            content_hash=home.plan["content_hash"]))
        assert_refused(response, 403, "insufficient-scope", str(operation))
    assert await home.read_back() == before


async def test_a_read_only_scope_cannot_change_anything(api: PlansClient) -> None:
    home = await household(api)
    token = api.tokens.clinician("staff-in-team", [home.team], scope="user/CarePlan.rs")
    before = await home.read_back()
    changing = [op for op in await _operations(api) if op.changes]
    assert len(changing) == 6
    for operation in changing:
        response = await api.client.request(
            operation.method, home.path(operation.template),
            headers=auth(token, f'"{home.plan["version"]}"'),
            json=valid_body(operation, service_user_id=home.alice, team_id=home.team,
                            content_hash=home.plan["content_hash"]))
        assert_refused(response, 403, "insufficient-scope", str(operation))
    assert await home.read_back() == before
    assert (await api.client.get(f"/v1/crisis-plans/{home.plan['id']}",
                                 headers=auth(token))).status_code == 200


async def test_refused_reads_and_changes_are_in_the_audit_trail_as_denied(
        api: PlansClient) -> None:
    home = await household(api)
    plan_id = home.plan["id"]
    bob = api.tokens.service_user(home.bob)
    await api.client.get(f"/v1/crisis-plans/{plan_id}", headers=auth(bob))
    await api.client.put(f"/v1/crisis-plans/{plan_id}", json={}, headers=auth(bob, '"2"'))
    await api.client.app.state.kit.audit.flush()  # type: ignore[attr-defined]
    trail = await api.client.get("/v1/audit-events", params={"record_id": plan_id,
                                                             "actor": home.bob},
                                 headers=auth(api.tokens.admin("auditor", [])))
    assert trail.status_code == 200, trail.text
    entries = {(e["action"], e["outcome"]) for e in trail.json()["items"]}
    assert entries >= {("read", "denied"), ("update", "denied")}
