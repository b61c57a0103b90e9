"""The crisis-plans service's operations, read from its OpenAPI document, with a valid request
for each: the security tests send them with the wrong caller, so nothing but the caller is
wrong."""

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
    # FHIR clients read the CapabilityStatement before they have a token; it holds no record.
    "/fhir/metadata": "FHIR CapabilityStatement",
}

#: The audit trail is the kit's, in every service; its access rules are tested in the kit.
AUDIT_PATHS = ("/v1/audit-events", "/fhir/AuditEvent")

#: POSTs that only read.
READING_POSTS = frozenset({"POST /v1/crisis-plans:batch-read",
                           "POST /v1/people/{service_user_id}/crisis-plan:break-glass"})

MEDICATION_DECISION = {
    "question": "Should I change my evening tablet?",
    "options_considered": [{"option": "Keep it as it is"}, {"option": "Take it earlier"}],
    "what_matters_to_me": "Waking up in time to take my son to school",
    "clinician_information": "Taking it two hours earlier usually helps with mornings",
    "decision_in_my_words": "I will take it at 8pm for a month",
    "one_thing_i_will_do": "Set an alarm at 8pm",
    "review_on": "2031-03-01",
}


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
    def is_plan_operation(self) -> bool:
        return not self.template.startswith(AUDIT_PATHS)


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return [Operation(method, path) for path, item in openapi["paths"].items()
            for method in item if method in HTTP_METHODS and path not in PUBLIC]


def fill_path(template: str, *, plan_id: str, service_user_id: str, team_id: str) -> str:
    return (template.replace("{plan_id}", plan_id)
            .replace("{service_user_id}", service_user_id).replace("{team_id}", team_id)
            .replace("{audit_event_id}", "0b0e7c1e-4b1c-4c55-9a51-4ad2e0f5d6a1"))


def query_for(operation: Operation, *, plan_id: str) -> dict[str, str] | None:
    """Query parameters an operation needs (FHIR searches name their target)."""
    if operation.template == "/fhir/Provenance":
        return {"target": f"CarePlan/{plan_id}"}
    return None


def valid_body(operation: Operation, *, service_user_id: str, team_id: str,
               content_hash: str = "sha256:" + "0" * 64) -> Any:
    """A body the operation accepts from a caller allowed to make it (None for reads)."""
    if operation.method == "get":
        return None
    bodies: dict[str, Any] = {
        "POST /v1/crisis-plans": {"service_user_id": service_user_id, "team_id": team_id,
                                  "triggers": ["Crowded trains"]},
        "POST /v1/crisis-plans:batch-read": {"service_user_ids": [service_user_id]},
        "PUT /v1/crisis-plans/{plan_id}": {"triggers": ["Crowded trains", "Shouting"],
                                           "review_on": "2031-06-01"},
        "POST /v1/crisis-plans/{plan_id}/signatures": {"content_hash": content_hash},
        "POST /v1/crisis-plans/{plan_id}/withdraw-agreement": {"reason": "I need to rethink"},
        "POST /v1/crisis-plans/{plan_id}/medication-decisions": MEDICATION_DECISION,
        "POST /v1/people/{service_user_id}/crisis-plan:break-glass": {
            "reason": "Brought to the emergency department confused"},
    }
    return bodies.get(str(operation), {})
