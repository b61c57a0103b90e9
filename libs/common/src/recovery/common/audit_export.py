"""Reading the audit trail back: ``/v1/audit-events`` and FHIR R4 ``/fhir/AuditEvent``.

Every service app includes this router. Only admins and partner systems with an explicit
``system/AuditEvent`` scope may read it, and each read is itself audited. Rows keep the
platform's own record types; only the FHIR rendering names the resource each one is.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, BeforeValidator
from sqlalchemy import ColumnElement, and_, false, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common import fhir
from recovery.common.audit import AuditEvent, Outcome, audit_entry
from recovery.common.auth import AUDIT_RESOURCE, Principal, Verb, can_read_audit_trail
from recovery.common.deps import KitDep, PrincipalDep
from recovery.common.http import json_response
from recovery.common.pagination import (
    Page,
    decode_time_cursor,
    encode_cursor,
    keyset_page,
    page_size,
)
from recovery.common.problems import Problem, problem_responses
from recovery.common.settings import Settings
from recovery.common.timeutil import as_utc

_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
#: How many AuditEvent ids one ``_id`` search may name.
IDS_AT_MOST = 100

#: The FHIR resource each record type of the trail is, as ``entity.what`` references it.
#: A record type not here (a course, an enrolment, a supervision record, team figures, a
#: lived-experience declaration, training's own view of a member of staff) is no FHIR
#: resource, and is named by identifier and display instead.
FHIR_TYPES: dict[str, str] = {
    "Goal": "Goal",  # goals
    "CrisisPlan": "CarePlan",  # crisis-plans
    "RiskAssessment": "RiskAssessment",  # risk
    "Staff": "Practitioner",  # workforce; PractitionerRole shares the staff id
    "Team": "CareTeam",  # workforce
    AUDIT_RESOURCE: "AuditEvent",  # one entry of the trail itself, read by id (every service)
}


def record_types(fhir_type: str) -> list[str]:
    """The record types the trail stores for ``fhir_type``: what ``entity`` searches find."""
    return [record for record, resource in FHIR_TYPES.items() if resource == fhir_type]


# Our action words, mapped to the FHIR AuditEvent action (C/R/U/D/E) and, where one fits,
# the restful-interaction code. Words not listed are "E" (execute) with our code only.
_ACTIONS: dict[str, tuple[str, str | None]] = {
    "create": ("C", "create"), "propose": ("C", "create"),
    "read": ("R", "read"), "vread": ("R", "vread"), "history": ("R", "history-instance"),
    # The record's entry for a read of one version's signatures as a Provenance.
    "read-provenance": ("R", "read"),
    "list": ("R", "search-type"), "search": ("R", "search-type"),
    "batch-read": ("R", "search-type"), "aggregate": ("R", "search-type"),
    "update": ("U", "update"), "patch": ("U", "patch"), "accept": ("U", "update"),
    "decline": ("U", "update"), "review": ("U", "update"), "status": ("U", "update"),
    "complete": ("U", "update"), "delete": ("D", "delete"),
    "entered-in-error": ("D", "delete"),
}
_FHIR_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
#: AuditEvent.outcome codes (http://hl7.org/fhir/audit-event-outcome) for our two outcomes;
#: 8 and 12 (serious and major failure) are never recorded.
_OUTCOME_CODES = {"0": Outcome.allowed, "4": Outcome.denied}
_NEVER_RECORDED = {"8", "12"}
#: The agent search takes the actor's sub bare or as a reference of these types.
_AGENT_TYPES = ("Practitioner/", "Patient/")
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
    """What a REST audit search is narrowed to; every field is optional."""

    record_type: str | None = None
    record_id: str | None = None
    service_user_id: str | None = None
    actor: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


Condition = ColumnElement[bool]


def _conditions(filters: AuditFilters) -> list[Condition]:
    conditions: list[Condition] = [
        col(column) == value
        for column, value in ((AuditEvent.record_type, filters.record_type),
                              (AuditEvent.record_id, filters.record_id),
                              (AuditEvent.service_user_id, filters.service_user_id),
                              (AuditEvent.actor, filters.actor),
                              (AuditEvent.outcome, filters.outcome))
        if value is not None]
    conditions += _recorded_within(filters.since, filters.until)
    return conditions


def _recorded_within(since: datetime | None, before: datetime | None) -> list[Condition]:
    """Recorded in [since, before), either end open when not given."""
    recorded = col(AuditEvent.recorded_at)
    return [*([recorded >= since] if since is not None else []),
            *([recorded < before] if before is not None else [])]


async def _rows(session: AsyncSession, conditions: Sequence[Condition], *, limit: int,
                cursor: str | None, newest_first: bool) -> list[AuditEvent]:
    """Up to ``limit + 1`` entries after ``cursor`` in (recorded, id) order: oldest first for
    REST, newest first for FHIR, whose searches the gateway merges across services."""
    query = select(AuditEvent).where(*conditions)
    recorded, ident = col(AuditEvent.recorded_at), col(AuditEvent.id)
    if cursor:
        after_time, after_id = decode_time_cursor(cursor)
        if newest_first:
            query = query.where(or_(recorded < after_time,
                                    and_(recorded == after_time, ident < after_id)))
        else:
            query = query.where(or_(recorded > after_time,
                                    and_(recorded == after_time, ident > after_id)))
    order = (recorded.desc(), ident.desc()) if newest_first else (recorded, ident)
    return list((await session.exec(query.order_by(*order).limit(limit + 1))).all())


async def search_audit_events(session: AsyncSession, filters: AuditFilters, *, limit: int,
                              cursor: str | None = None) -> tuple[list[AuditEvent], str | None]:
    """Entries in the order they were recorded, one keyset page at a time."""
    rows = await _rows(session, _conditions(filters), limit=limit, cursor=cursor,
                       newest_first=False)
    return keyset_page(rows, limit, lambda row: (row.recorded_at, row.id))


async def count_audit_events(session: AsyncSession, conditions: Sequence[Condition]) -> int:
    query = select(func.count()).select_from(AuditEvent).where(*conditions)
    return int((await session.exec(query)).one())


# -- FHIR AuditEvent ---------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _recorded(moment: datetime) -> str:
    """``recorded`` to the microsecond, as stored: the position a cursor names is exact."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _record_entity(row: AuditEvent) -> dict[str, Any]:
    fhir_type = FHIR_TYPES.get(row.record_type)
    what: dict[str, Any] = (
        {"reference": f"{fhir_type}/{row.record_id}"} if fhir_type
        else {"identifier": {"value": row.record_id}, "display": row.record_type})
    return {"what": what,
            "type": _coding(f"{_TERMINOLOGY}/audit-entity-type", "2", "System Object"),
            "role": _coding(f"{_TERMINOLOGY}/object-role", "4", "Domain Resource")}


