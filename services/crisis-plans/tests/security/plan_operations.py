"""The crisis-plans service's operations, read from its OpenAPI document, with a valid request
for each: the security tests send them with the wrong caller, so nothing but the caller is
wrong."""

from typing import Any

from recovery.common.testing import openapi_operations as kit
from recovery.common.testing.openapi_operations import HTTP_METHODS, PROBLEM, Operation

__all__ = ["HTTP_METHODS", "MEDICATION_DECISION", "PROBLEM", "PUBLIC", "Operation",
           "fill_path", "protected_operations", "query_for", "valid_body"]

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {**kit.OPERATIONAL_ROUTES, **kit.FHIR_METADATA}

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


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return kit.protected_operations(openapi, public=PUBLIC, reading_posts=READING_POSTS)


def fill_path(template: str, *, plan_id: str, service_user_id: str, team_id: str) -> str:
    return kit.fill_path(template, plan_id=plan_id, service_user_id=service_user_id,
                         team_id=team_id)


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
        "POST /v1/crisis-plans/{plan_id}/entered-in-error": {"reason": "duplicate"},
        "POST /v1/people/{service_user_id}/crisis-plan:break-glass": {
            "reason": "Brought to the emergency department confused"},
    }
    return bodies.get(str(operation), {})
