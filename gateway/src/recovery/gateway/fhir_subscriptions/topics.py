"""The subscription topics the gateway offers: what each is about (its focus resource type
and owning service), which of the services' events raise it, and how its records are listed.

The event types are those of ``docs/asyncapi.yaml``; a test holds them equal to the
services' own enums, which the gateway does not import.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recovery.common.events.envelope import CloudEvent
from recovery.common.fhir import BASE

TOPIC_BASE = f"{BASE}/SubscriptionTopic"
GOAL_EVENT = "recovery.goals.goal."


@dataclass(frozen=True)
class Topic:
    """One topic: changes to records of ``focus``, held by ``service`` (events on ``stream``)."""

    canonical: str
    title: str
    focus: str
    service: str
    stream: str
    event_types: tuple[str, ...]
    #: The event data member naming the record (the event's subject names it too).
    focus_key: str
    #: Events that made the record (a notification entry's request is then a POST).
    creating: frozenset[str]
    #: The owning service's list of one person's records: path and query, ``{person}`` in
    #: either standing for the person's id.
    person_records: str
    person_query: Mapping[str, str]

    def raised_by(self, event: CloudEvent) -> bool:
        return event.type in self.event_types

    def focus_id(self, event: CloudEvent) -> str:
        return str(event.data.get(self.focus_key) or event.subject)

    def records_of(self, person: str) -> tuple[str, dict[str, Any]]:
        """The path and query of a person's records at the owning service (one is enough)."""
        query: dict[str, Any] = {k: v.format(person=person) for k, v in self.person_query.items()}
        return self.person_records.format(person=person), {**query, "limit": 1}


ACTIVE_CRISIS_PLAN = Topic(
    canonical=f"{TOPIC_BASE}/active-crisis-plan-changed",
    title="A person's active crisis plan changed",
    focus="CarePlan",
    service="crisis-plans",
    stream="CRISIS_PLANS",
    # What changes which version is active: a version agreed, the person's agreement
    # withdrawn, the plan marked made in error. A new draft leaves the agreed version active.
    event_types=("recovery.crisis-plans.plan.agreed",
                 "recovery.crisis-plans.plan.agreement-withdrawn",
                 "recovery.crisis-plans.plan.entered-in-error"),
    focus_key="plan_id",
    creating=frozenset(),
    person_records="/v1/people/{person}/crisis-plans",
    person_query={"include_entered_in_error": "true"},
)

GOAL_CHANGED = Topic(
    canonical=f"{TOPIC_BASE}/goal-changed",
    title="A goal of a person changed",
    focus="Goal",
    service="goals",
    stream="GOALS",
    event_types=tuple(GOAL_EVENT + verb for verb in (
        "created", "proposed", "accepted", "declined", "updated", "status-changed",
        "reviewed", "completed")),
    focus_key="goal_id",
    creating=frozenset({GOAL_EVENT + "created", GOAL_EVENT + "proposed"}),
    person_records="/v1/goals",
    person_query={"service_user_id": "{person}"},
)

TOPICS: dict[str, Topic] = {t.canonical: t for t in (ACTIVE_CRISIS_PLAN, GOAL_CHANGED)}
#: The streams the notifier reads, each with the topics its events raise.
STREAMS: dict[str, tuple[Topic, ...]] = {
    stream: tuple(t for t in TOPICS.values() if t.stream == stream)
    for stream in dict.fromkeys(t.stream for t in TOPICS.values())}


def topic_raised(stream: str, event: CloudEvent) -> Topic | None:
    """The topic this event of ``stream`` raises, if any."""
    return next((t for t in STREAMS.get(stream, ()) if t.raised_by(event)), None)
