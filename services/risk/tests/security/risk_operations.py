"""The risk service's operations, read from its OpenAPI document, with a valid request for
each: the security tests send them with the wrong caller, so nothing but the caller is wrong."""

from typing import Any

from recovery.common.testing import openapi_operations as kit
from recovery.common.testing.openapi_operations import HTTP_METHODS, PROBLEM, Operation

__all__ = ["HTTP_METHODS", "PROBLEM", "PUBLIC", "Operation", "fill_path",
           "protected_operations", "query_for", "valid_body"]

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {**kit.OPERATIONAL_ROUTES, **kit.FHIR_METADATA}

#: POSTs that only read.
READING_POSTS = frozenset({"POST /v1/risk-assessments:batch-read"})


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return kit.protected_operations(openapi, public=PUBLIC, reading_posts=READING_POSTS)


def fill_path(template: str, *, assessment_id: str, team_id: str) -> str:
    return kit.fill_path(template, assessment_id=assessment_id, team_id=team_id, version="1")


def query_for(operation: Operation, *, assessment_id: str) -> dict[str, str] | None:
    if str(operation) == "GET /fhir/Provenance":
        return {"target": f"RiskAssessment/{assessment_id}"}
    return None


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
