"""The object-access harness of every service: who must not reach a service user's records,
and how a refusal must look."""

from typing import Any

import httpx
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import func, table
from sqlmodel import select

from recovery.common.problems import FHIR_MEDIA_TYPE, ISSUE_TYPES
from recovery.common.testing.openapi_operations import PROBLEM
from recovery.common.testing.plugin import TokenFactory, unique


def assert_problem(response: httpx.Response, status: int, kind: str, what: str) -> None:
    """A refusal as the contract has it: a problem document of ``kind``, or under ``/fhir``
    an OperationOutcome whose issue type is FHIR's for the status."""
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    if under_fhir(response.request.url.path):
        assert_outcome(response, status, what)
        assert problem_kind(response) == kind, what
        return
    assert response.headers["content-type"] == PROBLEM, what
    body = response.json()
    assert body["status"] == status, what
    assert body["type"].endswith("/" + kind), f"{what}: {body['type']}"


def under_fhir(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


def problem_kind(response: httpx.Response) -> str:
    """The problem type of an error answer, from a problem document or an OperationOutcome."""
    body = response.json()
    if body.get("resourceType") == "OperationOutcome":
        return str(body["issue"][0]["details"]["coding"][0]["code"])
    return str(body["type"]).rsplit("/", 1)[-1]


def error_media_type(response: httpx.Response) -> str:
    """The media type the contract gives an error answer to this request: FHIR JSON (an
    OperationOutcome) under ``/fhir``, a problem document elsewhere."""
    return FHIR_MEDIA_TYPE if under_fhir(response.request.url.path) else PROBLEM


def assert_outcome(response: httpx.Response, status: int, what: str = "") -> dict[str, Any]:
    """An error under ``/fhir``: a valid OperationOutcome in FHIR JSON, its first issue of
    FHIR's type for the status and saying what went wrong."""
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == FHIR_MEDIA_TYPE, what
    body: dict[str, Any] = response.json()
    OperationOutcome.model_validate(body)
    issue = body["issue"][0]
    assert issue["code"] == ISSUE_TYPES[status], f"{what}: {issue}"
    assert issue["severity"] in {"error", "fatal"} and issue.get("diagnostics"), what
    return body


def intruders(tokens: TokenFactory, *, other_person: str, other_team: str) -> dict[str, str]:
    """Callers with every scope they could need, but no claim on a person of another team."""
    return {
        "another service user": tokens.service_user(other_person),
        "a clinician of another team": tokens.clinician("staff-out", [other_team]),
        "an admin of another team": tokens.admin("admin-out", [other_team]),
        "a peer specialist of no team": tokens("peer_specialist", "peer-out", teams=[]),
        "a service user whose token names no patient": tokens(
            "service_user", unique("su"), scope="user/*.cruds"),
        # System scopes count only for partner systems, never for people who claim them.
        "a clinician of another team claiming system scopes": tokens.clinician(
            "staff-sys", [other_team], scope="system/*.cruds"),
    }


async def row_counts(client: httpx.AsyncClient, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows in each of ``tables`` of the in-process service behind ``client`` (from
    ``running_service``): what a refused change must leave as it was."""
    kit = client.app.state.kit  # type: ignore[attr-defined]
    async with kit.sessions() as session:
        return {name: int((await session.exec(select(func.count()).select_from(table(name))))
                          .one()) for name in tables}
