"""The FHIR R4 documents of topic-based subscriptions (HL7 Subscriptions R5 Backport IG): the
Subscription as read back, its status as R4 ``Parameters``, notification Bundles, and the
CapabilityStatement's Subscription entry advertising the topics."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recovery.common.fhir import instant, match, searchset, with_text
from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow
from recovery.gateway.fhir_subscriptions.models import (
    FILTER_CRITERIA,
    HEARTBEAT_PERIOD,
    MAX_COUNT,
    PAYLOAD_CONTENT,
    TIMEOUT,
    NotificationType,
    StoredSubscription,
)
from recovery.gateway.fhir_subscriptions.rules import FHIR_JSON, ID_ONLY, REST_HOOK
from recovery.gateway.fhir_subscriptions.topics import TOPICS

IG = "http://hl7.org/fhir/uv/subscriptions-backport"
SUBSCRIPTION_PROFILE = f"{IG}/StructureDefinition/backport-subscription"
STATUS_PROFILE = f"{IG}/StructureDefinition/backport-subscription-status-r4"
NOTIFICATION_PROFILE = f"{IG}/StructureDefinition/backport-subscription-notification-r4"
STATUS_OPERATION = f"{IG}/OperationDefinition/backport-subscription-status"
TOPIC_CANONICAL = f"{IG}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
SERVER_R4 = f"{IG}/CapabilityStatement/backport-subscription-server-r4"


@dataclass(frozen=True)
class NotificationEvent:
    """One event in a notification: its number for the subscription, when it happened, and
    the record it is about (``focus_type``/``focus_id``)."""

    number: int
    timestamp: datetime
    focus_type: str
    focus_id: str
    created: bool


def subscription_url(entry: StoredSubscription) -> str:
    return f"{entry.fhir_base}/Subscription/{entry.id}"


def subscription_resource(entry: StoredSubscription) -> dict[str, Any]:
    """The Subscription as the subscriber reads it back (headers included: they are theirs)."""
    channel: dict[str, Any] = {
        "type": REST_HOOK,
        "endpoint": entry.endpoint,
        "payload": FHIR_JSON,
        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": ID_ONLY}]},
    }
    extensions: list[dict[str, Any]] = [{"url": TIMEOUT,
                                         "valueUnsignedInt": entry.timeout_seconds}]
    if entry.heartbeat_seconds is not None:
        extensions.insert(0, {"url": HEARTBEAT_PERIOD,
                              "valueUnsignedInt": entry.heartbeat_seconds})
    if entry.max_count is not None:
        extensions.append({"url": MAX_COUNT, "valuePositiveInt": entry.max_count})
    channel["extension"] = extensions
    if entry.headers:
        channel["header"] = list(entry.headers)
    topic = TOPICS[entry.topic]
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "id": entry.id,
        "meta": {"versionId": str(entry.version),
                 "lastUpdated": instant(entry.updated_at or entry.created_at),
                 "profile": [SUBSCRIPTION_PROFILE]},
        "status": entry.status_at(utcnow()).value,
        "reason": entry.reason,
        "criteria": entry.topic,
        "_criteria": {"extension": [{
            "url": FILTER_CRITERIA,
            "valueString": f"{topic.focus}?patient=Patient/{entry.person}"}]},
        "channel": channel,
    }
    if entry.end is not None:
        resource["end"] = instant(entry.end)
    if entry.error:
        resource["error"] = entry.error
    return resource


def status_parameters(entry: StoredSubscription, kind: NotificationType,
                      event: NotificationEvent | None = None) -> dict[str, Any]:
    """The subscription's status as R4 ``Parameters`` (the IG's SubscriptionStatus for R4)."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription_url(entry)}},
        {"name": "topic", "valueCanonical": entry.topic},
        {"name": "status", "valueCode": entry.status_at(utcnow()).value},
        {"name": "type", "valueCode": kind.value},
        # A string in R4: its count may outgrow a 32-bit integer.
        {"name": "events-since-subscription-start",
         "valueString": str(event.number if event else entry.events_since_start)},
    ]
    if event is not None:
        parameters.append({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": instant(event.timestamp)},
            {"name": "focus", "valueReference": {
                "reference": f"{entry.fhir_base}/{event.focus_type}/{event.focus_id}"}},
        ]})
    if entry.error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": entry.error}})
    return {"resourceType": "Parameters", "id": new_id(), "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters}


def notification_bundle(entry: StoredSubscription, kind: NotificationType,
                        event: NotificationEvent | None = None) -> dict[str, Any]:
    """A history Bundle: the status first, then (id-only) an entry per focus with its URL and
    no resource. History Bundles need each entry's request and response."""
    status = status_parameters(entry, kind, event)
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{status['id']}",
        "resource": status,
        "request": {"method": "GET", "url": f"{subscription_url(entry)}/$status"},
        "response": {"status": "200"},
    }]
    if event is not None:
        relative = f"{event.focus_type}/{event.focus_id}"
        entries.append({
            "fullUrl": f"{entry.fhir_base}/{relative}",
            "request": ({"method": "POST", "url": event.focus_type} if event.created
                        else {"method": "PUT", "url": relative}),
            "response": {"status": "201" if event.created else "200"},
        })
    return {"resourceType": "Bundle", "id": new_id(), "meta": {"profile": [NOTIFICATION_PROFILE]},
            "type": "history", "timestamp": instant(utcnow()), "entry": entries}


def status_bundle(entry: StoredSubscription) -> dict[str, Any]:
    """The answer of ``$status``, as the IG's operation returns it: a searchset Bundle of the
    subscription's status (R4 Parameters of type ``query-status``)."""
    status = status_parameters(entry, NotificationType.query_status)
    return searchset([match(status, f"urn:uuid:{status['id']}")], total=1)


def subscriptions_bundle(entries: list[StoredSubscription], self_url: str) -> dict[str, Any]:
    """The caller's subscriptions as a searchset Bundle."""
    return searchset([match(with_text(subscription_resource(e)), subscription_url(e))
                      for e in entries],
                     links=[{"relation": "self", "url": self_url}], total=len(entries))


def with_subscription_topics(statement: dict[str, Any]) -> dict[str, Any]:
    """The merged CapabilityStatement with the Subscription resource: its interactions, the
    ``$status`` operation and each topic's canonical URL (the backport IG's extension)."""
    subscription = {
        "type": "Subscription",
        "extension": [{"url": TOPIC_CANONICAL, "valueCanonical": canonical}
                      for canonical in TOPICS],
        "supportedProfile": [SUBSCRIPTION_PROFILE],
        "interaction": [{"code": code} for code in ("read", "create", "delete",
                                                     "search-type")],
        "operation": [{"name": "status", "definition": STATUS_OPERATION}],
    }
    rest = [dict(part) for part in statement.get("rest") or [{"mode": "server"}]]
    resources = [r for r in rest[0].get("resource") or [] if r.get("type") != "Subscription"]
    rest[0]["resource"] = sorted([*resources, subscription], key=lambda r: str(r["type"]))
    instantiates = [*statement.get("instantiates", []), SERVER_R4]
    return {**statement, "instantiates": instantiates, "rest": rest}
