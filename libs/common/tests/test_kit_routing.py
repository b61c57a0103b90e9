"""The route index answers every request exactly as FastAPI's router does, trying fewer
routes: the same route wins among overlapping ones, a wrong method is still a 405, a missing
slash still redirects, and routes added later are found."""

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.convertors import StringConvertor, register_url_convertor

from recovery.common.routing import RouteIndex, literal_prefix, path_key, segment_count


def _app(indexed: bool) -> FastAPI:
    app = FastAPI()

    def answer(name: str):  # type: ignore[no-untyped-def]
        async def endpoint() -> dict[str, str]:
            return {"route": name}
        return endpoint

    # Overlapping templates, in an order that decides: "{plan_id}" also matches "x:sign".
    app.get("/v1/plans/{plan_id}", name="plan")(answer("plan"))
    app.post("/v1/plans/{plan_id}:sign")(answer("sign"))
    app.post("/v1/plans")(answer("create plan"))
    app.get("/v1/people/{person}/plan")(answer("person's plan"))

    @app.get("/v1/people/{person}/plan-link")
    async def link(request: Request) -> str:  # a route of another prefix, by its name
        return str(request.url_for("plan", plan_id="p-1"))

    app.get("/v1/people/{person}/plans/")(answer("person's plans, with a slash"))
    app.get("/v1/{anything}/summary")(answer("any summary"))
    app.api_route("/v1/files/{rest:path}", methods=["GET", "PUT"])(answer("a file"))
    app.put("/v1/plans/{plan_id}")(answer("change plan"))
    app.get("/{page}")(answer("a page"))
    app.get("/healthz")(answer("health (never reached: a page comes first)"))
    if indexed:
        app.router.middleware_stack = RouteIndex(app.router)
    return app


REQUESTS = [
    ("GET", "/v1/plans/p-1"), ("GET", "/v1/plans/p-1:sign"), ("POST", "/v1/plans/p-1:sign"),
    ("POST", "/v1/plans/p-1"), ("DELETE", "/v1/plans/p-1"), ("POST", "/v1/plans"),
    ("GET", "/v1/plans"), ("GET", "/v1/plans/"), ("GET", "/v1/people/su-1/plan"),
    ("GET", "/v1/people/su-1/plan/"), ("GET", "/v1/people/su-1/plans"),
    ("GET", "/v1/people/su-1/plans/"), ("GET", "/v1/people/summary"),
    ("GET", "/v1/plans/summary"), ("GET", "/v1/anything/summary"), ("GET", "/healthz"),
    ("GET", "/v1"), ("GET", "/v1/"), ("GET", "/"), ("GET", "/nowhere/at/all"),
    ("GET", "/v1/people/su-1/plan/extra"), ("GET", "/v1/people/su-1/plan-link"),
    ("HEAD", "/v1/plans/p-1"), ("PUT", "/v1/plans/p-1"), ("PUT", "/v1/plans/p-1/"),
    ("PUT", "/v1/plans/p-1:sign"), ("POST", "/v1/plans/"), ("PATCH", "/v1/plans/p-1"),
    ("GET", "/v1/files/a/b/c"), ("PUT", "/v1/files/a"), ("POST", "/v1/files/a/b"),
    ("GET", "/v1/files"), ("PUT", "/v1/people/su-1/plan"), ("POST", "/v1/people/su-1/plans"),
]


