"""What a FHIR subscription may ask for, checked without HTTP or NATS: the rules' refusals,
the topics' event types against the services' own, the subscriber kept without its token,
and the endpoint allow-list setting."""

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.subscription import Subscription

from recovery.common.auth import Principal
from recovery.common.settings import Environment
from recovery.crisis_plans.events import PlanEvent
from recovery.gateway.fhir_subscriptions import rules
from recovery.gateway.fhir_subscriptions.models import (
    Extension,
    NotificationType,
    Status,
    StoredSubscription,
    Subscriber,
)
from recovery.gateway.fhir_subscriptions.resources import (
    NotificationEvent,
    notification_bundle,
    status_bundle,
    subscription_resource,
)
from recovery.gateway.fhir_subscriptions.topics import ACTIVE_CRISIS_PLAN, GOAL_CHANGED
from recovery.gateway.settings import GatewaySettings
from recovery.goals.events import GoalEvent

HOOKS = "https://hooks.example.org/recovery/"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def endpoint(url: str | None, environment: Environment = Environment.production,
             allowed: tuple[str, ...] = (HOOKS,)) -> str | None:
    refusal = rules.endpoint_refusal(url, environment=environment, allowed=allowed)
    return refusal.detail if refusal else None


def test_the_topics_name_the_events_the_services_publish() -> None:
    assert set(GOAL_CHANGED.event_types) == {e.value for e in GoalEvent}
    assert set(ACTIVE_CRISIS_PLAN.event_types) == {
        PlanEvent.agreed.value, PlanEvent.agreement_withdrawn.value,
        PlanEvent.entered_in_error.value}
    assert GOAL_CHANGED.creating == {GoalEvent.created.value, GoalEvent.proposed.value}


def test_production_notifies_only_https_endpoints_under_an_allowed_prefix() -> None:
    assert endpoint("https://hooks.example.org/recovery/ehr-1") is None
    assert endpoint("https://hooks.example.org/recovery/ehr-1?channel=2") is None
    assert "https" in str(endpoint("http://hooks.example.org/recovery/ehr-1"))
    assert "not among" in str(endpoint("https://hooks.example.org/other"))
    # A prefix is matched on the origin and whole path segments, never on the host's text.
    assert endpoint("https://hooks.example.org.evil.test/recovery/x") is not None
    assert endpoint("https://hooks.example.org:8443/recovery/x") is not None
    assert endpoint("https://hooks.example.org/recovery-evil/x") is not None
    assert endpoint("https://hooks.example.org/rec", allowed=("https://hooks.example.org/rec",)
                    ) is None
    assert endpoint("https://hooks.example.org/recx",
                    allowed=("https://hooks.example.org/rec",)) is not None


def test_an_endpoint_carries_no_credentials_and_is_an_absolute_web_url() -> None:
    assert "credentials" in str(endpoint("https://user:secret@hooks.example.org/recovery/x"))
    assert "fragment" in str(endpoint("https://hooks.example.org/recovery/x#part"))
    assert endpoint("ftp://hooks.example.org/recovery/x") is not None
    assert endpoint("/recovery/x") is not None
    assert endpoint(None) is not None


def test_without_an_allow_list_only_development_notifies_any_endpoint() -> None:
    assert endpoint("http://127.0.0.1:9999/x", Environment.development, ()) is None
    assert endpoint("http://127.0.0.1:9999/x", Environment.test, ()) is not None
    assert endpoint("https://anywhere.example.org/x", Environment.production, ()) is not None


def test_only_rest_hook_channels_with_id_only_fhir_json_payloads_are_offered() -> None:
    assert rules.channel_refusal("rest-hook") is None
    assert rules.channel_refusal("websocket") is not None
    id_only = [Extension(url="x", valueCode="id-only")]
    assert rules.payload_refusal("application/fhir+json", id_only) is None
    full = rules.payload_refusal("application/fhir+json",
                                 [Extension(url="x", valueCode="full-resource")])
    assert full is not None and full.status == 400
    assert full.detail.startswith("Only id-only notifications are offered")
    assert "full-resource was asked" in full.detail
    assert rules.payload_refusal("application/fhir+json",
                                 [Extension(url="x", valueCode="empty")]) is not None
    assert rules.payload_refusal("application/fhir+json", []) is not None
    assert rules.payload_refusal("application/fhir+xml", id_only) is not None


def test_a_filter_names_one_person_of_the_topics_focus() -> None:
    person = rules.filtered_person
    assert person(GOAL_CHANGED, ["Goal?patient=Patient/person-1"]) == "person-1"
    assert person(GOAL_CHANGED, ["Goal?patient=person-1"]) == "person-1"
    assert person(ACTIVE_CRISIS_PLAN, ["CarePlan?patient=Patient/p-2"]) == "p-2"
    for wrong in ([], ["CarePlan?patient=Patient/p"], ["Goal?subject=Patient/p"],
                  ["Goal?patient=Patient/p&lifecycle-status=active"], ["Goal?patient=../x"],
                  ["Goal?patient=Patient/p", "Goal?patient=Patient/q"]):
        assert person(GOAL_CHANGED, wrong) is None, wrong
        assert rules.filter_refusal(GOAL_CHANGED, wrong) is not None


