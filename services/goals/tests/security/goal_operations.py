"""The goals service's operations, read from its OpenAPI document, with a valid request for
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
    # FHIR clients read the CapabilityStatement before they have a token, to learn how to
    # get one; it describes the server and holds no record.
    "/fhir/metadata": "FHIR CapabilityStatement",
}

#: The audit trail is the kit's, in every service; its access rules are tested in the kit.
AUDIT_PATHS = ("/v1/audit-events", "/fhir/AuditEvent")

#: POSTs that only read.
READING_POSTS = frozenset({"POST /v1/goals:batch-read"})


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
    def is_goal_operation(self) -> bool:
        return not self.template.startswith(AUDIT_PATHS)


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return [Operation(method, path) for path, item in openapi["paths"].items()
            for method in item if method in HTTP_METHODS and path not in PUBLIC]


def fill_path(template: str, *, goal_id: str, step_id: str, team_id: str) -> str:
    return (template.replace("{goal_id}", goal_id).replace("{step_id}", step_id)
            .replace("{team_id}", team_id)
            .replace("{audit_event_id}", "0b0e7c1e-4b1c-4c55-9a51-4ad2e0f5d6a1"))


def valid_body(operation: Operation, *, service_user_id: str, team_id: str) -> Any:
    """A body the operation accepts from a caller allowed to make it (None for reads)."""
    if operation.method == "get":
        return None
    bodies: dict[str, Any] = {
        "POST /v1/goals": {"service_user_id": service_user_id, "team_id": team_id,
                           "description": "Learn to drive"},
        "POST /v1/goals:batch-read": {"service_user_ids": [service_user_id]},
        "PATCH /v1/goals/{goal_id}": {"target_date": "2031-05-01"},
        "POST /v1/goals/{goal_id}/accept": {"reason": "It is mine"},
        "POST /v1/goals/{goal_id}/decline": {"reason": "Not now"},
        "POST /v1/goals/{goal_id}/status": {"status": "on-hold"},
        "POST /v1/goals/{goal_id}/steps": {"who": "service_user", "what": "Book a lesson"},
        "PATCH /v1/goals/{goal_id}/steps/{step_id}": {"done": True},
        "POST /v1/goals/{goal_id}/reviews": {"achievement_status": "improving"},
    }
    return bodies.get(str(operation), {})