async def _answers(app: FastAPI) -> list[tuple[int, str, str]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = []
        for method, path in REQUESTS:
            response = await client.request(method, path)
            answers.append((response.status_code, response.headers.get("location", ""),
                            response.text))
        return answers


async def test_every_request_is_answered_as_the_router_answers_it() -> None:
    expected = await _answers(_app(indexed=False))
    assert await _answers(_app(indexed=True)) == expected
    # The cases the comparison is about are really among them.
    statuses = {status for status, _, _ in expected}
    assert {200, 307, 404, 405} <= statuses
    assert expected[REQUESTS.index(("POST", "/v1/plans/p-1:sign"))][2] == '{"route":"sign"}'
    assert expected[REQUESTS.index(("GET", "/v1/plans/summary"))][2] == '{"route":"plan"}'
    assert expected[REQUESTS.index(("GET", "/v1/people/su-1/plan-link"))][2] == (
        '"http://test/v1/plans/p-1"')


async def test_a_route_added_after_the_first_request_is_found() -> None:
    app = _app(indexed=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/v2/late/one")).status_code == 404

        @app.get("/v2/late/{what}")
        async def late(what: str) -> dict[str, str]:
            return {"late": what}

        assert (await client.get("/v2/late/one")).json() == {"late": "one"}


async def test_under_a_root_path_the_router_matches_as_it_does() -> None:
    """The router matches the path without the root path (here ``/v1``)."""
    paths = ["/v1/v1/people/su-1/plan", "/v1/people/su-1/plan", "/v1/healthz"]
    answers = []
    for indexed in (False, True):
        transport = httpx.ASGITransport(app=_app(indexed=indexed), root_path="/v1")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers.append([(await client.get(path)).text for path in paths])
    assert answers[0] == answers[1]
    assert answers[0][0] == '{"route":"person\'s plan"}'
    assert answers[0][2] == '{"route":"a page"}'


def test_a_request_tries_only_the_routes_its_first_segments_allow() -> None:
    app = _app(indexed=True)
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    index._build()
    narrowed = index._by_key["/v1/people"].__self__  # type: ignore[attr-defined]
    assert [route.path for route in narrowed.routes] == [  # type: ignore[attr-defined]
        "/v1/people/{person}/plan", "/v1/people/{person}/plan-link",
        "/v1/people/{person}/plans/", "/v1/{anything}/summary",
        "/{page}"]
    # A POST of three segments under /v1/plans: one route can answer it in full.
    shaped = index._by_shape[("/v1/plans", 3, "POST")].__self__  # type: ignore[attr-defined]
    assert [route.path for route in shaped.routes] == [  # type: ignore[attr-defined]
        "/v1/plans/{plan_id}:sign"]
    files = index._by_shape[("/v1/files", 3, "GET")].__self__  # type: ignore[attr-defined]
    assert [route.path for route in files.routes] == [  # type: ignore[attr-defined]
        "/v1/{anything}/summary", "/v1/files/{rest:path}"]


@pytest.mark.parametrize(("path", "key"), [
    ("/v1/people/su-1/crisis-plan", "/v1/people"), ("/v1/people/", "/v1/people"),
    ("/v1/people", "/v1/people"), ("/v1/", "/v1/"), ("/healthz", "/healthz"), ("/", "/"),
])
def test_a_path_is_indexed_by_its_first_two_segments(path: str, key: str) -> None:
    assert path_key(path) == key


def test_a_route_s_literal_prefix_ends_at_its_first_parameter() -> None:
    prefixes = {route.path: literal_prefix(route)  # type: ignore[attr-defined]
                for route in _app(indexed=False).router.routes}
    assert prefixes["/v1/plans/{plan_id}:sign"] == "/v1/plans/"
    assert prefixes["/v1/plans"] == "/v1/plans"
    assert prefixes["/{page}"] == "/"


def test_a_route_s_number_of_segments_is_fixed_only_where_no_value_can_hold_a_slash() -> None:
    class Anything(StringConvertor):
        regex = ".+"

    register_url_convertor("anything", Anything())
    app = FastAPI()
    for path in ("/v1/plans/{plan_id}:sign", "/v1/plans/{n:int}/{x:float}/{u:uuid}",
                 "/v1/files/{rest:path}", "/v1/odd/{rest:anything}"):
        app.get(path)(lambda: None)
    counts = {route.path: segment_count(route)  # type: ignore[attr-defined]
              for route in app.router.routes if route.path.startswith("/v1/")}  # type: ignore[attr-defined]
    assert counts == {"/v1/plans/{plan_id}:sign": 3, "/v1/plans/{n:int}/{x:float}/{u:uuid}": 5,
                      "/v1/files/{rest:path}": None, "/v1/odd/{rest:anything}": None}
