"""HTTP behaviour the kit gives every service: problem documents on every error path, an
OpenAPI document that lists them, request ids, metrics and logs without secrets."""

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
import structlog
from kit_toy import ToyNote
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlmodel import func, select

from recovery.common.fhir import FHIR_JSON
from recovery.common.observability import (
    RequestFigures,
    configure_logging,
    flush_logs,
    request_id_var,
    request_line,
)
from recovery.common.testing.plugin import TokenFactory

PROBLEM = "application/problem+json"


def _is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


async def _note_count(client: httpx.AsyncClient) -> int:
    async with client.app.state.kit.sessions() as session:  # type: ignore[attr-defined]
        return int((await session.exec(select(func.count()).select_from(ToyNote))).one())


@pytest.fixture
def clinician(tokens: TokenFactory) -> dict[str, str]:
    return tokens.header(tokens.clinician("staff-1", teams=["team-a"]))


async def test_malformed_json_is_a_400_problem_and_changes_nothing(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    response = await toy_sqlite.post("/v1/notes", content=b'{"service_user_id": "su-1",',
                                     headers={**clinician, "content-type": "application/json"})
    assert _is_problem(response, 400)["type"].endswith("/malformed-json")
    assert await _note_count(toy_sqlite) == 0


async def test_a_body_that_is_not_even_text_is_a_400_problem(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    response = await toy_sqlite.post("/v1/notes", content=b"\xff\xfe\x00{",
                                     headers={**clinician, "content-type": "application/json"})
    _is_problem(response, 400)
    assert await _note_count(toy_sqlite) == 0


async def test_wrong_types_are_a_422_problem_naming_each_field(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    response = await toy_sqlite.post("/v1/notes", headers=clinician, json={
        "service_user_id": "su-1", "team_id": ["team-a"], "size": "large"})
    body = _is_problem(response, 422)
    assert body["type"].endswith("/validation")
    assert {p["name"] for p in body["invalid-params"]} == {"body.team_id", "body.size"}
    assert "large" not in response.text  # the input is not echoed back
    assert await _note_count(toy_sqlite) == 0


async def test_a_body_declared_too_large_is_a_413_problem(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    big = json.dumps({"service_user_id": "su-1", "team_id": "team-a", "size": 1,
                      "padding": "x" * 5000}).encode()
    response = await toy_sqlite.post("/v1/notes", content=big,
                                     headers={**clinician, "content-type": "application/json"})
    assert _is_problem(response, 413)["type"].endswith("/body-too-large")
    assert await _note_count(toy_sqlite) == 0


async def test_a_chunked_body_without_length_that_grows_too_large_is_a_413_problem(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"service_user_id": "su-1", "team_id": "team-a", "size": 1, "padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    request = toy_sqlite.build_request("POST", "/v1/notes", content=chunks(),
                                       headers={**clinician, "content-type": "application/json"})
    assert "content-length" not in request.headers
    response = await toy_sqlite.send(request)
    assert _is_problem(response, 413)["type"].endswith("/body-too-large")
    assert await _note_count(toy_sqlite) == 0


async def test_a_content_length_that_is_not_a_number_is_a_400_problem(
        toy_sqlite: httpx.AsyncClient) -> None:
    # httpx computes Content-Length itself, so speak ASGI directly.
    app = toy_sqlite.app  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/notes", "raw_path": b"/v1/notes",
             "query_string": b"", "root_path": "", "server": ("test", 80),
             "client": ("127.0.0.1", 1), "headers": [(b"content-length", b"12abc")],
             "state": {}}
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert (b"content-type", PROBLEM.encode()) in sent[0]["headers"]


async def test_nul_characters_are_refused_on_every_backend_and_change_nothing(
        toy: httpx.AsyncClient, clinician: dict[str, str], tokens: TokenFactory) -> None:
    # PostgreSQL cannot store NUL in text; without this it would be a 500 there only.
    body = await toy.post("/v1/notes", headers=clinician, json={
        "service_user_id": "su-1\x00", "team_id": "team-a", "size": 1})
    problem = _is_problem(body, 422)
    assert problem["type"].endswith("/nul-character")
    assert problem["invalid-params"][0]["name"] == "body"
    query = await toy.get("/v1/audit-events", params={"record_id": "a\x00b"},
                          headers=tokens.header(tokens.admin()))
    assert _is_problem(query, 422)["invalid-params"][0]["name"] == "query"
    _is_problem(await toy.get("/v1/notes/a%00b", headers=clinician), 422)
    assert await _note_count(toy) == 0


async def test_a_nul_split_across_body_chunks_is_still_found(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b'{"service_user_id": "su-1\\u0', b"0", b'00", "team_id": "t", ',
                      b'"size": 1}'):
            yield piece

    response = await toy_sqlite.post("/v1/notes", content=chunks(),
                                     headers={**clinician, "content-type": "application/json"})
    _is_problem(response, 422)
    assert await _note_count(toy_sqlite) == 0


async def test_an_unknown_route_is_a_404_problem(toy_sqlite: httpx.AsyncClient) -> None:
    _is_problem(await toy_sqlite.get("/v1/nothing-here"), 404)


async def test_a_wrong_method_is_a_405_problem_allowing_every_method_of_the_path(
        toy_sqlite: httpx.AsyncClient) -> None:
    response = await toy_sqlite.delete("/v1/notes/n-1")
    _is_problem(response, 405)
    # GET and PUT are two routes on one path; Starlette alone names only the first.
    assert response.headers["allow"] == "GET, PUT"


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(
        capsys: pytest.CaptureFixture[str], toy_sqlite: httpx.AsyncClient) -> None:
    # capsys first: the logs are bound to the stdout of the moment the app is built.
    response = await toy_sqlite.get("/v1/boom")
    body = _is_problem(response, 500)
    assert "Jane" not in response.text and "RuntimeError" not in response.text
    assert body["detail"]
    logged = capsys.readouterr().out
    assert "RuntimeError" in logged
    assert "Jane" not in logged and "self-harm" not in logged


async def test_missing_scope_is_a_403_problem(toy_sqlite: httpx.AsyncClient,
                                              tokens: TokenFactory) -> None:
    reader = tokens.header(tokens.clinician(scope="user/Observation.rs"))
    response = await toy_sqlite.post("/v1/notes", headers=reader, json={
        "service_user_id": "su-1", "team_id": "team-a", "size": 1})
    assert _is_problem(response, 403)["type"].endswith("/insufficient-scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_every_response_carries_a_request_id_and_honours_the_callers(
        toy_sqlite: httpx.AsyncClient) -> None:
    generated = await toy_sqlite.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    given = await toy_sqlite.get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"


async def test_log_lines_are_json_with_request_id_and_never_the_token_or_body(
        capsys: pytest.CaptureFixture[str], toy_sqlite: httpx.AsyncClient,
        tokens: TokenFactory) -> None:
    token = tokens.clinician()
    capsys.readouterr()
    await toy_sqlite.post("/v1/notes", headers={**tokens.header(token), "X-Request-Id": "req-7"},
                          json={"service_user_id": "su-secret-body", "team_id": "team-a",
                                "size": 3})
    flush_logs()  # a request's line may wait to be written with the next ones
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines, lines
    line = request_lines[-1]
    assert line["request_id"] == "req-7"
    assert line["route"] == "/v1/notes" and line["status"] == 201
    everything = json.dumps(lines)
    assert token not in everything and token[:20] not in everything
    assert "su-secret-body" not in everything


async def test_metrics_count_requests_by_route_template(
        toy_sqlite: httpx.AsyncClient, clinician: dict[str, str]) -> None:
    for note_id in ("a1", "b2"):
        await toy_sqlite.get(f"/v1/notes/{note_id}", headers=clinician)
    text = (await toy_sqlite.get("/metrics")).text
    assert ('http_requests_total{method="GET",route="/v1/notes/{note_id}",service="toy",'
            'status="404"}') in text
    assert "/v1/notes/a1" not in text
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route=' in text


def test_request_figures_read_as_prometheus_clients_own_metrics_would() -> None:
    """The kit counts requests itself, lock-free; what Prometheus scrapes must be what
    ``prometheus_client``'s counter and histogram give for the same requests."""
    buckets = (0.001, 0.01, 0.1)
    figures, reference = CollectorRegistry(), CollectorRegistry()
    counted = RequestFigures(buckets)
    figures.register(counted)
    counter = Counter("http_requests_total", "HTTP requests",
                      ["service", "method", "route", "status"], registry=reference)
    histogram = Histogram("http_request_duration_seconds", "HTTP request latency",
                          ["service", "method", "route"], buckets=buckets, registry=reference)
    requests = [("toy", "GET", "/v1/notes", 200, 0.0), ("toy", "GET", "/v1/notes", 200, 0.01),
                ("toy", "GET", "/v1/notes", 404, 0.0105), ("toy", "POST", "/v1/notes", 201, 3.0),
                ("other", "GET", "/v1/notes", 200, 0.0004), ("toy", "GET", "/v1/notes", 200, 0.1)]
    for service, method, route, status, seconds in requests:
        counted.observe(service, method, route, status, seconds)
        counter.labels(service, method, route, str(status)).inc()
        histogram.labels(service, method, route).observe(seconds)

    def samples(registry: CollectorRegistry) -> list[tuple[str, tuple[Any, ...], float]]:
        return sorted((sample.name, tuple(sorted(sample.labels.items())), sample.value)
                      for metric in registry.collect() for sample in metric.samples
                      if not sample.name.endswith("_created"))

    assert samples(figures) == samples(reference)
    assert len(samples(figures)) == 4 + 3 * (len(buckets) + 3)  # counts; buckets, count, sum


# --- the OpenAPI document ------------------------------------------------------------------------


@pytest.fixture
async def openapi(toy_sqlite: httpx.AsyncClient) -> dict[str, Any]:
    response = await toy_sqlite.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in {"get", "post", "put", "delete"}]


def test_the_openapi_document_is_valid(openapi: dict[str, Any]) -> None:
    schemathesis.openapi.from_dict(openapi).validate()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    schemas = openapi["components"]["schemas"]
    for ref in refs(openapi):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert "HTTPValidationError" not in schemas


def test_every_operation_documents_its_errors_as_problem_documents(
        openapi: dict[str, Any]) -> None:
    for path, method, operation in _operations(openapi):
        responses = operation["responses"]
        for status in ("400", "413", "422", "500"):
            assert status in responses, (path, method, status)
        # Under /fhir the same errors are OperationOutcome (problems.py).
        error_media = FHIR_JSON if path.startswith("/fhir/") else PROBLEM
        for status, response in responses.items():
            if int(status) >= 400 and not (path == "/readyz" and status == "503"):
                assert list(response["content"]) == [error_media], (path, method, status)
        if operation.get("security"):
            assert {"401", "403"} <= set(responses), (path, method)
        if "{" in path:
            assert "404" in responses, (path, method)


def test_routes_keep_the_error_statuses_they_declare(openapi: dict[str, Any]) -> None:
    change = openapi["paths"]["/v1/notes/{note_id}"]["put"]["responses"]
    assert {"412", "428"} <= set(change)
    assert list(change["412"]["content"]) == [PROBLEM]


def test_a_request_line_is_the_line_the_processor_chain_would_write(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The middleware builds its line directly, for speed; it must not differ from the
    service's other lines in anything but the time."""
    configure_logging("toy")
    capsys.readouterr()
    token = request_id_var.set("req-9")
    try:
        structlog.get_logger("http").info("request", method="GET", route="/v1/notes",
                                          status=200, ms=1.5)
    finally:
        request_id_var.reset(token)
    flush_logs()
    chained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    direct = json.loads(request_line(service="toy", request_id="req-9", method="GET",
                                     route="/v1/notes", status=200, ms=1.5))
    assert list(direct) == list(chained)
    assert {**direct, "timestamp": ""} == {**chained, "timestamp": ""}
    assert direct["timestamp"].endswith("Z") and chained["timestamp"].endswith("Z")
    assert abs(datetime.fromisoformat(direct["timestamp"])
               - datetime.fromisoformat(chained["timestamp"])) < timedelta(seconds=5)


def test_uvicorn_is_told_there_is_no_access_log_and_its_other_lines_come_through_ours() -> None:
    """uvicorn's HTTP protocol builds an access line (client address, quoted path) for each
    response whenever its access logger has a handler up its chain, even one that then drops
    it; our own request line replaces that log, so it must find none."""
    configure_logging("toy")
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    error = logging.getLogger("uvicorn.error")
    assert error.propagate and not error.handlers and error.hasHandlers()
