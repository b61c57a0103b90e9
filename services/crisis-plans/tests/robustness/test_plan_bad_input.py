"""Bad input on the crisis-plans API, on SQLite and PostgreSQL: malformed JSON, wrong types,
unknown fields at any depth, unknown enum values, over-long strings, too many items, bad dates,
hashes and cursors each get a 4xx problem document, and change nothing: plans, versions,
signatures, decisions, break-glass records and outbox rows are counted before and after."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
from plans_api import SHARED_DECISION

from recovery.common.testing.access import row_counts
from recovery.common.testing.plugin import TokenFactory, unique

PROBLEM = "application/problem+json"
COUNTED_TABLES = ("crisis_plan", "crisis_plan_version", "crisis_plan_signature",
                  "medication_decision", "crisis_plan_break_glass", "outbox_event")


class PlansClient(Protocol):
    client: httpx.AsyncClient
    tokens: TokenFactory


@dataclass
class Target:
    """A person's agreed plan, and callers allowed to change it."""

    api: PlansClient
    person: str
    team: str
    plan: dict[str, Any]

    def token(self, template: str) -> str:
        if template.endswith(":break-glass"):
            return self.api.tokens.clinician("crisis-1", ["crisis-team"])
        if template == "/v1/crisis-plans":
            return self.api.tokens.clinician("staff-1", [self.team])
        return self.api.tokens.service_user(self.person)

    async def state(self) -> tuple[dict[str, int], str]:
        counts = await row_counts(self.api.client, COUNTED_TABLES)
        read = await self.api.client.get(
            f"/v1/crisis-plans/{self.plan['id']}",
            headers={"Authorization": f"Bearer {self.token('')}"})
        assert read.status_code == 200
        return counts, read.text


@pytest.fixture
async def target(api: PlansClient) -> AsyncIterator[Target]:
    person, team = unique("su"), unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    created = await api.client.post("/v1/crisis-plans",
                                    headers={"Authorization": f"Bearer {staff}"},
                                    json={"service_user_id": person, "team_id": team,
                                          "triggers": ["Crowded trains"]})
    assert created.status_code == 201, created.text
    plan = created.json()
    for token in (api.tokens.service_user(person), staff):
        signed = await api.client.post(
            f"/v1/crisis-plans/{plan['id']}/signatures",
            json={"content_hash": plan["content_hash"]},
            headers={"Authorization": f"Bearer {token}", "If-Match": '"1"'})
        assert signed.status_code == 201, signed.text
    yield Target(api, person, team, signed.json())


#: Every operation that takes a body, with a body it accepts.
BODY_OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "create": ("POST /v1/crisis-plans", {"service_user_id": "<new>", "team_id": "<team>"}),
    "batch read": ("POST /v1/crisis-plans:batch-read", {"service_user_ids": ["<person>"]}),
    "change": ("PUT /v1/crisis-plans/{plan_id}", {"triggers": ["Noise"]}),
    "sign": ("POST /v1/crisis-plans/{plan_id}/signatures", {"content_hash": "<hash>"}),
    "withdraw": ("POST /v1/crisis-plans/{plan_id}/withdraw-agreement", {"reason": "Unsure"}),
    "decision": ("POST /v1/crisis-plans/{plan_id}/medication-decisions", SHARED_DECISION),
    "break-glass": ("POST /v1/people/{service_user_id}/crisis-plan:break-glass",
                    {"reason": "Brought in by the police tonight"}),
}


def request_for(target: Target, name: str) -> tuple[str, str, dict[str, Any]]:
    operation, body = BODY_OPERATIONS[name]
    method, template = operation.split(" ", 1)
    filled = json.loads(json.dumps(body).replace("<team>", target.team)
                        .replace("<person>", target.person).replace("<new>", unique("su"))
                        .replace("<hash>", target.plan["content_hash"]))
    return method, template, filled


async def send(target: Target, method: str, template: str, *, content: bytes) -> httpx.Response:
    path = (template.replace("{plan_id}", target.plan["id"])
            .replace("{service_user_id}", target.person))
    headers = {"Authorization": f"Bearer {target.token(template)}",
               "Content-Type": "application/json", "If-Match": f'"{target.plan["version"]}"'}
    return await target.api.client.request(method, path, content=content, headers=headers)


