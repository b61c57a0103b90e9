"""Bad input on the goals API, on SQLite and PostgreSQL: malformed JSON, oversized bodies,
wrong types, unknown enum values, over-long strings, unknown fields, invalid cursors and dates
each get a 4xx problem document (with ``invalid-params`` for validation), and change nothing:
goals, versions, reviews and outbox rows are counted before and after.

Unknown body fields are rejected, everywhere and at every depth: a misspelt field silently
ignored would look saved to the caller and be lost. Unknown query parameters are ignored, as
HTTP servers usually do.

The same under /fhir, where refusals are OperationOutcomes: test_goal_fhir_bad_input.py.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

import httpx
import pytest

from recovery.common.pagination import encode_cursor
from recovery.common.testing.access import row_counts
from recovery.common.testing.plugin import TokenFactory, unique

PROBLEM = "application/problem+json"
COUNTED_TABLES = ("goal", "goal_version", "goal_review", "outbox_event")


class GoalsClient(Protocol):
    """The ``api`` fixture of the goals tests: an in-process client and token factories."""

    client: httpx.AsyncClient
    tokens: TokenFactory


@dataclass
class Target:
    """A person's active goal (with a step) and a proposal, and callers allowed to change them."""

    api: GoalsClient
    person: str
    team: str
    goal: dict[str, Any]
    proposal: dict[str, Any]

    @property
    def person_token(self) -> str:
        return self.api.tokens.service_user(self.person)

    def headers(self, *, etag: str | None = None, token: str | None = None,
                content_type: str | None = "application/json") -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token or self.person_token}"}
        if etag is not None:
            headers["If-Match"] = etag
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    def path(self, template: str) -> str:
        goal = self.proposal if template.endswith(("/accept", "/decline")) else self.goal
        return (template.replace("{goal_id}", goal["id"])
                .replace("{step_id}", self.goal["steps"][0]["id"]))

    def etag(self, template: str) -> str:
        goal = self.proposal if template.endswith(("/accept", "/decline")) else self.goal
        return f'"{goal["version"]}"'

    async def counts(self) -> dict[str, int]:
        """Rows in the tables a change writes to (the audit trail is expected to grow)."""
        return await row_counts(self.api.client, COUNTED_TABLES)

    async def state(self) -> tuple[dict[str, int], str, str]:
        """Row counts and the two goals exactly as they read now."""
        reads = [await self.api.client.get(f"/v1/goals/{goal['id']}",
                                           headers=self.headers(content_type=None))
                 for goal in (self.goal, self.proposal)]
        assert all(read.status_code == 200 for read in reads)
        return await self.counts(), reads[0].text, reads[1].text


@pytest.fixture
async def target(api: GoalsClient) -> AsyncIterator[Target]:
    person, team = unique("su"), unique("team")
    own = {"Authorization": f"Bearer {api.tokens.service_user(person)}"}
    goal = await api.client.post("/v1/goals", headers=own, json={
        "service_user_id": person, "team_id": team, "description": "Find a flat near my sister",
        "steps": [{"who": "service_user", "what": "Register with the council"}]})
    assert goal.status_code == 201, goal.text
    staff = {"Authorization": f"Bearer {api.tokens.clinician('staff-1', [team])}"}
    proposal = await api.client.post("/v1/goals", headers=staff, json={
        "service_user_id": person, "team_id": team, "description": "Keep a sleep diary"})
    assert proposal.status_code == 201, proposal.text
    yield Target(api, person, team, goal.json(), proposal.json())


def problem(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == PROBLEM, what
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"], what
    return body


def validation_problem(response: httpx.Response, what: str, field: str | None = None) -> None:
    body = problem(response, 422, what)
    assert body["type"].endswith("/validation"), what
    names = [param["name"] for param in body.get("invalid-params", [])]
    assert names, f"{what}: no invalid-params"
    if field is not None:
        assert any(name == field or name.startswith(field + ".") for name in names), (
            f"{what}: {names} does not name {field}")


#: Every operation that takes a body, with one body it accepts from the person.
BODY_OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "create": ("POST /v1/goals", {"team_id": "<team>", "service_user_id": "<person>",
                                  "description": "Go to a gig"}),
    "batch read": ("POST /v1/goals:batch-read", {"service_user_ids": ["<person>"]}),
    "update": ("PATCH /v1/goals/{goal_id}", {"why_it_matters": "I miss music"}),
    "accept": ("POST /v1/goals/{goal_id}/accept", {"reason": "Yes"}),
    "decline": ("POST /v1/goals/{goal_id}/decline", {"reason": "No"}),
    "status": ("POST /v1/goals/{goal_id}/status", {"status": "on-hold"}),
    "add step": ("POST /v1/goals/{goal_id}/steps", {"who": "peer", "what": "Come along"}),
    "update step": ("PATCH /v1/goals/{goal_id}/steps/{step_id}", {"done": True}),
    "review": ("POST /v1/goals/{goal_id}/reviews", {"achievement_status": "improving"}),
}


