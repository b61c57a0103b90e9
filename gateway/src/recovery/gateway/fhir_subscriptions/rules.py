"""What a subscription may ask for, as plain functions: each ``*_refusal`` says why a request
is refused, or None. The routes turn a refusal into a problem document."""

import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from recovery.common.auth import Principal
from recovery.common.rules import Refusal
from recovery.common.settings import Environment
from recovery.gateway.fhir_subscriptions.models import Extension
from recovery.gateway.fhir_subscriptions.topics import TOPICS, Topic
from recovery.gateway.upstream import ID_PATTERN

REST_HOOK = "rest-hook"
FHIR_JSON = "application/fhir+json"
ID_ONLY = "id-only"
#: A notification's POST may take this long by default, and at most this long if asked.
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 60
MAX_HEARTBEAT_SECONDS = 86_400
MAX_HEADERS = 10
MAX_HEADER_LENGTH = 1024
#: Headers the gateway sets itself or that belong to the connection.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "connection",
                              "transfer-encoding", "upgrade", "te", "trailer"})
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
#: One answer for every refusal on access, so it tells nothing of whose records exist.
NOT_YOURS = Refusal(403, "subscription-not-allowed",
                    "You may subscribe only to changes of records you may read.")


def topic_refusal(criteria: str) -> Refusal | None:
    if criteria not in TOPICS:
        return Refusal(400, "unknown-topic",
                       "criteria must be the canonical URL of a topic this server offers: "
                       + ", ".join(TOPICS) + ".", field="criteria")
    return None


def filtered_person(topic: Topic, filters: Sequence[str]) -> str | None:
    """The person a filter such as ``Goal?patient=Patient/<id>`` names, if it is one."""
    if len(filters) != 1:
        return None
    resource, _, query = filters[0].partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    if resource != topic.focus or len(params) != 1 or params[0][0] != "patient":
        return None
    person = params[0][1].removeprefix("Patient/")
    return person if ID_PATTERN.fullmatch(person) and person not in {".", ".."} else None


def filter_refusal(topic: Topic, filters: Sequence[str]) -> Refusal | None:
    """One filter criterion naming one person: every subscription is about one person."""
    if filtered_person(topic, filters) is None:
        return Refusal(400, "invalid-filter",
                       "Give one backport-filter-criteria extension on criteria naming the "
                       f"person: {topic.focus}?patient=Patient/<id>.", field="_criteria")
    return None


def channel_refusal(channel_type: str) -> Refusal | None:
    if channel_type != REST_HOOK:
        return Refusal(400, "unsupported-channel",
                       f"Only the rest-hook channel is offered, not '{channel_type}'.",
                       field="channel.type")
    return None


def payload_refusal(payload: str | None, contents: Sequence[Extension]) -> Refusal | None:
    """Notifications carry ids only: a focus's URL, never the record (the subscriber reads it
    with its own token, so the services decide what it sees)."""
    if payload != FHIR_JSON:
        return Refusal(400, "unsupported-payload",
                       f"channel.payload must be {FHIR_JSON}.", field="channel.payload")
    codes = [e.valueCode for e in contents]
    if codes != [ID_ONLY]:
        named = f" ({codes[0]} was asked)" if len(codes) == 1 else ""
        return Refusal(400, "unsupported-payload-content",
                       "Only id-only notifications are offered: give one "
                       f"backport-payload-content extension of {ID_ONLY} on "
                       f"channel.payload{named}.", field="channel._payload")
    return None


def endpoint_refusal(endpoint: str | None, *, environment: Environment,
                     allowed: Sequence[str]) -> Refusal | None:
    """An absolute http(s) URL without credentials: https only in production, and under one
    of the configured prefixes (any, with none configured, in development only)."""
    def refused(why: str) -> Refusal:
        return Refusal(400, "endpoint-not-allowed", why, field="channel.endpoint")

    if not endpoint:
        return refused("A rest-hook channel needs an endpoint.")
    url = urlsplit(endpoint)
    if url.scheme not in {"http", "https"} or not url.hostname:
        return refused("The endpoint must be an absolute http or https URL.")
    if url.username is not None or url.fragment:
        return refused("The endpoint may carry no credentials and no fragment; send "
                       "credentials in channel.header.")
    if environment is Environment.production and url.scheme != "https":
        return refused("The endpoint must use https.")
    if not allowed:
        if environment is Environment.development:
            return None
        return refused("No notification endpoints are allowed on this server.")
    if not any(under_prefix(endpoint, prefix) for prefix in allowed):
        return refused("The endpoint is not among those this server may notify.")
    return None


