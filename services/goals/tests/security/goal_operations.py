"""The goals service's operations, read from its OpenAPI document, with a valid request for
each: the security tests send them with the wrong caller, so nothing but the caller is wrong."""

from typing import Any

import httpx
from conftest import assert_outcome

from recovery.common.fhir import TEAM, TEAM_SYSTEM
from recovery.common.testing import openapi_operations as kit
from recovery.common.testing.access import assert_problem
from recovery.common.testing.openapi_operations import HTTP_METHODS, PROBLEM, Operation

__all__ = ["HTTP_METHODS", "PROBLEM", "PUBLIC", "Operation", "assert_refused", "fhir_goal",
           "fill_path", "protected_operations", "valid_body"]

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {**kit.OPERATIONAL_ROUTES, **kit.FHIR_METADATA,
          "/fhir/.well-known/smart-configuration":
              "SMART discovery: where to get a token; it holds no record"}

#: POSTs that only read.
READING_POSTS = frozenset({"POST /v1/goals:batch-read"})


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return kit.protected_operations(openapi, public=PUBLIC, reading_posts=READING_POSTS)


def fill_path(template: str, *, goal_id: str, step_id: str, team_id: str,
              person: str = "su-1") -> str:
    return kit.fill_path(template, goal_id=goal_id, step_id=step_id, team_id=team_id,
                         version_id="1", person=person)


def fhir_goal(*, service_user_id: str, team_id: str, description: str = "Learn to drive",
              **elements: Any) -> dict[str, Any]:
    """A FHIR Goal as an EHR sends it: about this person, in this team."""
    return {"resourceType": "Goal", "description": {"text": description},
            "subject": {"reference": f"Patient/{service_user_id}"},
            "extension": [{"url": TEAM,
                           "valueIdentifier": {"system": TEAM_SYSTEM, "value": team_id}}],
            **elements}


def assert_refused(response: httpx.Response, status: int, kind: str, what: str) -> None:
    """A refusal as the path's API gives it: a problem document under /v1, an
    OperationOutcome (whose issue type stands for the status) under /fhir."""
    if response.request.url.path.startswith("/fhir/"):
        assert_outcome(response, status, what)
    else:
        assert_problem(response, status, kind, what)


def valid_body(operation: Operation, *, service_user_id: str, team_id: str,
               goal_id: str = "") -> Any:
    """A body the operation accepts from a caller allowed to make it (None for reads)."""
    if operation.method == "get":
        return None
    if str(operation) == "PUT /fhir/Goal/{goal_id}":
        return fhir_goal(service_user_id=service_user_id, team_id=team_id, id=goal_id,
                         target=[{"dueDate": "2031-05-01"}])
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
        "POST /fhir/Goal": fhir_goal(service_user_id=service_user_id, team_id=team_id,
                                     lifecycleStatus="proposed"),
    }
    return bodies.get(str(operation), {})