def to_fhir_audit_event(row: AuditEvent, settings: Settings) -> dict[str, Any]:
    """The entry as a FHIR R4 AuditEvent resource."""
    action, interaction = _ACTIONS.get(row.action, ("E", None))
    subtype = [_coding(f"{fhir.BASE}/CodeSystem/audit-action", row.action)]
    if interaction:
        subtype.insert(0, _coding("http://hl7.org/fhir/restful-interaction", interaction))
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": f"{fhir.BASE}/sid/subject", "value": row.actor}},
        "requestor": True,
    }
    if row.actor_roles:
        agent["role"] = [{"coding": [_coding(f"{fhir.BASE}/CodeSystem/role", role)]}
                         for role in row.actor_roles.split()]
    if row.source_address:
        agent["network"] = {"address": row.source_address, "type": "2"}  # 2 = IP address
    if row.purpose:
        agent["purposeOfUse"] = [{"coding": [_coding(f"{_TERMINOLOGY}/v3-ActReason",
                                                     row.purpose)]}]
    entities: list[dict[str, Any]] = []
    if row.record_id:
        entities.append(_record_entity(row))
    if row.service_user_id:
        entities.append({
            "what": fhir.patient_reference(row.service_user_id, settings),
            "type": _coding(f"{_TERMINOLOGY}/audit-entity-type", "1", "Person"),
            "role": _coding(f"{_TERMINOLOGY}/object-role", "1", "Patient"),
        })
    if row.request_id:
        entities.append({
            "what": {"identifier": {"system": f"{fhir.BASE}/sid/request-id",
                                    "value": row.request_id}},
            "type": _coding(f"{_TERMINOLOGY}/audit-entity-type", "4", "Other"),
        })
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "type": _coding(f"{_TERMINOLOGY}/audit-event-type", "rest", "RESTful Operation"),
        "subtype": subtype,
        "action": action,
        "recorded": _recorded(row.recorded_at),
        "outcome": "0" if row.outcome == Outcome.allowed else "4",
        "agent": [agent],
        "source": {
            "site": settings.service,
            "observer": {"display": f"recovery-platform {settings.service} service"},
            "type": [_coding(f"{_TERMINOLOGY}/security-source-type", "4",
                             "Application Server")],
        },
    }
    if row.outcome != Outcome.allowed:
        resource["outcomeDesc"] = "access denied"
    if entities:
        resource["entity"] = entities
    return resource


