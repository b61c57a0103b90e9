"""Events the crisis-plans service publishes (documented in ``docs/asyncapi.yaml``).

Payloads carry ids, statuses, versions, hashes and dates only: never what the plan says, nor
a break-glass reason.
"""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from recovery.crisis_plans.models import CrisisPlan, MedicationDecision

PREFIX = "recovery.crisis-plans."


class PlanEvent(StrEnum):
    """Event type (also the NATS subject) for each change to a crisis plan."""

    created = PREFIX + "plan.created"
    version_drafted = PREFIX + "version.drafted"
    version_signed = PREFIX + "version.signed"
    agreed = PREFIX + "plan.agreed"
    agreement_withdrawn = PREFIX + "plan.agreement-withdrawn"
    review_due = PREFIX + "plan.review-due"
    break_glass = PREFIX + "break-glass.accessed"
    entered_in_error = PREFIX + "plan.entered-in-error"
    decision_recorded = PREFIX + "medication-decision.recorded"
    decision_review_due = PREFIX + "medication-decision.review-due"


@dataclass(slots=True)
class PlanFacts:
    """What a change's events say of a plan the change did not load as a ``CrisisPlan``."""

    id: str
    service_user_id: str
    team_id: str
    status: str
    version: int
    active_version: int | None
    review_on: date | None
    not_individualised: bool
    updated_at: datetime
    entered_in_error_reason: str | None = None


def plan_event_data(plan: CrisisPlan | PlanFacts, *, changed_by: str, version: int | None = None,
                    content_hash: str | None = None, party: str | None = None,
                    access_id: str | None = None) -> dict[str, Any]:
    """The event's ``data``: enough for routing, subscriptions and team figures."""
    data: dict[str, Any] = {
        "plan_id": plan.id,
        "service_user_id": plan.service_user_id,
        "team_id": plan.team_id,
        "status": plan.status,
        "version": version if version is not None else plan.version,
        "newest_version": plan.version,
        "active_version": plan.active_version,
        "review_on": plan.review_on.isoformat() if plan.review_on else None,
        "not_individualised": plan.not_individualised,
        "changed_by": changed_by,
        "occurred_at": plan.updated_at.isoformat(),
    }
    if plan.entered_in_error_reason is not None:
        data["entered_in_error_reason"] = plan.entered_in_error_reason
    if content_hash is not None:
        data["content_hash"] = content_hash
    if party is not None:
        data["party"] = party
    if access_id is not None:
        data["access_id"] = access_id
    return data


def decision_event_data(plan: CrisisPlan, decision: MedicationDecision) -> dict[str, Any]:
    """A shared decision on medication: ids and dates; never what was decided or why."""
    return {
        "decision_id": decision.id,
        "plan_id": plan.id,
        "service_user_id": plan.service_user_id,
        "team_id": plan.team_id,
        "review_on": decision.review_on.isoformat() if decision.review_on else None,
        "revisits": decision.revisits,
        "recorded_by": decision.recorded_by,
        "occurred_at": decision.recorded_at.isoformat(),
    }
