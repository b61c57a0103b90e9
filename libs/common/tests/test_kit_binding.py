"""Bound routes answer every request exactly as FastAPI's own handlers do: the same
statuses, headers and bodies for good and bad input, the same order of checks (a body that
is not JSON before a missing token, a missing token before a bad parameter), dependencies
called once each and closed after the response; routes the plan does not cover keep
FastAPI's handler, and dependency overrides still apply."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import (
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from recovery.common.binding import BoundRoute, bind_routes, read_body
from recovery.common.problems import Problem, install_problem_handlers


class Note(BaseModel):
    title: str = Field(min_length=1, max_length=20)
    minutes: int = Field(ge=0)


class Tag(BaseModel):
    name: str


def _app(bound: bool, happened: list[str]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    async def caller(request: Request) -> str:
        token = request.headers.get("authorization", "")
        if token != "Bearer good":
            raise Problem(401, "Send a good token.", kind="unauthorized")
        happened.append("caller")
        return "su-1"

    async def session(request: Request) -> AsyncIterator[str]:
        happened.append("session opened")
        try:
            yield "session"
        except ValueError:
            happened.append("session saw the error")
            raise
        finally:
            happened.append("session closed")

    async def no_scores(who: Annotated[str, Depends(caller)]) -> None:
        happened.append(f"no scores for {who}")

    class Gate:
        async def __call__(self, request: Request) -> str:
            return request.method

    caller_dep = Annotated[str, Depends(caller)]
    session_dep = Annotated[str, Depends(session)]

    @app.get("/people/{person}/notes/{number}")
    async def read(person: Annotated[str, Path(pattern=r"^su-\d+$")], number: int,
                   who: caller_dep, q: Annotated[list[str], Query()] = [],  # noqa: B006
                   limit: Annotated[int | None, Query(ge=1, le=10)] = None,
                   if_match: Annotated[str | None, Header()] = None,
                   theme: Annotated[str | None, Cookie()] = None) -> Response:
        return JSONResponse({"person": person, "number": number, "who": who, "q": q,
                             "limit": limit, "if_match": if_match, "theme": theme})

    @app.post("/notes", status_code=201)
    async def create(note: Note, who: caller_dep, db: session_dep, request: Request) -> Response:
        happened.append("endpoint")
        if note.title == "boom":
            raise ValueError("boom")
        if note.title == "teapot":
            raise HTTPException(418, "short and stout", headers={"X-Why": "tea"})
        if note.title == "gone":
            raise Problem(410, "That note is gone.", kind="gone")
        return JSONResponse({"title": note.title, "db": db, "path": request.url.path},
                            status_code=201, headers={"ETag": '"1"'})

    @app.put("/notes/{number}", dependencies=[Depends(no_scores)])
    async def replace(number: int, note: Note, tag: Tag,
                      gate: Annotated[str, Depends(Gate())]) -> Response:
        return JSONResponse({"number": number, "note": note.model_dump(),
                             "tag": tag.name, "gate": gate})

    @app.post("/raw")
    async def raw(who: caller_dep, size: Annotated[int, Body(embed=True)]) -> Response:
        return Response(f"{who}:{size}", media_type="text/plain")

    # Not covered by the plan: each keeps FastAPI's handler.
    @app.get("/plain")
    def plain() -> Response:
        return Response("plain")

    @app.get("/model")
    async def model() -> dict[str, str]:
        return {"answer": "a model"}

    @app.get("/response-parameter")
    async def response_parameter(response: Response) -> Response:
        return Response("set")

    @app.get("/later")
    async def later(tasks: BackgroundTasks) -> Response:
        return Response("later")

    @app.get("/twice")
    async def twice(first: caller_dep, again: Annotated[str, Depends(no_scores)]) -> Response:
        return Response(first)

    if bound:
        assert bind_routes(app.router.routes) == 4
    return app


GOOD = {"Authorization": "Bearer good"}
NOTE = {"title": "Shopping", "minutes": 20}

REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/people/su-1/notes/7", {"headers": GOOD}),
    ("GET", "/people/su-1/notes/7?q=a&q=b&limit=3",
     {"headers": {**GOOD, "If-Match": '"2"', "Cookie": "theme=dark"}}),
    ("GET", "/people/nobody/notes/x?limit=99", {"headers": GOOD}),
    ("GET", "/people/su-1/notes/7", {}),
    ("GET", "/people/nobody/notes/x", {}),
    ("POST", "/notes", {"headers": GOOD, "json": NOTE}),
    ("POST", "/notes", {"headers": GOOD, "json": {"title": "", "minutes": -1}}),
    ("POST", "/notes", {"headers": GOOD, "json": [1, 2]}),
    ("POST", "/notes", {"headers": GOOD}),
    ("POST", "/notes", {"headers": {**GOOD, "Content-Type": "application/json"},
                        "content": b'{"title": "Shopping",'}),
    ("POST", "/notes", {"headers": {"Content-Type": "application/json"},
                        "content": b'{"title": '}),
    ("POST", "/notes", {"json": NOTE}),
    ("POST", "/notes", {"headers": {**GOOD, "Content-Type": "text/plain"},
                        "content": b'{"title": "Shopping", "minutes": 2}'}),
    ("POST", "/notes", {"headers": {**GOOD, "Content-Type": "application/merge-patch+json"},
                        "content": b'{"title": "Shopping", "minutes": 2}'}),
    ("POST", "/notes", {"headers": {**GOOD, "Content-Type": ""},
                        "content": b'{"title": "Shopping", "minutes": 2}'}),
    ("POST", "/notes", {"headers": GOOD, "json": {"title": "teapot", "minutes": 1}}),
    ("POST", "/notes", {"headers": GOOD, "json": {"title": "gone", "minutes": 1}}),
    ("PUT", "/notes/3", {"headers": GOOD, "json": {"note": NOTE, "tag": {"name": "x"}}}),
    ("PUT", "/notes/3", {"headers": GOOD, "json": {"note": NOTE}}),
    ("PUT", "/notes/three", {"headers": GOOD, "json": {"tag": {}}}),
    ("PUT", "/notes/3", {"json": {"note": NOTE, "tag": {"name": "x"}}}),
    ("POST", "/raw", {"headers": GOOD, "json": {"size": 3}}),
    ("POST", "/raw", {"headers": GOOD, "json": {"size": "many"}}),
    ("POST", "/raw", {"headers": GOOD, "json": 3}),
    ("GET", "/plain", {}), ("GET", "/model", {}),
    ("GET", "/response-parameter", {}), ("GET", "/later", {}), ("GET", "/twice", {"headers": GOOD}),
    # Bodies pydantic's JSON parser refuses and the standard library's takes (or refuses
    # differently): a lone surrogate, a byte order mark, UTF-16, a trailing comma, bad UTF-8.
    *(("POST", "/notes", {"headers": {**GOOD, "Content-Type": "application/json"},
                          "content": content})
      for content in (b'{"title": "Shopping", "minutes": 2, "aside": "\\ud800"}',
                      '\ufeff{"title": "Shopping", "minutes": 2}'.encode(),
                      '{"title": "Shopping", "minutes": 2}'.encode("utf-16"),
                      b'{"title": "Shopping", "minutes": 2,}',
                      b'{"title": "Shop\xff", "minutes": 2}')),
]


async def _answers(app: FastAPI, happened: list[str]) -> list[tuple[Any, ...]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = []
        for method, path, options in REQUESTS:
            happened.clear()
            response = await client.request(method, path, **options)
            answers.append((method, path, response.status_code, sorted(response.headers.items()),
                            response.text, list(happened)))
        return answers


async def test_every_request_is_answered_as_fastapi_answers_it() -> None:
    happened: list[str] = []
    expected = await _answers(_app(bound=False, happened=happened), happened)
    answers = await _answers(_app(bound=True, happened=happened), happened)
    for answer, wanted in zip(answers, expected, strict=True):
        assert answer == wanted
    # The cases the comparison is about are really among them.
    assert {200, 201, 400, 401, 410, 418, 422} <= {answer[2] for answer in expected}
    created = expected[5]
    assert created[2] == 201 and created[5] == ["caller", "session opened", "endpoint",
                                                "session closed"]
    # Malformed JSON is refused before the token is looked at, a missing token before a
    # bad path parameter, as FastAPI orders them; a JSON subtype is parsed, an empty
    # content type is not.
    assert expected[10][2] == 400 and expected[4][2] == 401
    assert expected[13][2] == 201 and expected[14][2] == 422
    assert expected[17][5] == ["caller", "no scores for su-1"]
    assert [answer[2] for answer in expected[-5:]] == [201, 201, 201, 400, 400]


async def test_an_error_in_the_endpoint_reaches_the_dependency_and_the_server() -> None:
    for bound in (False, True):
        happened: list[str] = []
        transport = httpx.ASGITransport(app=_app(bound=bound, happened=happened),
                                        raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with pytest.raises(ValueError, match="boom"):
                await client.post("/notes", headers=GOOD, json={"title": "boom", "minutes": 1})
        assert happened == ["caller", "session opened", "endpoint", "session saw the error",
                            "session closed"]


async def test_routes_the_plan_does_not_cover_keep_fastapis_handler() -> None:
    app = _app(bound=True, happened=[])
    kept = {route.path for route in app.router.routes
            if getattr(route, "endpoint", None) and not isinstance(
                getattr(route, "app", None), BoundRoute) and not route.path.startswith("/docs")
            and route.path not in {"/openapi.json", "/docs/oauth2-redirect", "/redoc"}}
    assert kept == {"/plain", "/model", "/response-parameter", "/later", "/twice"}


async def test_dependency_overrides_still_apply() -> None:
    happened: list[str] = []
    app = _app(bound=True, happened=happened)
    caller = next(route for route in app.router.routes if getattr(route, "path", "") ==
                  "/people/{person}/notes/{number}").dependant.dependencies[0].call

    async def somebody_else() -> str:
        return "su-9"

    app.dependency_overrides[caller] = somebody_else
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/people/su-1/notes/7")
    assert answer.status_code == 200 and answer.json()["who"] == "su-9"


async def test_a_route_added_later_to_a_kit_app_keeps_fastapis_handler_and_works(
        toy_sqlite: httpx.AsyncClient) -> None:
    """A kit app opens no exit stack for FastAPI's handler; a route that keeps that handler
    (here a plain function added after the app was built) opens its own and answers."""
    app: FastAPI = toy_sqlite.app  # type: ignore[attr-defined]

    @app.get("/v1/late/{number}")
    def late(number: int) -> dict[str, int]:
        return {"number": number}

    answer = await toy_sqlite.get("/v1/late/3")
    assert answer.status_code == 200 and answer.json() == {"number": 3}
    bad = await toy_sqlite.get("/v1/late/three")
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    route = next(r for r in app.router.routes if getattr(r, "path", "") == "/v1/late/{number}")
    assert not isinstance(route.app, BoundRoute)



def _request(messages: list[dict[str, Any]]) -> Request:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


@pytest.mark.parametrize("messages", [
    [{"type": "http.request", "body": b'{"a": 1}'}],
    [{"type": "http.request", "body": b'{"a"', "more_body": True},
     {"type": "http.request", "body": b"", "more_body": True},
     {"type": "http.request", "body": b": 1}"}],
    [{"type": "http.request"}],
])
async def test_a_body_is_read_as_starlette_reads_it_and_kept_where_it_keeps_it(
        messages: list[dict[str, Any]]) -> None:
    expected = await _request(messages).body()
    request = _request(messages)
    assert await read_body(request) == expected
    # Read again, by the kit or by Starlette, it is the same bytes, without a second receive.
    assert await read_body(request) == await request.body() == expected
    if expected:
        assert await request.json() == {"a": 1}


async def test_a_client_gone_while_its_body_arrives_is_a_client_disconnect() -> None:
    request = _request([{"type": "http.request", "body": b"{", "more_body": True},
                        {"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnect):
        await read_body(request)
    assert await request.is_disconnected()
