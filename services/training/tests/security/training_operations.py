"""The training service's operations, read from its OpenAPI document, with a valid request for
each: the security tests send them with the wrong caller, so nothing but the caller is wrong."""

from dataclasses import dataclass
from typing import Any

from recovery.common.testing import openapi_operations as kit
from recovery.common.testing.openapi_operations import HTTP_METHODS, PROBLEM, Operation

__all__ = ["HTTP_METHODS", "PROBLEM", "PUBLIC", "Operation", "Records",
           "protected_operations", "valid_body"]

#: Routes that answer without a token, and why. Nothing else may.
PUBLIC = {**kit.OPERATIONAL_ROUTES, **kit.FHIR_METADATA}


def protected_operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation except the public routes."""
    return kit.protected_operations(openapi, public=PUBLIC)


@dataclass(frozen=True)
class Records:
    """The ids the operations' paths name."""

    course_id: str
    run_id: str
    educator_id: str
    enrolment_id: str
    staff_id: str
    team_id: str

    def fill(self, template: str) -> str:
        return kit.fill_path(template, course_id=self.course_id, run_id=self.run_id,
                             educator_id=self.educator_id, enrolment_id=self.enrolment_id,
                             staff_id=self.staff_id, team_id=self.team_id)


def valid_body(operation: Operation, *, learner_id: str) -> Any:
    """A body the operation accepts from a caller allowed to make it (None for reads)."""
    if operation.method == "get":
        return None
    bodies: dict[str, Any] = {
        "POST /v1/courses": {"title": "Peer support basics", "learning_outcomes": ["Listen"],
                             "audience": ["staff"], "co_produced_with": ["Peer trainers"]},
        "PATCH /v1/courses/{course_id}": {"title": "Renamed"},
        "POST /v1/courses/{course_id}/runs": {"starts_on": "2030-01-01",
                                              "ends_on": "2030-01-02", "online": True,
                                              "capacity": 5, "facilitator_ids": ["x", "y"]},
        "POST /v1/runs/{run_id}/delivery": {"delivered_by": ["x", "y"]},
        "POST /v1/runs:batch-read": {"course_ids": ["x"]},
        "POST /v1/educators": {"display_name": "Sam", "kind": "peer_educator",
                               "lived_experience": True},
        "POST /v1/educators/{educator_id}/training": {"title": "Train the trainer",
                                                      "completed_on": "2029-01-01"},
        "POST /v1/educators/{educator_id}/supervision": {"held_on": "2029-01-01",
                                                         "supervisor": "Lead"},
        "POST /v1/educators/{educator_id}/support": {"provided_on": "2029-01-01",
                                                     "kind": "debrief"},
        "POST /v1/runs/{run_id}/enrolments": {"learner_id": learner_id},
        "POST /v1/enrolments/{enrolment_id}/attendance": {"attended": False},
        "POST /v1/enrolments/{enrolment_id}/completion": {"completed_on": "2030-03-02"},
        "POST /v1/enrolments/{enrolment_id}/feedback": {"rating": 1, "words": "Private"},
    }
    return bodies.get(str(operation), {})
