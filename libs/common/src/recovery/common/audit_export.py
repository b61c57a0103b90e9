"""Reading the audit trail back: ``/v1/audit-events`` and FHIR R4 ``/fhir/AuditEvent``.

Every service app includes this router. Only admins and partner systems with an explicit
``system/AuditEvent`` scope may read it, and each read is itself audited.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator
from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import AuditEvent, Outcome, audit_entry
from recovery.common.auth import AUDIT_RESOURCE, Principal, Verb, can_read_audit_trail
from recovery.common.deps import KitDep, PrincipalDep
from recovery.common.http import json_response
from recovery.common.pagination import Page, decode_time_cursor, keyset_page, page_size
from recovery.common.problems import Problem, problem_responses
from recovery.common.timeutil import as_utc

FHIR_MEDIA_TYPE = "application/fhir+json"
PLATFORM_SYSTEM = "https://recovery-platform.org/fhir"
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"

# Our action words, mapped to the FHIR AuditEvent action (C/R/U/D/E) and, where one fits,
# the restful-interaction code. Words not listed are "E" (execute) with our code only.
_ACTIONS: dict[str, tuple[str, str | None]] = {
    "create": ("C", "create"), "propose": ("C", "create"),
    "read": ("R", "read"), "vread": ("R", "vread"), "history": ("R", "history-instance"),
    "list": ("R", "search-type"), "search": ("R", "search-type"),
    "batch-read": ("R", "search-type"), "aggregate": ("R", "search-type"),
    "update": ("U", "update"), "patch": ("U", "patch"), "accept": ("U", "update"),
    "decline": ("U", "update"), "review": ("U", "update"), "status": ("U", "update"),
    "complete": ("U", "update"), "delete": ("D", "delete"),
    "entered-in-error": ("D", "delete"),
}
_FHIR_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def _iso_time(value: object) -> object:
    """Times in queries are ISO 8601 text; pydantic alone would take ``0.5`` as a timestamp."""
    if isinstance(value, str) and not _ISO_DATE_TIME.fullmatch(value):
        raise ValueError("expected an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    return value


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(value)
    except OverflowError as exc:
        raise Problem(400, "That time is out of range.", kind="invalid-search") from exc


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_time)]


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


class AuditEventPublic(BaseModel):
    """One audit entry as the REST API shows it."""

    id: str
    recorded_at: datetime
    actor: str
    actor_roles: list[str]
    record_type: str
    record_id: str | None
    service_user_id: str | None
    action: str
    outcome: str
    source_address: str | None
    request_id: str | None
    purpose: str | None

    @classmethod
    def of(cls, row: AuditEvent) -> "AuditEventPublic":
        data = row.model_dump()
        data["actor_roles"] = row.actor_roles.split()
        return cls.model_validate(data)


@dataclass(frozen=True)
class AuditFilters:
    """What an audit search is narrowed to; every field is optional."""

    record_type: str | None = None
    record_id: str | None = None
    service_user_id: str | None = None
    actor: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


async def search_audit_events(session: AsyncSession, filters: AuditFilters, *, limit: int,
                              cursor: str | None = None) -> tuple[list[AuditEvent], str | None]:
    """Entries in the order they were recorded, one keyset page at a time."""
    query = select(AuditEvent)
    recorded = col(AuditEvent.recorded_at)
    for column, value in ((AuditEvent.record_type, filters.record_type),
                          (AuditEvent.record_id, filters.record_id),
                          (AuditEvent.service_user_id, filters.service_user_id),
                          (AuditEvent.actor, filters.actor),
                          (AuditEvent.outcome, filters.outcome)):
        if value is not None:
            query = query.where(col(column) == value)
    if filters.since is not None:
        query = query.where(recorded >= filters.since)
    if filters.until is not None:
        query = query.where(recorded < filters.until)
    if cursor:
        after_time, after_id = decode_time_cursor(cursor)
        query = query.where(or_(recorded > after_time,
                                and_(recorded == after_time, col(AuditEvent.id) > after_id)))
    query = query.order_by(recorded, col(AuditEvent.id)).limit(limit + 1)
    rows = (await session.exec(query)).all()
    return keyset_page(rows, limit, lambda row: (row.recorded_at, row.id))


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def to_fhir_audit_event(row: AuditEvent, *, service: str) -> dict[str, Any]:
    """The entry as a FHIR R4 AuditEvent resource."""
    action, interaction = _ACTIONS.get(row.action, ("E", None))
    subtype = [_coding(f"{PLATFORM_SYSTEM}/CodeSystem/audit-action", row.action)]
    if interaction:
        subtype.insert(0, _coding("http://hl7.org/fhir/restful-interaction", interaction))
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": f"{PLATFORM_SYSTEM}/sid/subject", "value": row.actor}},
        "requestor": True,
    }
    if row.actor_roles:
        agent["role"] = [{"coding": [_coding(f"{PLATFORM_SYSTEM}/CodeSystem/role", role)]}
                         for role in row.actor_roles.split()]
    if row.source_address:
        agent["network"] = {"address": row.source_address, "type": "2"}  # 2 = IP address
    if row.purpose:
        agent["purposeOfUse"] = [{"coding": [_coding(f"{_TERMINOLOGY}/v3-ActReason",
                                                     row.purpose)]}]
    entities: list[dict[str, Any]] = []
    if row.record_id:
        what: dict[str, Any] = (
            {"reference": f"{row.record_type}/{row.record_id}"}
            if _FHIR_TYPE_NAME.fullmatch(row.record_type)
            else {"identifier": {"value": row.record_id}, "display": row.record_type}
        )
        entities.append({
            "what": what,
            "type": _coding(f"{_TERMINOLOGY}/audit-entity-type", "2", "System Object"),
            "role": _coding(f"{_TERMINOLOGY}/object-role", "4", "Domain Resource"),
        })
    if row.service_user_id:
        entities.append({
            "what": {"reference": f"Patient/{row.service_user_id}"},
            "type": _coding(f"{_TERMINOLOGY}/audit-entity-type", "1", "Person"),
            "role": _coding(f"{_TERMINOLOGY}/object-role", "1", "Patient"),
        })
    if row.request_id:
        entities.append({
            "what": {"identifier": {"system": f"{PLATFORM_SYSTEM}/sid/request-id",
                                    "value": row.request_id}},
            "type": _coding(f"{_TERMINOLOGY}/audit-entity-type", "4", "Other"),
        })
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "type": _coding(f"{_TERMINOLOGY}/audit-event-type", "rest", "RESTful Operation"),
        "subtype": subtype,
        "action": action,
        "recorded": row.recorded_at.isoformat(),
        "outcome": "0" if row.outcome == Outcome.allowed else "4",
        "agent": [agent],
        "source": {
            "site": service,
            "observer": {"display": f"recovery-platform {service} service"},
            "type": [_coding(f"{_TERMINOLOGY}/security-source-type", "4",
                             "Application Server")],
        },
    }
    if row.outcome != Outcome.allowed:
        resource["outcomeDesc"] = "access denied"
    if entities:
        resource["entity"] = entities
    return resource


def _authorize(request: Request, kit: KitDep, principal: Principal, verb: Verb,
               action: str) -> None:
    """Only audit readers get through; the attempt is audited either way."""
    allowed = can_read_audit_trail(principal, verb)
    client = request.client
    kit.audit.record(audit_entry(
        principal, record_type=AUDIT_RESOURCE, action=action,
        outcome=Outcome.allowed if allowed else Outcome.denied,
        source_address=client.host if client else None,
        request_id=getattr(request.state, "request_id", None)))
    if not allowed:
        raise Problem(403, "Only admins and systems with an AuditEvent scope may read the "
                           "audit trail.", kind="insufficient-scope")


audit_router = APIRouter(tags=["audit"])


@audit_router.get(
    "/v1/audit-events",
    summary="Search the audit trail (admins, audit systems)",
    response_model=Page[AuditEventPublic],
    responses=problem_responses(400, 403),
)
async def list_audit_events(
    request: Request,
    kit: KitDep,
    principal: PrincipalDep,
    record_id: Annotated[str | None, Query(max_length=64)] = None,
    service_user_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    record_type: Annotated[str | None, Query(max_length=60)] = None,
    outcome: Outcome | None = None,
    since: Annotated[IsoDateTime | None, Query(description="Recorded at or after")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Recorded before")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    _authorize(request, kit, principal, Verb.search, "search")
    # Read-your-writes: entries still in the buffer are part of the trail.
    await kit.audit.flush()
    filters = AuditFilters(record_type=record_type, record_id=record_id,
                           service_user_id=service_user_id, actor=actor, outcome=outcome,
                           since=_utc(since), until=_utc(until))
    size = page_size(limit, kit.settings.page_size_default, kit.settings.page_size_max)
    async with kit.sessions() as session:
        rows, next_cursor = await search_audit_events(session, filters, limit=size,
                                                      cursor=cursor)
    return json_response(Page[AuditEventPublic](items=[AuditEventPublic.of(r) for r in rows],
                                                next_cursor=next_cursor))


_DATE_PARAM = re.compile(r"(eq|ge|gt|le|lt)?(\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?)")


def _date_bounds(values: list[str]) -> tuple[datetime | None, datetime | None]:
    """FHIR ``date`` search values (``ge2026-01-01``, ``lt2026-02-01T00:00:00Z``) as a
    half-open [since, until) range."""
    since: datetime | None = None
    until: datetime | None = None

    def later(a: datetime | None, b: datetime) -> datetime:
        return b if a is None or b > a else a

    def earlier(a: datetime | None, b: datetime) -> datetime:
        return b if a is None or b < a else a

    for value in values:
        match = _DATE_PARAM.fullmatch(value)
        if match is None:
            raise Problem(400, "date must look like ge2026-01-31 or lt2026-01-31T12:00:00Z.",
                          kind="invalid-search")
        prefix, text = match.group(1) or "eq", match.group(2)
        try:
            if "T" in text:
                start = datetime.fromisoformat(text.replace("Z", "+00:00"))
                start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
                end = start + timedelta(microseconds=1)
            else:
                day = date.fromisoformat(text)
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                end = start + timedelta(days=1)
        except (ValueError, OverflowError) as exc:
            raise Problem(400, "date is not a valid date or time.",
                          kind="invalid-search") from exc
        if prefix in {"eq", "ge"}:
            since = later(since, start)
        if prefix == "gt":
            since = later(since, end)
        if prefix in {"eq", "le"}:
            until = earlier(until, end)
        if prefix == "lt":
            until = earlier(until, start)
    return since, until


def _reference_id(value: str, resource_type: str | None = None) -> str:
    """``Patient/su-1`` or ``su-1`` (FHIR reference search) to the bare id."""
    kind, _, ident = value.rpartition("/")
    if kind and resource_type and kind.rsplit("/", 1)[-1] != resource_type:
        raise Problem(400, f"Expected a {resource_type} reference.", kind="invalid-search")
    return ident


@audit_router.get(
    "/fhir/AuditEvent",
    summary="Search the audit trail as a FHIR R4 searchset Bundle of AuditEvent",
    response_class=FhirJSONResponse,
    responses={**problem_responses(400, 403),
               200: {"content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}}}},
)
async def search_fhir_audit_events(
    request: Request,
    kit: KitDep,
    principal: PrincipalDep,
    patient: Annotated[str | None, Query(max_length=80)] = None,
    entity: Annotated[str | None, Query(max_length=140, description="Type/id or id")] = None,
    agent: Annotated[str | None, Query(max_length=200, description="The actor's sub")] = None,
    outcome: Annotated[str | None, Query(pattern="^(0|4)$")] = None,
    date_: Annotated[list[str] | None, Query(alias="date", max_length=8)] = None,
    count: Annotated[int | None, Query(alias="_count", ge=1)] = None,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=512)] = None,
) -> FhirJSONResponse:
    _authorize(request, kit, principal, Verb.search, "search")
    await kit.audit.flush()
    record_type: str | None = None
    record_id: str | None = None
    if entity:
        kind, _, record_id = entity.rpartition("/")
        record_type = kind.rsplit("/", 1)[-1] or None
    since, until = _date_bounds(date_ or [])
    filters = AuditFilters(
        record_type=record_type, record_id=record_id,
        service_user_id=_reference_id(patient, "Patient") if patient else None,
        actor=agent,
        outcome=None if outcome is None else (Outcome.allowed if outcome == "0"
                                              else Outcome.denied),
        since=since, until=until,
    )
    size = page_size(count, kit.settings.page_size_default, kit.settings.page_size_max)
    async with kit.sessions() as session:
        rows, next_cursor = await search_audit_events(session, filters, limit=size,
                                                      cursor=cursor)
    base = str(request.base_url).rstrip("/")
    links = [{"relation": "self", "url": str(request.url)}]
    if next_cursor:
        links.append({"relation": "next",
                      "url": str(request.url.include_query_params(_cursor=next_cursor))})
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": datetime.now(UTC).isoformat(),
        "link": links,
        "entry": [{
            "fullUrl": f"{base}/fhir/AuditEvent/{row.id}",
            "resource": to_fhir_audit_event(row, service=kit.settings.service),
            "search": {"mode": "match"},
        } for row in rows],
    }
    return FhirJSONResponse(bundle)


@audit_router.get(
    "/fhir/AuditEvent/{audit_event_id}",
    summary="One audit trail entry as a FHIR R4 AuditEvent",
    response_class=FhirJSONResponse,
    responses={**problem_responses(403, 404),
               200: {"content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}}}},
)
async def read_fhir_audit_event(request: Request, kit: KitDep, principal: PrincipalDep,
                                audit_event_id: str) -> FhirJSONResponse:
    _authorize(request, kit, principal, Verb.read, "read")
    await kit.audit.flush()
    async with kit.sessions() as session:
        row = await session.get(AuditEvent, audit_event_id)
    if row is None:
        raise Problem(404, "No AuditEvent with that id.", kind="not-found")
    return FhirJSONResponse(to_fhir_audit_event(row, service=kit.settings.service))
