"""The risk service's operations, read from its OpenAPI document, with a valid request for
each: the security tests send them with the wrong caller, so nothing but the caller is wrong."""

from dataclasses import dataclass
from typing import Any

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
PROBLEM = "application/problem+json"

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {
    "/healthz": "liveness probe",
    "/readyz": "readiness probe",
    "/metrics": "Prometheus scrape",
    "/openapi.json": "the API description",
    "/docs": "the API description",
    "/fhir/metadata": "FHIR CapabilityStatement: describes the server, holds no record",
}

#: The audit trail is the kit's, in every service; its access rules are tested in the kit.
AUDIT_PATHS = ("/v1/audit-events", "/fhir/AuditEvent")

#: POSTs that only read.
READING_POSTS = frozenset({"POST /v1/risk-assessments:batch-read"})


@dataclass(frozen=True)
class Operation:
    method: str
    template: str

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template}"

    @property
    def changes(self) -> bool:
        return self.method != "get" and str(self) not in READING_POSTS

    @property
    def is_risk_operation(self) -> bool:
        return not self.template.startswith(AUDIT_PATHS)


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return [Operation(method, path) for path, item in openapi["paths"].items()
            for method in item if method in HTTP_METHODS and path not in PUBLIC]


def fill_path(template: str, *, assessment_id: str, team_id: str) -> str:
    return (template.replace("{assessment_id}", assessment_id).replace("{team_id}", team_id)
            .replace("{version}", "1")
            .replace("{audit_event_id}", "0b0e7c1e-4b1c-4c55-9a51-4ad2e0f5d6a1"))


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
        "POST /v1/risk-assessments/{assessment_id}/positive-risk-decisions": {
            "goal_id": "goal-1", "decision": "Cycle to work", "safeguards": ["Helmet"],
            "review_date": "2031-05-01"},
    }
    return bodies.get(str(operation))