def body_for(target: Target, name: str, **changes: Any) -> tuple[str, str, dict[str, Any]]:
    """Method, path and a valid body for an operation, with some fields changed or added."""
    operation, body = BODY_OPERATIONS[name]
    method, template = operation.split(" ", 1)
    filled = json.loads(json.dumps(body).replace("<team>", target.team)
                        .replace("<person>", target.person))
    filled.update(changes)
    return method, template, filled


async def send(target: Target, method: str, template: str, *, content: bytes | None = None,
               body: Any = None, content_type: str | None = "application/json",
               extra_headers: dict[str, str] | None = None) -> httpx.Response:
    headers = target.headers(etag=target.etag(template), content_type=content_type)
    headers.update(extra_headers or {})
    if content is None and body is not None:
        content = json.dumps(body).encode()
    return await target.api.client.request(method, target.path(template), content=content,
                                           headers=headers)


# --- bodies that are not JSON, or too big ---------------------------------------------------

MALFORMED = {
    "cut short": b'{"description": "Go to a gig", ',
    "not JSON at all": b"description=Go to a gig",
    "trailing garbage": b'{"reason": "Yes"} {"reason": "No"}',
    "single quotes": b"{'reason': 'Yes'}",
    "not UTF-8": b'{"reason": "\xff\xfe\xfa"}',
    "nested beyond any sense": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("operation", list(BODY_OPERATIONS))
async def test_malformed_json_is_a_400_problem_and_changes_nothing(target: Target,
                                                                   operation: str) -> None:
    before = await target.state()
    method, template, _ = body_for(target, operation)
    for what, content in MALFORMED.items():
        response = await send(target, method, template, content=content)
        assert problem(response, 400, f"{operation}, {what}")["type"].endswith(
            "/malformed-json"), f"{operation}, {what}"
    assert await target.state() == before


@pytest.mark.parametrize("operation", list(BODY_OPERATIONS))
async def test_json_that_is_not_an_object_is_a_422_problem_and_changes_nothing(
        target: Target, operation: str) -> None:
    before = await target.state()
    method, template, _ = body_for(target, operation)
    for what, body in {"a list": [{"reason": "Yes"}], "a string": "Yes", "a number": 7,
                       "true": True}.items():
        response = await send(target, method, template, body=body)
        validation_problem(response, f"{operation}, {what}")
    assert await target.state() == before


async def test_a_required_body_that_is_missing_is_a_422_problem(target: Target) -> None:
    before = await target.state()
    for operation in ("create", "batch read", "update", "status", "add step", "update step",
                      "review"):
        method, template, _ = body_for(target, operation)
        for what, content in {"empty": b"", "null": b"null"}.items():
            response = await send(target, method, template, content=content)
            validation_problem(response, f"{operation}, {what} body")
    assert await target.state() == before


@pytest.mark.parametrize("declared", [True, False], ids=["with Content-Length", "chunked"])
async def test_an_oversized_body_is_a_413_problem_and_changes_nothing(target: Target,
                                                                      declared: bool) -> None:
    before = await target.state()
    for operation in BODY_OPERATIONS:
        method, template, body = body_for(target, operation, padding="x" * 300_000)
        content = json.dumps(body).encode()
        headers = target.headers(etag=target.etag(template))
        if declared:
            response = await target.api.client.request(method, target.path(template),
                                                       content=content, headers=headers)
        else:
            async def chunks(data: bytes = content) -> AsyncIterator[bytes]:
                for start in range(0, len(data), 16_384):
                    yield data[start:start + 16_384]

            response = await target.api.client.request(method, target.path(template),
                                                       content=chunks(), headers=headers)
            assert "content-length" not in {k.lower() for k in response.request.headers}
        assert problem(response, 413, operation)["type"].endswith("/body-too-large")
    assert await target.state() == before


async def test_a_content_length_that_is_not_a_number_is_a_400_problem(target: Target) -> None:
    before = await target.state()
    method, template, body = body_for(target, "update")
    response = await send(target, method, template, body=body,
                          extra_headers={"Content-Length": "lots"})
    problem(response, 400, "Content-Length: lots")
    assert await target.state() == before


async def test_a_body_sent_as_form_data_is_a_4xx_problem(target: Target) -> None:
    before = await target.state()
    method, template, _ = body_for(target, "update")
    response = await send(target, method, template, content=b"why_it_matters=Music",
                          content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await target.state() == before


# --- fields of the wrong type, value or length ----------------------------------------------

LONG = "x" * 2001
FUTURE = (date.today() + timedelta(days=3)).isoformat()

#: (operation, field, bad value): each must be refused naming body.<field>.
BAD_FIELDS: list[tuple[str, str, Any]] = [
    # wrong types
    ("create", "service_user_id", 12345),
    ("create", "team_id", ["team-a"]),
    ("create", "description", {"text": "Go to a gig"}),
    ("create", "chime_tags", "hope"),
    ("create", "strengths", [1, 2]),
    ("create", "steps", {"who": "peer", "what": "Come"}),
    ("create", "supporters", [{"role": "carer", "name": ""}]),
    ("create", "target_date", True),
    ("batch read", "service_user_ids", "su-1"),
    ("batch read", "limit_per_person", "ten"),
    ("update", "serves_goal_ids", "goal-1"),
    ("update", "description", None),
    ("update step", "done", "maybe"),
    ("update step", "done", None),
    ("review", "rating", "seven"),
    ("review", "rating", 7.5),
    ("review", "attendees", [{"role": "staff", "name": 3}]),
    # unknown enum values
    ("create", "kind", "spiritual"),
    ("create", "life_area", "outer_space"),
    ("create", "chime_tags", ["joy"]),
    ("create", "supporters", [{"role": "landlord", "name": "Ann"}]),
    ("status", "status", "finished"),
    ("status", "status", "Completed"),
    ("status", "achievement_status", "great"),
    ("add step", "who", "dog"),
    ("review", "achievement_status", "brilliant"),
    ("review", "attendees", [{"role": "neighbour", "name": "Jo"}]),
    ("batch read", "status", ["done"]),
    # out of range, too long, too many
    ("create", "service_user_id", "s" * 65),
    ("create", "service_user_id", "has spaces"),
    ("create", "service_user_id", ""),
    ("create", "description", LONG),
    ("create", "description", ""),
    ("create", "why_it_matters", LONG),
    ("create", "strengths", ["y" * 501]),
    ("create", "chime_tags", ["hope", "meaning", "identity", "empowerment", "connectedness",
                              "hope"]),
    ("create", "steps", [{"who": "peer", "what": "Come"}] * 51),
    ("update", "why_it_matters", LONG),
    ("accept", "reason", LONG),
    ("decline", "reason", ""),
    ("status", "reason", LONG),
    ("add step", "what", "z" * 1001),
    ("review", "rating", 11),
    ("review", "rating", -1),
    ("review", "rating", 10**30),
    ("review", "rating", float("nan")),
    ("review", "rating", float("inf")),
    ("review", "own_words", "w" * 4001),
    ("batch read", "service_user_ids", []),
    ("batch read", "service_user_ids", [f"su-{i}" for i in range(101)]),
    ("batch read", "limit_per_person", 0),
    # invalid dates
    ("create", "target_date", "2026-02-30"),
    ("create", "target_date", "tomorrow"),
    ("create", "target_date", "2026-13-01"),
    ("create", "target_date", "31/12/2026"),
    ("update", "target_date", "2026-06-31"),
    ("add step", "by_when", "next week"),
    ("update step", "by_when", "2026-00-10"),
    ("review", "reviewed_on", "yesterday"),
    ("review", "reviewed_on", "2026-02-29"),
]


@pytest.mark.parametrize(("operation", "field", "value"), BAD_FIELDS,
                         ids=[f"{op}.{field}={str(value)[:20]}" for op, field, value in BAD_FIELDS])
async def test_a_bad_field_is_a_422_problem_naming_it_and_changes_nothing(
        target: Target, operation: str, field: str, value: Any) -> None:
    before = await target.state()
    method, template, body = body_for(target, operation, **{field: value})
    response = await send(target, method, template, body=body)
    validation_problem(response, f"{operation} with {field}={str(value)[:40]}", f"body.{field}")
    assert await target.state() == before


async def test_a_review_dated_in_the_future_is_refused_and_changes_nothing(
        target: Target) -> None:
    before = await target.state()
    method, template, body = body_for(target, "review", reviewed_on=FUTURE)
    response = await send(target, method, template, body=body)
    assert problem(response, 422, "future review")["invalid-params"][0]["name"] == "reviewed_on"
    assert await target.state() == before


async def test_a_garbled_or_oversized_if_match_is_a_4xx_problem_and_changes_nothing(
        target: Target) -> None:
    before = await target.state()
    method, template, body = body_for(target, "update")
    stale = await send(target, method, template, body=body,
                       extra_headers={"If-Match": 'W/"not-a-version", garbage'})
    assert problem(stale, 412, "garbled If-Match")["type"].endswith("/version-conflict")
    huge = await send(target, method, template, body=body,
                      extra_headers={"If-Match": '"1"' + " " * 300})
    validation_problem(huge, "If-Match of 300 characters", "header.If-Match")
    assert await target.state() == before


#: Text that no store can hold faithfully: NUL (PostgreSQL refuses it in text) and lone
#: UTF-16 surrogates (not encodable as UTF-8). Raw JSON, so the escapes reach the server.
UNSTORABLE = {"a NUL character": r"Go to a gig\u0000", "a lone surrogate": r"Go to a gig\ud800"}


@pytest.mark.parametrize("what", list(UNSTORABLE))
@pytest.mark.parametrize("operation", ["create", "update", "add step", "review"])
async def test_text_that_cannot_be_stored_is_a_4xx_problem_and_changes_nothing(
        target: Target, operation: str, what: str) -> None:
    field = {"create": "description", "update": "why_it_matters", "add step": "what",
             "review": "own_words"}[operation]
    before = await target.state()
    method, template, body = body_for(target, operation, **{field: "__TEXT__"})
    content = json.dumps(body).replace("__TEXT__", UNSTORABLE[what]).encode()
    response = await send(target, method, template, content=content)
    assert 400 <= response.status_code < 500, f"{operation}: {response.status_code}"
    problem(response, response.status_code, f"{operation} with {what}")
    assert await target.state() == before


# --- unknown fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("operation", list(BODY_OPERATIONS))
async def test_an_unknown_field_is_rejected_by_name_and_changes_nothing(target: Target,
                                                                        operation: str) -> None:
    before = await target.state()
    for field in ("lifecycle_status", "version", "is_admin", "Description"):
        method, template, body = body_for(target, operation, **{field: "anything"})
        response = await send(target, method, template, body=body)
        validation_problem(response, f"{operation} with {field}", f"body.{field}")
    assert await target.state() == before


async def test_unknown_fields_nested_in_a_body_are_rejected_too(target: Target) -> None:
    before = await target.state()
    nested: list[tuple[str, dict[str, Any]]] = [
        ("create", {"supporters": [{"role": "carer", "name": "Mum", "phone": "0700"}]}),
        ("create", {"steps": [{"who": "peer", "what": "Come", "done": True}]}),
        ("review", {"attendees": [{"role": "carer", "name": "Mum", "age": 60}]}),
    ]
    for operation, changes in nested:
        method, template, body = body_for(target, operation, **changes)
        response = await send(target, method, template, body=body)
        validation_problem(response, f"{operation} with {changes}")
    assert await target.state() == before


async def test_the_openapi_document_says_request_bodies_allow_no_unknown_fields(
        api: GoalsClient) -> None:
    openapi = (await api.client.get("/openapi.json")).json()
    schemas = openapi["components"]["schemas"]
    open_bodies = []
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media["schema"].get("$ref") or next(
                    (s["$ref"] for s in media["schema"].get("anyOf", []) if "$ref" in s), "")
                name = ref.rsplit("/", 1)[-1]
                if schemas.get(name, {}).get("additionalProperties") is not False:
                    open_bodies.append(f"{method.upper()} {path}: {name}")
    assert open_bodies == []


# --- query strings: cursors, sizes, filters -------------------------------------------------


def _b64(raw: str) -> str:
    import base64

    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


BAD_CURSORS = {
    "not base64": "%%%not-a-cursor%%%",
    "base64 of nonsense": _b64("hello"),
    "a JSON object": _b64('{"after": "2026-01-01"}'),
    "three parts": _b64('["2026-01-01T00:00:00+00:00", "a", "b"]'),
    "an id that is not text": _b64('["2026-01-01T00:00:00+00:00", 7]'),
    "a time that is not a time": _b64('["last tuesday", "a"]'),
    "a naive time": _b64('["2026-01-01T00:00:00", "a"]'),
    "a version that is not a number": encode_cursor("seven", "a"),
}


@pytest.mark.parametrize("where", ["/v1/goals", "/v1/goals/{goal_id}/reviews",
                                   "/v1/goals/{goal_id}/versions"])
async def test_an_invalid_cursor_is_a_400_problem(target: Target, where: str) -> None:
    name = "cursor"
    refused = []
    for what, cursor in BAD_CURSORS.items():
        if where.endswith("/versions") and what == "a time that is not a time":
            continue  # versions page by number; a string there is covered by the last case
        if where.endswith(("/reviews", "/versions")) and what == "a naive time":
            continue  # reviews page by day and versions by number: no time zone to miss
        response = await target.api.client.get(target.path(where), params={name: cursor},
                                                headers=target.headers(content_type=None))
        if response.status_code != 400 or response.headers["content-type"] != PROBLEM:
            refused.append(f"{what}: {response.status_code} {response.text[:120]}")
        elif not response.json()["type"].endswith("/invalid-cursor"):
            refused.append(f"{what}: {response.json()['type']}")
    assert refused == []
    too_long = await target.api.client.get(target.path(where), params={name: "a" * 600},
                                           headers=target.headers(content_type=None))
    validation_problem(too_long, f"{where} with a 600-character cursor", f"query.{name}")


BAD_QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/goals", {"limit": "ten"}, "query.limit"),
    ("/v1/goals", {"limit": 0}, "query.limit"),
    ("/v1/goals", {"limit": -5}, "query.limit"),
    ("/v1/goals", {"limit": 10**40}, "query.limit"),
    ("/v1/goals", {"status": "finished"}, "query.status"),
    ("/v1/goals", {"kind": "spiritual"}, "query.kind"),
    ("/v1/goals", {"service_user_id": "s" * 65}, "query.service_user_id"),
    ("/v1/goals", {"team_id": ""}, "query.team_id"),
    ("/v1/goals/{goal_id}/reviews", {"limit": "1.5"}, "query.limit"),
    ("/v1/goals/{goal_id}/versions", {"limit": "all"}, "query.limit"),
    ("/v1/teams/{team}/figures", {"reviewed_within_days": 0}, "query.reviewed_within_days"),
    ("/v1/teams/{team}/figures", {"reviewed_within_days": "a month"},
     "query.reviewed_within_days"),
]


@pytest.mark.parametrize(("where", "params", "field"), BAD_QUERIES,
                         ids=[f"{w} {p}"[:60] for w, p, _ in BAD_QUERIES])
async def test_a_bad_query_parameter_is_a_422_problem_naming_it(
        target: Target, where: str, params: dict[str, Any], field: str) -> None:
    token = target.api.tokens.manager("manager-1", [target.team]) if "figures" in where else None
    response = await target.api.client.get(
        target.path(where).replace("{team}", target.team), params=params,
        headers=target.headers(content_type=None, token=token))
    validation_problem(response, f"{where} {params}", field)


async def test_a_goal_id_that_is_too_long_or_strange_gets_a_4xx_problem(target: Target) -> None:
    for goal_id in ("g" * 65, "%00", "..%2F..%2Fetc", "' OR 1=1 --", "ü" * 30):
        response = await target.api.client.get(f"/v1/goals/{goal_id}",
                                                headers=target.headers(content_type=None))
        assert response.status_code in (400, 404, 422), f"{goal_id}: {response.status_code}"
        problem(response, response.status_code, goal_id)
