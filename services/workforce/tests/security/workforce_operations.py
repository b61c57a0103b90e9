"""The workforce service's operations, read from its OpenAPI document, with a valid request
for each: the security tests send them with the wrong caller, so nothing but the caller is
wrong."""

from datetime import date, timedelta
from typing import Any

from recovery.common.testing import openapi_operations as kit
from recovery.common.testing.openapi_operations import HTTP_METHODS, PROBLEM, Operation

__all__ = ["HTTP_METHODS", "PROBLEM", "PUBLIC", "Operation", "fill_path",
           "protected_operations", "query_for", "valid_body"]

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {**kit.OPERATIONAL_ROUTES, **kit.FHIR_METADATA}


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return kit.protected_operations(openapi, public=PUBLIC)


def fill_path(template: str, *, team_id: str, staff_id: str) -> str:
    return kit.fill_path(template, team_id=team_id, staff_id=staff_id)


def query_for(operation: Operation) -> dict[str, str]:
    if operation.template.endswith("/peer-support-billing"):
        today = date.today()
        return {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()}
    return {}


def valid_body(operation: Operation, *, team_id: str, staff_id: str, other_team: str,
               supervisor_id: str, new_team: str) -> Any:
    """A body the operation accepts from a caller allowed to make it (None for reads)."""
    if operation.method == "get":
        return None
    today = date.today().isoformat()
    bodies: dict[str, Any] = {
        "POST /v1/teams": {"id": new_team, "name": "Crisis resolution"},
        "PUT /v1/teams/{team_id}/recovery-lead": {"staff_id": staff_id},
        "POST /v1/staff": {"team_id": team_id, "display_name": "Kim Lee",
                           "profession": "psychology", "grade": "band-7",
                           "role_type": "professional", "fte": 0.5, "start_date": today},
        "PATCH /v1/staff/{staff_id}": {"fte": 0.8},
        "POST /v1/staff/{staff_id}/move": {"team_id": other_team, "effective_date": today},
        "POST /v1/staff/{staff_id}/leave": {"end_date": today},
        "PUT /v1/staff/{staff_id}/lived-experience": {"declared": True},
        "POST /v1/care-contacts": {"staff_id": staff_id, "service_user_id": "su-1",
                                   "minutes": 45, "mode": "group", "occurred_on": today},
        "POST /v1/supervision-sessions": {"staff_id": staff_id, "supervisor_id": supervisor_id,
                                          "held_on": today, "recovery_focused": True,
                                          "quality": 4},
        "POST /v1/appraisals": {"staff_id": staff_id, "held_on": today,
                                "service_user_feedback_included": True},
        "POST /v1/recruitment-panels": {"team_id": team_id, "role_type": "peer_specialist",
                                        "held_on": today,
                                        "members": ["staff", "service_user"]},
        "POST /v1/teams/{team_id}/climate-survey-responses": {"responded_on": today,
                                                              "answers": [4, 4, 3, 5, 4]},
    }
    return bodies.get(str(operation), {})