def cursor_after(resource: Mapping[str, Any]) -> str:
    """The ``_cursor`` of what follows this AuditEvent in a search (newest first): what a
    service's next link carries, and what the gateway hands every service to go on after
    the last entry of a page it merged from all of them."""
    return encode_cursor(datetime.fromisoformat(resource["recorded"]), resource["id"])


def _invalid(detail: str) -> Problem:
    return Problem(400, detail, kind="invalid-search")


def _entity(value: str) -> Condition:
    """``Type/id`` (or a URL ending so, or a bare id): entries whose record is that resource.
    Every entry about a person references their Patient, so ``Patient/<id>`` (or a bare id)
    matches those entries too."""
    kind, _, ident = value.rstrip("/").rpartition("/")
    kind = kind.rsplit("/", 1)[-1]
    if not ident or len(ident) > 64 or (kind and not _FHIR_TYPE_NAME.fullmatch(kind)):
        raise _invalid("entity must be Type/<id>, such as CarePlan/<id>.")
    types = record_types(kind) if kind else list(FHIR_TYPES)
    record = and_(col(AuditEvent.record_type).in_(types), col(AuditEvent.record_id) == ident)
    if kind in {"", "Patient"}:
        return or_(record, col(AuditEvent.service_user_id) == ident)
    return record


def _patient(value: str) -> Condition:
    return col(AuditEvent.service_user_id) == fhir.reference_id(value, "Patient", "patient")


def _agent(value: str) -> Condition:
    """The actor's sub, bare or as a reference: the sub is the id whichever type it is."""
    sub = next((value.removeprefix(t) for t in _AGENT_TYPES if value.startswith(t)), value)
    if not sub or len(sub) > 200:
        raise _invalid("agent must be the actor's sub, or Practitioner/<sub> or Patient/<sub>.")
    return col(AuditEvent.actor) == sub


def _outcome(value: str) -> Condition:
    code = value.rpartition("|")[2]
    if code in _NEVER_RECORDED:
        return false()
    if code not in _OUTCOME_CODES:
        raise _invalid("outcome is 0 (allowed) or 4 (denied).")
    return col(AuditEvent.outcome) == _OUTCOME_CODES[code]


#: Each reference or token parameter's condition for one value; a value lists alternatives
#: separated by commas, and a repeated parameter must match each time (FHIR's OR and AND).
_MATCHES: dict[str, Callable[[str], Condition]] = {
    "entity": _entity, "patient": _patient, "agent": _agent, "outcome": _outcome}


