"""Events the risk service publishes (documented in ``docs/asyncapi.yaml``).

Payloads carry ids, area codes, statuses and dates only: never either side's views,
strengths, safety plan or the words of a decision.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from recovery.risk.models import RiskAssessment

ASSESSMENT = "recovery.risk.assessment."
DECISION = "recovery.risk.positive-risk-decision."


class RiskEvent(StrEnum):
    """Event type (also the NATS subject) for each change."""

    drafted = ASSESSMENT + "drafted"  # a new version (the first, or one after an edit)
    signed = ASSESSMENT + "signed"  # one party signed; not yet agreed
    agreed = ASSESSMENT + "agreed"
    agreed_with_differences = ASSESSMENT + "agreed-with-differences"
    agreement_withdrawn = ASSESSMENT + "agreement-withdrawn"
    review_due = ASSESSMENT + "review-due"
    entered_in_error = ASSESSMENT + "entered-in-error"
    decision_recorded = DECISION + "recorded"


def assessment_event_data(assessment: RiskAssessment, *, changed_by: str,
                          occurred_at: datetime, areas: list[str],
                          differing_areas: list[str], party: str | None = None
                          ) -> dict[str, Any]:
    """The event's ``data``: enough for routing, subscriptions and team figures."""
    data: dict[str, Any] = {
        "assessment_id": assessment.id,
        "service_user_id": assessment.service_user_id,
        "team_id": assessment.team_id,
        "status": assessment.status,
        "version": assessment.version,
        "active_version": assessment.active_version,
        "areas": sorted(areas),
        "differing_areas": sorted(differing_areas),
        "review_date": assessment.review_date.isoformat() if assessment.review_date else None,
        "changed_by": changed_by,
        "occurred_at": occurred_at.isoformat(),
    }
    if assessment.entered_in_error_reason is not None:
        data["entered_in_error_reason"] = assessment.entered_in_error_reason
    if party is not None:
        data["party"] = party
    return data


def decision_event_data(assessment: RiskAssessment, *, decision_id: str, goal_id: str,
                        review_date: str, changed_by: str, occurred_at: datetime
                        ) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "assessment_id": assessment.id,
        "service_user_id": assessment.service_user_id,
        "team_id": assessment.team_id,
        "goal_id": goal_id,
        "version": assessment.version,
        "review_date": review_date,
        "changed_by": changed_by,
        "occurred_at": occurred_at.isoformat(),
    }