def under_prefix(endpoint: str, prefix: str) -> bool:
    """The endpoint is the prefix's origin, and its path is the prefix's or below it (a
    host name's prefix never counts: ``https://a.example`` does not allow
    ``https://a.example.evil``)."""
    url, allowed = urlsplit(endpoint), urlsplit(prefix)
    try:
        same_origin = (url.scheme == allowed.scheme and url.hostname == allowed.hostname
                       and url.port == allowed.port)
    except ValueError:  # a port that is not a number
        return False
    if not same_origin:
        return False
    base = allowed.path or "/"
    if base.endswith("/"):
        return (url.path or "/").startswith(base)
    return url.path == base or url.path.startswith(base + "/")


def heartbeat_refusal(period: Extension | None) -> Refusal | None:
    if period is not None and not (
            period.valueUnsignedInt is not None
            and 1 <= period.valueUnsignedInt <= MAX_HEARTBEAT_SECONDS):
        return Refusal(400, "unsupported-heartbeat",
                       "backport-heartbeat-period must be a valueUnsignedInt from 1 to "
                       f"{MAX_HEARTBEAT_SECONDS} seconds.", field="channel.extension")
    return None


def timeout_refusal(timeout: Extension | None) -> Refusal | None:
    if timeout is not None and not (
            timeout.valueUnsignedInt is not None
            and 1 <= timeout.valueUnsignedInt <= MAX_TIMEOUT_SECONDS):
        return Refusal(400, "unsupported-timeout",
                       "backport-timeout must be a valueUnsignedInt from 1 to "
                       f"{MAX_TIMEOUT_SECONDS} seconds.", field="channel.extension")
    return None


def max_count_refusal(max_count: Extension | None) -> Refusal | None:
    """Each notification carries one event, so any positive maximum is kept."""
    if max_count is not None and not (
            max_count.valuePositiveInt is not None and max_count.valuePositiveInt >= 1):
        return Refusal(400, "unsupported-max-count",
                       "backport-max-count must be a valuePositiveInt.",
                       field="channel.extension")
    return None


def header_refusal(headers: Sequence[str]) -> Refusal | None:
    """``Name: value`` lines the gateway adds to each POST; not the ones it sets itself."""
    def refused(why: str) -> Refusal:
        return Refusal(400, "invalid-header", why, field="channel.header")

    if len(headers) > MAX_HEADERS:
        return refused(f"At most {MAX_HEADERS} channel headers.")
    for header in headers:
        name, colon, value = header.partition(":")
        if not colon or not HEADER_NAME.fullmatch(name.strip()) or len(header) > \
                MAX_HEADER_LENGTH or any(c in value for c in "\r\n\0"):
            return refused("Each channel header is 'Name: value' on one line.")
        if name.strip().lower() in RESERVED_HEADERS:
            return refused(f"The {name.strip()} header is set by the server.")
    return None


def end_refusal(end: datetime | None, now: datetime) -> Refusal | None:
    if end is not None and (end.tzinfo is None or end <= now):
        return Refusal(400, "invalid-end", "end must be an instant (with its time zone) in "
                                           "the future.", field="end")
    return None


def subscriber_refusal(principal: Principal, person: str) -> Refusal | None:
    """A service user, or an app acting for one, subscribes only for themselves; staff and
    partner systems go on to ask the owning service."""
    own = principal.own_person()
    if own is not None or principal.is_service_user:
        return None if own == person else NOT_YOURS
    return None if principal.is_staff or principal.is_system else NOT_YOURS
