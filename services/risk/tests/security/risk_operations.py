"""The risk service's operations, read from its OpenAPI document, with a valid request for
each: the security tests send them with the wrong caller, so nothing but the caller is wrong."""

from typing import Any

import httpx

from recovery.common.problems import ISSUE_TYPES
from recovery.common.testing import openapi_operations as kit
from recovery.common.testing.openapi_operations import HTTP_METHODS, PROBLEM, Operation
from recovery.common.testing.token_matrix import TokenMatrix

__all__ = ["FHIR_JSON", "HTTP_METHODS", "PROBLEM", "PUBLIC", "FhirAwareMatrix", "Operation",
           "assert_refused", "fill_path", "protected_operations", "query_for", "valid_body"]

FHIR_JSON = "application/fhir+json"

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {**kit.OPERATIONAL_ROUTES, **kit.FHIR_METADATA,
          "/fhir/.well-known/smart-configuration": "SMART discovery: where to get a token"}


def under_fhir(path: str) -> bool:
    return path.startswith("/fhir/")


def assert_refused(response: httpx.Response, status: int, kind: str, what: str) -> None:
    """A refusal as the path's API gives it: a problem document of that kind under /v1, an
    OperationOutcome of FHIR's issue type for the status under /fhir."""
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    body = response.json()
    if not under_fhir(response.request.url.path):
        assert response.headers["content-type"] == PROBLEM, what
        assert body["type"].endswith(f"/{kind}"), f"{what}: {body}"
        return
    assert response.headers["content-type"] == FHIR_JSON, what
    assert body["resourceType"] == "OperationOutcome", what
    assert body["issue"][0]["code"] == ISSUE_TYPES[status], f"{what}: {body}"


def is_unauthorized_outcome(response: httpx.Response) -> bool:
    """401 under /fhir: an OperationOutcome of issue type login, with a Bearer challenge."""
    if response.status_code != 401 or response.headers.get("content-type") != FHIR_JSON:
        return False
    body = response.json()
    return (body.get("resourceType") == "OperationOutcome"
            and body["issue"][0]["code"] == "login"
            and response.headers.get("www-authenticate", "").startswith("Bearer "))


class FhirAwareMatrix(TokenMatrix):
    """The kit's token matrix, whose refusals it knows as problem documents, with the FHIR
    operations checked for the OperationOutcome they answer with instead."""

    async def not_refused(self, authorization: str | None) -> list[str]:
        rest = [op for op in self.operations if not under_fhir(op.template)]
        wrong = await TokenMatrix(self.client, rest, self.call_for).not_refused(authorization)
        for operation in self.operations:
            if operation in rest:
                continue
            response = await self._send(operation, authorization)
            if not is_unauthorized_outcome(response):
                wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
            if authorization is not None and authorization.split(" ", 1)[-1] in response.text:
                wrong.append(f"{operation} echoes the token")
        return wrong

#: POSTs that only read.
READING_POSTS = frozenset({"POST /v1/risk-assessments:batch-read"})


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return kit.protected_operations(openapi, public=PUBLIC, reading_posts=READING_POSTS)


def fill_path(template: str, *, assessment_id: str, team_id: str,
              service_user_id: str = "su-1") -> str:
    return kit.fill_path(template, assessment_id=assessment_id, team_id=team_id, version="1",
                         version_id="1", person=service_user_id,
                         provenance_id=f"{assessment_id}-v1")


def query_for(operation: Operation, *, assessment_id: str,
              service_user_id: str = "su-1") -> dict[str, str] | None:
    """Query parameters an operation needs (FHIR searches name what they look for)."""
    queries = {"/fhir/Provenance": {"target": f"RiskAssessment/{assessment_id}"},
               "/fhir/RiskAssessment": {"patient": f"Patient/{service_user_id}"},
               "/fhir/Patient": {"_id": service_user_id}}
    return queries.get(operation.template)


def valid_body(operation: Operation, *, service_user_id: str, team_id: str,
               content_hash: str = "sha256:" + "0" * 64) -> Any:
    """A body the operation accepts from a caller allowed to make it (None for reads)."""
    if operation.method == "get":
        return None
    bodies: dict[str, Any] = {
        "POST /v1/risk-assessments": {
            "service_user_id": service_user_id, "team_id": team_id,
            "areas": [{"area": "safety_of_self", "service_user_view": "I am safe at home"}]},
        "POST /v1/risk-assessments:batch-read": {"service_user_ids": [service_user_id]},
        "PATCH /v1/risk-assessments/{assessment_id}": {"review_date": "2031-05-01"},
        "POST /v1/risk-assessments/{assessment_id}/signatures": {"content_hash": content_hash},
        "POST /v1/risk-assessments/{assessment_id}/entered-in-error": {"reason": "duplicate"},
        "POST /v1/risk-assessments/{assessment_id}/positive-risk-decisions": {
            "goal_id": "goal-1", "decision": "Cycle to work", "safeguards": ["Helmet"],
            "review_date": "2031-05-01"},
    }
    return bodies.get(str(operation))