def fhir_conditions(search: fhir.Search) -> list[Condition]:
    """What an AuditEvent search selects, as conditions on the trail's rows."""
    conditions = [or_(*(match(part) for part in value.split(",")))
                  for name, match in _MATCHES.items() for value in search.values.get(name, [])]
    if search.ids is not None:
        if len(search.ids) > IDS_AT_MOST:
            raise _invalid(f"_id names at most {IDS_AT_MOST} AuditEvents.")
        conditions.append(col(AuditEvent.id).in_(search.ids))
    conditions += _recorded_within(*fhir.date_bounds(search.values.get("date", [])))
    return conditions


def _authorize(request: Request, kit: KitDep, principal: Principal, verb: Verb,
               action: str, record_id: str | None = None) -> None:
    """Only audit readers get through; the attempt is audited either way."""
    allowed = can_read_audit_trail(principal, verb)
    client = request.client
    kit.audit.record(audit_entry(
        principal, record_type=AUDIT_RESOURCE, action=action, record_id=record_id,
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


def _documented(params: Sequence[fhir.SearchParam]) -> list[dict[str, Any]]:
    """OpenAPI query parameters for a FHIR search (``parse_search`` reads and checks them)."""
    documented = [{"name": p.name, "in": "query", "required": False,
                   "description": p.documentation, "schema": {"type": "string"}}
                  for p in params]
    documented += [
        {"name": "_count", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Entries a page (capped; 0 for the total only)"},
        {"name": "_cursor", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "From the Bundle's next link"},
    ]
    return documented


@audit_router.get(
    "/fhir/AuditEvent",
    summary="Search the audit trail as a FHIR R4 searchset Bundle of AuditEvent, newest first",
    response_model=None,
    response_class=fhir.FhirResponse,
    dependencies=[Depends(fhir.acceptable_format)],
    responses={**fhir.FHIR_OK, **problem_responses(400, 403)},
    openapi_extra={"parameters": _documented(fhir.AUDIT_EVENT_SEARCH)},
)
async def search_fhir_audit_events(request: Request, kit: KitDep,
                                   principal: PrincipalDep) -> Response:
    _authorize(request, kit, principal, Verb.search, "search")
    settings = kit.settings
    search = fhir.parse_search(request, "AuditEvent", fhir.AUDIT_EVENT_SEARCH,
                               default_count=settings.page_size_default,
                               max_count=settings.page_size_max)
    conditions = fhir_conditions(search)
    await kit.audit.flush()
    async with kit.sessions() as session:
        total = await count_audit_events(session, conditions) if search.wants_total else None
        rows = [] if search.count_only else await _rows(
            session, conditions, limit=search.count, cursor=search.cursor, newest_first=True)
    resources = [to_fhir_audit_event(row, settings) for row in rows[:search.count]]
    following = cursor_after(resources[-1]) if len(rows) > search.count else None
    return fhir.FhirResponse(search.bundle(resources, next_cursor=following, total=total))


@audit_router.get(
    "/fhir/AuditEvent/{audit_event_id}",
    summary="One audit trail entry as a FHIR R4 AuditEvent",
    response_model=None,
    response_class=fhir.FhirResponse,
    dependencies=[Depends(fhir.acceptable_format)],
    responses={**fhir.FHIR_OK, **problem_responses(403, 404)},
)
async def read_fhir_audit_event(request: Request, kit: KitDep, principal: PrincipalDep,
                                audit_event_id: str) -> Response:
    _authorize(request, kit, principal, Verb.read, "read", record_id=audit_event_id[:64])
    await kit.audit.flush()
    async with kit.sessions() as session:
        row = await session.get(AuditEvent, audit_event_id)
    if row is None:
        raise Problem(404, "No AuditEvent with that id.", kind="not-found")
    return fhir.read_response(request, to_fhir_audit_event(row, kit.settings))