def problem(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == PROBLEM, what
    body: dict[str, Any] = response.json()
    assert body["status"] == status, what
    return body


MALFORMED = {
    "cut short": b'{"triggers": ["Noise"], ',
    "not JSON at all": b"triggers=Noise",
    "single quotes": b"{'reason': 'Yes'}",
    "not UTF-8": b'{"reason": "\xff\xfe\xfa"}',
}


@pytest.mark.parametrize("operation", list(BODY_OPERATIONS))
async def test_malformed_json_is_a_400_problem_and_changes_nothing(target: Target,
                                                                   operation: str) -> None:
    before = await target.state()
    method, template, _ = request_for(target, operation)
    for what, content in MALFORMED.items():
        response = await send(target, method, template, content=content)
        assert problem(response, 400, f"{operation}, {what}")["type"].endswith(
            "/malformed-json")
    assert await target.state() == before


@pytest.mark.parametrize("operation", list(BODY_OPERATIONS))
async def test_unknown_fields_and_non_objects_are_422_and_change_nothing(
        target: Target, operation: str) -> None:
    before = await target.state()
    method, template, body = request_for(target, operation)
    for what, bad in {"an unknown field": {**body, "risk_score": 7},
                      "a list": [body], "a string": "yes"}.items():
        response = await send(target, method, template, content=json.dumps(bad).encode())
        assert problem(response, 422, f"{operation}, {what}")["type"].endswith("/validation")
    assert await target.state() == before


#: Bodies wrong in one way each, for the operations that change a plan.
WRONG_CONTENT: dict[str, dict[str, Any]] = {
    "a list where text belongs": {"triggers": [["Noise"]]},
    "text where a list belongs": {"triggers": "Noise"},
    "an empty item": {"triggers": [""]},
    "an over-long item": {"triggers": ["x" * 1001]},
    "too many items": {"triggers": ["Noise"] * 31},
    "an unknown field inside a contact": {"helpful_contacts": [
        {"name": "Ana", "role": "sister", "how_to_reach": "mobile", "risk_level": "high"}]},
    "a contact without a way to reach them": {"helpful_contacts": [
        {"name": "Ana", "role": "sister"}]},
    "an unknown copy holder": {"copy_holders": [{"kind": "employer"}]},
    "a review date that is not a date": {"review_on": "next spring"},
    "an impossible date": {"review_on": "2031-02-30"},
    "an advance decision refusing nothing": {"advance_decision": {
        "treatments_refused": [], "made_on": "2030-01-01"}},
    "null for a list": {"triggers": None},
}


@pytest.mark.parametrize("what", list(WRONG_CONTENT))
async def test_a_change_with_wrong_content_is_422_and_makes_no_version(target: Target,
                                                                       what: str) -> None:
    before = await target.state()
    response = await send(target, "PUT", "/v1/crisis-plans/{plan_id}",
                          content=json.dumps(WRONG_CONTENT[what]).encode())
    problem(response, 422, what)
    assert await target.state() == before


@pytest.mark.parametrize(("what", "body"), [
    ("not a sha256 hash", {"content_hash": "md5:abc"}),
    ("an unknown party", {"content_hash": "sha256:" + "a" * 64, "party": "nurse"}),
    ("a hash of other content", {"content_hash": "sha256:" + "a" * 64}),
])
async def test_a_bad_signature_is_refused_and_changes_nothing(target: Target, what: str,
                                                              body: dict[str, Any]) -> None:
    before = await target.state()
    response = await send(target, "POST", "/v1/crisis-plans/{plan_id}/signatures",
                          content=json.dumps(body).encode())
    assert response.status_code in (409, 422), f"{what}: {response.text}"
    assert response.headers["content-type"] == PROBLEM
    assert await target.state() == before


@pytest.mark.parametrize(("what", "body"), [
    ("the service user as a required clinician",
     {"clinician_parties_required": ["service_user"]}),
    ("no clinician at all", {"clinician_parties_required": []}),
    ("a person id with spaces", {"service_user_id": "su 1"}),
    ("a team id too long", {"team_id": "t" * 65}),
])
async def test_a_plan_that_cannot_be_agreed_or_named_is_not_created(
        target: Target, what: str, body: dict[str, Any]) -> None:
    before = await target.state()
    full = {"service_user_id": unique("su"), "team_id": target.team, **body}
    response = await send(target, "POST", "/v1/crisis-plans", content=json.dumps(full).encode())
    problem(response, 422, what)
    assert await target.state() == before


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWpzb24", "WzEsMiwzXQ"])
@pytest.mark.parametrize("listing", ["team", "person"])
async def test_an_invalid_cursor_is_a_400_problem(target: Target, cursor: str,
                                                  listing: str) -> None:
    path = (f"/v1/teams/{target.team}/crisis-plans" if listing == "team"
            else f"/v1/people/{target.person}/crisis-plans")
    response = await target.api.client.get(
        path, params={"cursor": cursor},
        headers={"Authorization": f"Bearer {target.token('/v1/crisis-plans')}"})
    problem(response, 400, f"{listing}: {cursor}")


async def test_too_many_people_in_a_batch_read_is_422(target: Target) -> None:
    body = {"service_user_ids": [f"su-{n}" for n in range(101)]}
    response = await send(target, "POST", "/v1/crisis-plans:batch-read",
                          content=json.dumps(body).encode())
    problem(response, 422, "101 people")
