"""The gateway's production posture comes from configuration: depth, token and alias limits,
no batching, no introspection, GraphiQL or field suggestions, masked internal errors, and
parser and validation caches; development keeps GraphiQL and suggestions. Also: the checked
in schema file matches the code."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, make_settings
from recovery.gateway.export_schema import SCHEMA_FILE, schema_text
from recovery.gateway.main import SERVICE, create_app
from recovery.gateway.schema import CACHE_SIZE, MASKED_MESSAGE, build_schema
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.testing import STOPPED, serving


def gateway_app(dev_issuer: DevIssuer, environment: str, **limits: int) -> FastAPI:
    # Every service is "stopped": these tests never get past validation.
    urls = {f"{s}_url": STOPPED for s in ("goals", "crisis_plans", "risk", "training",
                                          "workforce")}
    gateway = GatewaySettings(environment=environment, **urls, **limits)
    settings = make_settings(SERVICE, database_url="sqlite://", jwks_file=dev_issuer.jwks_path)
    return create_app(settings, gateway)


async def gateway_client(dev_issuer: DevIssuer, environment: str,
                         **limits: int) -> AsyncIterator[httpx.AsyncClient]:
    app = gateway_app(dev_issuer, environment, **limits)
    async with LifespanManager(app) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway") as client:
        yield client


@pytest.fixture
async def production(dev_issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async for client in gateway_client(dev_issuer, "production", max_depth=4, max_aliases=3,
                                       max_tokens=200):
        yield client


@pytest.fixture
async def development(dev_issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async for client in gateway_client(dev_issuer, "development"):
        yield client


async def post(client: httpx.AsyncClient, query: str, token: str | None = None) -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


def test_the_checked_in_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "gateway/schema.graphql is stale: run python -m recovery.gateway.export_schema")


def test_every_type_field_and_argument_is_described_for_front_end_developers() -> None:
    schema = build_schema()._schema
    undescribed = []
    for name, kind in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not kind.description:
            undescribed.append(name)
        for field_name, field in (getattr(kind, "fields", None) or {}).items():
            if not field.description:
                undescribed.append(f"{name}.{field_name}")
            undescribed += [f"{name}.{field_name}({arg})"
                            for arg, value in getattr(field, "args", {}).items()
                            if not value.description]
    assert undescribed == []


async def test_production_refuses_introspection(production: httpx.AsyncClient) -> None:
    body = await post(production, "{ __schema { types { name } } }")
    assert body.get("data") is None
    assert "introspection" in body["errors"][0]["message"].lower()


async def test_development_allows_introspection(development: httpx.AsyncClient) -> None:
    body = await post(development, "{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_production_serves_no_graphiql_and_development_does(
        production: httpx.AsyncClient, development: httpx.AsyncClient) -> None:
    html = {"Accept": "text/html"}
    assert (await production.get("/graphql", headers=html)).status_code == 404
    page = await development.get("/graphql", headers=html)
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_production_gives_no_field_suggestions(production: httpx.AsyncClient,
                                                     development: httpx.AsyncClient) -> None:
    typo = "{ me { subb } }"
    refused = (await post(production, typo))["errors"][0]
    assert "Did you mean" not in refused["message"]
    assert refused["extensions"]["code"] == "INVALID_QUERY"
    assert "Did you mean" in (await post(development, typo))["errors"][0]["message"]


MISTAKES = {
    "argument": {"query": '{ course(idd: "c-1") { id } }'},
    "type": {"query": "query ($id: Ii!) { course(id: $id) { id } }"},
    "input field": {"query": 'mutation { proposeGoal(input: {serviceUserId: "p-1", '
                             'teamId: "team-a", descriptio: "Walk"}) { __typename } }'},
    "input field of a variable": {
        "query": "mutation ($goal: GoalInput!) { proposeGoal(input: $goal) { __typename } }",
        "variables": {"goal": {"serviceUserId": "p-1", "teamId": "team-a",
                               "descriptio": "Walk"}}},
}


@pytest.mark.parametrize("mistake", MISTAKES)
async def test_production_gives_no_suggestion_of_any_kind(
        production: httpx.AsyncClient, development: httpx.AsyncClient, mistake: str) -> None:
    # The schema has no enum of its own: enum values' hints are worded as these are.
    refused = (await production.post("/graphql", json=MISTAKES[mistake])).json()
    assert refused.get("data") is None and refused["errors"]
    assert not [e["message"] for e in refused["errors"] if "Did you mean" in e["message"]]
    hinted = (await development.post("/graphql", json=MISTAKES[mistake])).json()
    assert any("Did you mean" in e["message"] for e in hinted["errors"])


async def test_queries_deeper_than_the_limit_are_refused(production: httpx.AsyncClient,
                                                         tokens: TokenFactory) -> None:
    deep = ('{ me { serviceUser { goals { edges { node { id } } } } } }')
    body = await post(production, deep, tokens.clinician())
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_QUERY"


async def test_too_many_aliases_are_refused(production: httpx.AsyncClient) -> None:
    body = await post(production, "{ a: me { sub } b: me { sub } c: me { sub } d: me { sub } }")
    assert body.get("data") is None
    assert "aliases" in body["errors"][0]["message"].lower()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_QUERY"


async def test_too_many_tokens_are_refused(production: httpx.AsyncClient) -> None:
    body = await post(production, "{ me { " + "sub " * 300 + "} }")
    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_QUERY"


async def test_a_query_that_does_not_parse_is_refused_with_its_code(
        production: httpx.AsyncClient) -> None:
    body = await post(production, "{ me { sub }")
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_QUERY"


async def test_batched_operations_are_refused(production: httpx.AsyncClient) -> None:
    response = await production.post("/graphql", json=[{"query": "{ me { sub } }"},
                                                       {"query": "{ me { sub } }"}])
    assert response.status_code == 400


async def test_queries_over_get_are_refused(production: httpx.AsyncClient) -> None:
    response = await production.get("/graphql", params={"query": "{ me { sub } }"})
    assert response.status_code in {400, 404, 405}


async def test_internal_errors_are_masked_and_typed_errors_are_not(
        production: httpx.AsyncClient) -> None:
    # No context at all: resolving `me` fails inside our own code.
    result = await build_schema(GatewaySettings(environment="production")).execute(
        "{ me { sub } }", context_value=None)
    assert result.errors is not None
    assert [e.message for e in result.errors] == [MASKED_MESSAGE]
    assert [e.extensions for e in result.errors] == [{"code": "INTERNAL"}]
    typed = await post(production, "{ me { sub } }")
    assert typed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_parsed_and_validated_documents_are_cached(development: httpx.AsyncClient
                                                         ) -> None:
    from strawberry.extensions.parser_cache import _get_parse_cache
    from strawberry.extensions.validation_cache import _get_validate_cache

    query = "{ prospectus { totalCount } }"
    await post(development, query)
    parsed, validated = (_get_parse_cache(CACHE_SIZE).cache_info().hits,
                         _get_validate_cache(CACHE_SIZE).cache_info().hits)
    await post(development, query)
    assert _get_parse_cache(CACHE_SIZE).cache_info().hits == parsed + 1
    assert _get_validate_cache(CACHE_SIZE).cache_info().hits == validated + 1


async def test_a_stopped_service_is_reported_as_unavailable_with_its_name(
        development: httpx.AsyncClient, tokens: TokenFactory) -> None:
    body = await post(development, "{ prospectus { totalCount } }", tokens.clinician())
    assert body["data"] == {"prospectus": None}
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["service"] == "training"
    assert error["path"] == ["prospectus"]


@pytest.mark.parametrize("body", [b"5", b'"{ me { sub } }"', b"null"])
async def test_a_json_body_that_is_not_an_operation_is_refused_with_400(
        production: httpx.AsyncClient, body: bytes) -> None:
    response = await production.post("/graphql", content=body,
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 400


async def test_a_variable_of_the_wrong_shape_is_the_callers_mistake_and_not_masked(
        production: httpx.AsyncClient, tokens: TokenFactory) -> None:
    response = await production.post("/graphql", headers={
        "Authorization": f"Bearer {tokens.clinician()}"}, json={
        "query": "query ($id: ID!) { serviceUser(id: $id) { id } }",
        "variables": {"id": {"nested": "object"}}})
    body = response.json()
    assert body.get("data") is None
    assert "$id" in body["errors"][0]["message"]
    assert body["errors"][0]["message"] != MASKED_MESSAGE
    assert body["errors"][0]["extensions"]["code"] == "INVALID"


@pytest.mark.parametrize("bad_id", ["../v1/enrolments", "x/runs", "x?limit=1", "..", "a b", ""])
async def test_an_id_that_could_reach_another_service_path_is_invalid_and_never_sent(
        production: httpx.AsyncClient, tokens: TokenFactory, bad_id: str) -> None:
    # The services are stopped: an id that got through would answer UPSTREAM_UNAVAILABLE.
    token = tokens.clinician()
    read = await production.post("/graphql", headers={"Authorization": f"Bearer {token}"},
                                 json={"query": "query ($id: ID!) { course(id: $id) { id } }",
                                       "variables": {"id": bad_id}})
    assert read.json()["errors"][0]["extensions"]["code"] == "INVALID"
    command = await production.post("/graphql", headers={"Authorization": f"Bearer {token}"},
                                    json={"query": "mutation ($id: ID!) { acceptGoal(id: $id, "
                                                   "ifMatch: 1) { __typename } }",
                                          "variables": {"id": bad_id}})
    assert command.json()["data"]["acceptGoal"]["__typename"] == "Invalid"


JSON = {"Content-Type": "application/json"}
REFUSED_REQUESTS = {
    "a body that is not JSON": ("POST", {"content": b"{ me { sub } }", "headers": JSON}),
    "a JSON body cut short": ("POST", {"content": b'{"query": "{ me', "headers": JSON}),
    "a body that is not an operation": ("POST", {"content": b"5", "headers": JSON}),
    "no content type": ("POST", {"content": b'{"query": "{ me { sub } }"}'}),
    "a form": ("POST", {"data": {"query": "{ me { sub } }"}}),
    "plain text": ("POST", {"content": b"{ me { sub } }",
                            "headers": {"Content-Type": "text/plain"}}),
    "no query": ("POST", {"json": {"variables": {}}}),
    "a query that is not a string": ("POST", {"json": {"query": 5}}),
    "a batch": ("POST", {"json": [{"query": "{ me { sub } }"}]}),
    "a GET without a query": ("GET", {}),
    "a GET with a query": ("GET", {"params": {"query": "{ me { sub } }"}}),
    "a GET for GraphiQL": ("GET", {"headers": {"Accept": "text/html"}}),
    "a body too large": ("POST", {"content": b'{"query": "' + b" " * 300_000 + b'"}',
                                  "headers": JSON}),
}


@pytest.mark.parametrize("case", REFUSED_REQUESTS)
async def test_every_refused_request_is_answered_with_a_json_problem_document(
        production: httpx.AsyncClient, case: str) -> None:
    method, request = REFUSED_REQUESTS[case]
    response = await production.request(method, "/graphql", **request)  # type: ignore[arg-type]
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == response.status_code and problem["detail"]


@pytest.mark.parametrize("body", [
    b'{"query": "{ me { sub } }", "operationName": "\xff\xfe"}',
    b'{"query": "{ me { s\xc3ub } }"}',
    b'\xef\xbb\xbf{"query": "{ me { sub } }"}\x80',
])
async def test_a_body_that_is_not_utf8_is_refused_with_400_and_never_a_500(
        production: httpx.AsyncClient, body: bytes) -> None:
    response = await production.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/malformed-json")


@pytest.fixture
async def production_address(dev_issuer: DevIssuer) -> AsyncIterator[str]:
    async with serving(gateway_app(dev_issuer, "production")) as address:
        yield address


async def connection_init(address: str, payload: object) -> dict[str, object]:
    """The server's answer to connection_init: its first message, or how it closed."""
    async with websockets.connect(f"ws://{address}/graphql",
                                  subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            answer: dict[str, object] = json.loads(await socket.recv())
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return {"closed": closed.rcvd.code}
        return answer


@pytest.mark.parametrize("payload", [
    {}, {"Authorization": None}, {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Token abc"}, {"authorization": "Bearer "},
])
async def test_a_websocket_without_a_valid_token_is_closed_at_connection_init(
        production_address: str, payload: dict[str, object]) -> None:
    assert await connection_init(production_address, payload) == {"closed": 4403}


async def test_a_websocket_with_a_valid_token_is_acknowledged(
        production_address: str, tokens: TokenFactory) -> None:
    answer = await connection_init(production_address,
                                   {"Authorization": f"Bearer {tokens.service_user('p-1')}"})
    assert answer["type"] == "connection_ack"
