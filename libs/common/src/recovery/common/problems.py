"""Errors as RFC 9457 problem documents (``application/problem+json``), validation included;
under ``/fhir`` the same errors as FHIR R4 OperationOutcome (``application/fhir+json``)."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import Match

from recovery.common.db import is_outage

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://recovery-platform.org/problems/"
PROBLEM_SCHEMA_REF = "#/components/schemas/ProblemDocument"
FHIR_MEDIA_TYPE = "application/fhir+json"
OUTCOME_SCHEMA_REF = "#/components/schemas/OperationOutcome"
#: FHIR's issue type (http://hl7.org/fhir/issue-type) for each status an error can have.
ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 406: "not-supported", 409: "conflict", 410: "deleted",
               412: "conflict", 413: "too-long", 415: "not-supported", 422: "processing",
               428: "required", 429: "throttled", 500: "exception", 502: "transient",
               503: "transient", 504: "timeout"}

log = structlog.get_logger(__name__)


class InvalidParam(BaseModel):
    name: str
    reason: str


class ProblemDocument(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(default=None, alias="invalid-params")

    model_config = {"populate_by_name": True}


class Problem(StarletteHTTPException):
    """Raise to answer with a problem document; ``kind`` names the problem type.

    It is an HTTPException so that FastAPI passes it through untouched even when it is
    raised while the request body is being read (the body-size limit does that).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        invalid_params: list[InvalidParam] | None = None,
        members: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(status, detail, dict(headers) if headers else None)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title or HTTPStatus(status).phrase
        self.invalid_params = invalid_params
        #: RFC 9457 extension members, e.g. the GraphQL `errors` a gateway refusal carries.
        self.members = dict(members or {})

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc = ProblemDocument(
            type=PROBLEM_TYPE_BASE + self.kind if self.kind else "about:blank",
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            invalid_params=self.invalid_params,
        )
        return {**self.members, **doc.model_dump(by_alias=True, exclude_none=True)}


def operation_outcome(problem: Problem) -> dict[str, Any]:
    """The problem as a FHIR R4 OperationOutcome: one issue saying what went wrong, and one
    per invalid parameter, each with FHIR's issue type for the status."""
    code = ISSUE_TYPES.get(problem.status, "processing" if problem.status < 500 else "exception")
    severity = "error" if problem.status < 500 else "fatal"
    details: dict[str, Any] = {"text": problem.title}
    if problem.kind:
        # The problem type a /v1 client would see, for clients that tell problems apart.
        details["coding"] = [{"system": PROBLEM_TYPE_BASE.rstrip("/"), "code": problem.kind}]
    issues: list[dict[str, Any]] = [{
        "severity": severity, "code": code, "details": details,
        "diagnostics": problem.detail}]
    issues.extend({"severity": severity, "code": "invalid" if code == "processing" else code,
                   "details": {"text": param.reason}, "expression": [param.name]}
                  for param in problem.invalid_params or ())
    return {"resourceType": "OperationOutcome", "issue": issues}


def under_fhir(request: Request) -> bool:
    """Whether the request is to a FHIR base (``/fhir``), whose errors are OperationOutcome."""
    path: str = request.scope.get("path", "")
    return path == "/fhir" or path.startswith("/fhir/")


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    if request is not None and under_fhir(request):
        return JSONResponse(operation_outcome(problem), status_code=problem.status,
                            media_type=FHIR_MEDIA_TYPE, headers=problem.headers)
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.document(instance),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problem(errors: list[Any]) -> Problem:
    params = [
        InvalidParam(name=_location(error.get("loc", ())), reason=str(error.get("msg", "")))
        for error in errors
    ]
    return Problem(
        422,
        "The request is not valid; see invalid-params for each field.",
        kind="validation",
        title="Invalid request",
        invalid_params=params,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(
            Problem(400, "The request body is not valid JSON.", kind="malformed-json"), request
        )
    return problem_response(validation_problem(errors), request)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's wording when the body is not even text (e.g. invalid UTF-8).
        problem = Problem(400, "The request body could not be read as JSON.",
                          kind="malformed-json")
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        problem = Problem(405, f"This resource answers to {', '.join(allowed)} only.",
                          headers={"Allow": ", ".join(allowed)})
    else:
        problem = Problem(exc.status_code, str(exc.detail), headers=exc.headers)
    return problem_response(problem, request)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route on this path answers; Starlette names only the first route's."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        # A fresh scope per method: the one routing left behind carries the matched route.
        probe = {"type": "http", "path": request.scope["path"], "method": method,
                 "root_path": request.scope.get("root_path", ""), "headers": []}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


#: Seconds a client is asked to wait after a database outage (a failover takes about this).
RETRY_AFTER_SECONDS = 5


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """An outage of the database is the caller's to retry (503); any other error is ours."""
    if not is_outage(exc):
        return await _on_unexpected(request, exc)
    log.warning("database_unavailable", error_type=type(exc).__name__, path=request.url.path)
    problem = Problem(503, "The service cannot reach its database just now; try again shortly.",
                      kind="unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return problem_response(problem, request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The exception type is logged, never its message: it may carry clinical text.
    log.error("unhandled_error", error_type=type(exc).__name__, path=request.url.path)
    problem = Problem(500, "Something went wrong on our side; it has been logged.")
    return problem_response(problem, request)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for outage in (DBAPIError, SQLAlchemyTimeoutError, ConnectionError, TimeoutError):
        app.add_exception_handler(outage, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries so a schema-driven client sees every error status."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        for status in statuses
    }