def test_heartbeat_timeout_and_max_count_are_kept_within_bounds() -> None:
    def unsigned(value: int) -> Extension:
        return Extension(url="x", valueUnsignedInt=value)

    assert rules.heartbeat_refusal(None) is None
    assert rules.heartbeat_refusal(unsigned(60)) is None
    assert rules.heartbeat_refusal(unsigned(0)) is not None
    assert rules.heartbeat_refusal(Extension(url="x", valueString="60")) is not None
    assert rules.timeout_refusal(unsigned(rules.MAX_TIMEOUT_SECONDS)) is None
    assert rules.timeout_refusal(unsigned(rules.MAX_TIMEOUT_SECONDS + 1)) is not None
    assert rules.max_count_refusal(Extension(url="x", valuePositiveInt=1)) is None
    assert rules.max_count_refusal(Extension(url="x", valuePositiveInt=0)) is not None


def test_channel_headers_are_single_lines_the_server_does_not_set_itself() -> None:
    assert rules.header_refusal(["Authorization: Bearer abc"]) is None
    assert rules.header_refusal(["Content-Type: text/plain"]) is not None
    assert rules.header_refusal(["no colon"]) is not None
    assert rules.header_refusal(["X-A: b\r\nX-B: c"]) is not None
    assert rules.header_refusal([f"X-{i}: v" for i in range(rules.MAX_HEADERS + 1)]) is not None


def test_an_end_must_be_a_future_instant() -> None:
    assert rules.end_refusal(None, NOW) is None
    assert rules.end_refusal(NOW + timedelta(days=1), NOW) is None
    assert rules.end_refusal(NOW - timedelta(seconds=1), NOW) is not None
    assert rules.end_refusal(datetime(2027, 1, 1), NOW) is not None  # no time zone


def test_a_person_subscribes_only_for_themselves_staff_and_systems_ask_the_service() -> None:
    person = Principal(sub="p-1", roles=frozenset({"service_user"}), patient="p-1")
    app = Principal(sub="app-1", roles=frozenset(), patient="p-1")
    staff = Principal(sub="s-1", roles=frozenset({"clinician"}), teams=frozenset({"team-a"}))
    system = Principal(sub="partner", roles=frozenset({"system"}))
    nobody = Principal(sub="n-1")
    assert rules.subscriber_refusal(person, "p-1") is None
    assert rules.subscriber_refusal(person, "p-2") == rules.NOT_YOURS
    assert rules.subscriber_refusal(app, "p-2") == rules.NOT_YOURS
    assert rules.subscriber_refusal(staff, "p-2") is None
    assert rules.subscriber_refusal(system, "p-2") is None
    assert rules.subscriber_refusal(nobody, "p-1") == rules.NOT_YOURS


def test_the_subscriber_is_kept_without_its_token_and_reads_back_the_same() -> None:
    principal = Principal.from_claims({
        "sub": "s-1", "roles": ["clinician"], "teams": ["team-a", "team-b"],
        "scope": "user/Goal.rs user/CarePlan.read"}, token="secret-token")
    kept = Subscriber.of(principal)
    assert "secret-token" not in kept.model_dump_json()
    back = kept.principal()
    assert back.token == ""
    assert (back.sub, back.roles, back.teams, back.scopes) == (
        principal.sub, principal.roles, principal.teams, principal.scopes)


def stored(**changes: object) -> StoredSubscription:
    entry = StoredSubscription(
        id="01a2-sub", subscriber=Subscriber.of(Principal(sub="p-1", patient="p-1")),
        topic=GOAL_CHANGED.canonical, person="p-1", reason="Follow my goals",
        endpoint=HOOKS + "p-1", headers=[], heartbeat_seconds=60, timeout_seconds=10,
        max_count=5, end=None, fhir_base="https://fhir.example.org/fhir", status=Status.active,
        created_at=NOW, last_sent_at=NOW)
    return entry.model_copy(update=changes)


def test_an_active_subscription_past_its_end_is_off_and_beats_only_when_due() -> None:
    assert stored(end=NOW + timedelta(hours=1)).status_at(NOW) is Status.active
    assert stored(end=NOW).status_at(NOW) is Status.off
    assert not stored().heartbeat_due(NOW + timedelta(seconds=59))
    assert stored().heartbeat_due(NOW + timedelta(seconds=60))
    assert not stored(status=Status.error).heartbeat_due(NOW + timedelta(hours=1))
    assert not stored(heartbeat_seconds=None).heartbeat_due(NOW + timedelta(hours=1))


def test_the_documents_are_valid_r4_resources() -> None:
    entry = stored(events_since_start=3, error=None)
    Subscription.model_validate(subscription_resource(entry))
    for kind in (NotificationType.handshake, NotificationType.heartbeat):
        Bundle.model_validate(notification_bundle(entry, kind))
    event = NotificationEvent(number=3, timestamp=NOW, focus_type="Goal", focus_id="g-1",
                              created=False)
    bundle = notification_bundle(entry, NotificationType.event_notification, event)
    Bundle.model_validate(bundle)
    Parameters.model_validate(bundle["entry"][0]["resource"])
    assert bundle["entry"][1] == {"fullUrl": "https://fhir.example.org/fhir/Goal/g-1",
                                  "request": {"method": "PUT", "url": "Goal/g-1"},
                                  "response": {"status": "200"}}
    Bundle.model_validate(status_bundle(stored(status=Status.error, error="It failed.")))


@pytest.mark.parametrize("value", ["https://a.example/x/, https://b.example/y/",
                                   '["https://a.example/x/", "https://b.example/y/"]'])
def test_the_endpoint_allow_list_is_read_comma_separated_or_as_json(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RECOVERY_FHIR_SUBSCRIPTION_ENDPOINTS", value)
    assert GatewaySettings().fhir_subscription_endpoints == ["https://a.example/x/",
                                                             "https://b.example/y/"]
