"""FHIR R4 Goal: our goals as FHIR Goals and back, and the ``/fhir`` routes an EHR uses: read,
vread, history, search, create (a practitioner's proposal) and update; Patient.

Our own code systems and extensions live under ``https://recovery-platform.org/fhir/``;
``docs/fhir-mapping.md`` lists them and says what each route does.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import Body, Depends, Header, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from recovery.common import fhir
from recovery.common.auth import Principal
from recovery.common.db import json_text
from recovery.common.deps import AccessDep, RecordAccess, SessionDep, SettingsDep
from recovery.common.fhir import (
    BASE,
    FHIR_JSON,
    FHIR_OK,
    ID,
    LAST_UPDATED,
    TEAM,
    TEAM_SYSTEM,
    FhirResponse,
    SearchParam,
    concept,
    instant,
)
from recovery.common.http import IfMatch
from recovery.common.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    Answer,
    IdempotentRequest,
    Replayed,
    idempotent_request,
)
from recovery.common.problems import InvalidParam, Problem, problem_responses
from recovery.common.settings import Settings
from recovery.goals import service
from recovery.goals.models import (
    ExpressedBy,
    Goal,
    GoalCreate,
    GoalPublic,
    GoalUpdate,
    LifecycleStatus,
)

GOAL_KIND_SYSTEM = f"{BASE}/CodeSystem/goal-kind"
LIFE_AREA_SYSTEM = f"{BASE}/CodeSystem/life-area"
CHIME_SYSTEM = f"{BASE}/CodeSystem/chime"
SERVES_LIFE_GOAL = f"{BASE}/StructureDefinition/serves-life-goal"
WHY_IT_MATTERS = f"{BASE}/StructureDefinition/why-it-matters"
STRENGTH = f"{BASE}/StructureDefinition/strength"
ACHIEVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/goal-achievement"

LIFE_AREA_DISPLAY = {
    "work_and_education": "Work and education",
    "home": "Home",
    "relationships_and_connection": "Relationships and connection",
    "physical_health": "Physical health",
    "mental_wellbeing": "Mental wellbeing",
    "money": "Money",
    "leisure_and_creativity": "Leisure and creativity",
    "spirituality_and_meaning": "Spirituality and meaning",
    "identity": "Identity",
    "community_and_citizenship": "Community and citizenship",
}

#: Where each field of ours lives in a FHIR Goal: refusals under /fhir name the element.
ELEMENTS = {
    "service_user_id": "Goal.subject",
    "team_id": f"Goal.extension('{TEAM}')",
    "description": "Goal.description.text",
    "kind": "Goal.category",
    "life_area": "Goal.category",
    "chime_tags": "Goal.category",
    "target_date": "Goal.target.dueDate",
    "why_it_matters": f"Goal.extension('{WHY_IT_MATTERS}')",
    "strengths": f"Goal.extension('{STRENGTH}')",
    "serves_goal_ids": f"Goal.extension('{SERVES_LIFE_GOAL}')",
    "lifecycle_status": "Goal.lifecycleStatus",
    "achievement_status": "Goal.achievementStatus",
}


# --- our goal as a FHIR Goal ------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return concept(system, code, display, text=True)


def goal_resource(goal: GoalPublic, settings: Settings) -> dict[str, Any]:
    """Our goal as a FHIR R4 Goal resource."""
    category = [_coding(GOAL_KIND_SYSTEM, goal.kind.value,
                        "Life goal" if goal.kind.value == "life" else "Therapeutic goal")]
    if goal.life_area is not None:
        category.append(_coding(LIFE_AREA_SYSTEM, goal.life_area.value,
                                LIFE_AREA_DISPLAY[goal.life_area.value]))
    category.extend(_coding(CHIME_SYSTEM, tag.value, tag.value.capitalize())
                    for tag in goal.chime_tags)
    extension: list[dict[str, Any]] = [
        {"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM, "value": goal.team_id}},
    ]
    extension.extend({"url": SERVES_LIFE_GOAL, "valueReference": {"reference": f"Goal/{gid}"}}
                     for gid in goal.serves_goal_ids)
    if goal.why_it_matters:
        extension.append({"url": WHY_IT_MATTERS, "valueString": goal.why_it_matters})
    extension.extend({"url": STRENGTH, "valueString": s} for s in goal.strengths)
    person = fhir.patient_reference(goal.service_user_id, settings)
    resource: dict[str, Any] = {
        "resourceType": "Goal",
        "id": goal.id,
        "meta": {"versionId": str(goal.version), "lastUpdated": instant(goal.updated_at)},
        "extension": extension,
        "lifecycleStatus": goal.lifecycle_status.value,
        "category": category,
        "description": {"text": goal.description},
        "subject": person,
        "statusDate": goal.status_changed_at.date().isoformat(),
    }
    if goal.achievement_status is not None:
        resource["achievementStatus"] = _coding(ACHIEVEMENT_SYSTEM, goal.achievement_status.value)
    if goal.accepted_at is not None:
        resource["startDate"] = goal.accepted_at.date().isoformat()
    if goal.target_date is not None:
        resource["target"] = [{"dueDate": goal.target_date.isoformat()}]
    if goal.status_reason:
        resource["statusReason"] = goal.status_reason
    if goal.expressed_by is ExpressedBy.service_user:
        resource["expressedBy"] = person
    elif goal.proposed_by:
        resource["expressedBy"] = {"reference": f"Practitioner/{goal.proposed_by}"}
    return resource


def stored_resource(document: dict[str, Any] | str, settings: Settings) -> dict[str, Any]:
    """The FHIR Goal of a stored goal document (the goal's, or one of its versions')."""
    goal = (GoalPublic.model_validate_json(document) if isinstance(document, str)
            else GoalPublic.model_validate(document))
    return goal_resource(goal, settings)


# --- searches -----------------------------------------------------------------------------

PATIENT = SearchParam("patient", "reference",
                      "The service user: Patient/<id>, a URL ending so, or <id> (one person)")
SUBJECT = SearchParam("subject", "reference", "The same as patient: who the goal is about")
LIFECYCLE_STATUS = SearchParam(
    "lifecycle-status", "token",
    "FHIR Goal lifecycle codes, comma-separated; entered-in-error goals only when named")
#: Exactly what a Goal search answers to, and what the CapabilityStatement declares.
GOAL_SEARCH = (ID, LAST_UPDATED, PATIENT, SUBJECT, LIFECYCLE_STATUS)
#: The most goal ids one search may name.
IDS_AT_MOST = 100
#: The parameters every search and history read also understands (the kit's), documented.
_RESULT_PARAMETERS = (
    ("_count", "Entries a page (capped at the service's page size; 0: the total only)"),
    ("_cursor", "Where the next page starts: from the Bundle's next link"),
    ("_summary", "count: the total only, no entries"),
    ("_total", "accurate (or estimate): the total of all matches, counted"),
)


def _query_parameters(params: Sequence[SearchParam],
                      extra: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAPI description of query parameters the kit's ``parse_search`` reads."""
    described = [(p.name, p.documentation) for p in params] + list(extra)
    return {"parameters": [{"name": name, "in": "query", "required": False,
                            "schema": {"type": "string"}, "description": text}
                           for name, text in described]}


def _with_query(url: str, pairs: Sequence[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(pairs)}" if pairs else url


def _all_of(values: list[str], name: str) -> set[str]:
    """Comma-separated values, repeated parameters ANDed as FHIR says (their intersection)."""
    chosen: set[str] | None = None
    for value in values:
        codes = value.split(",")
        if not all(codes):
            raise Problem(400, f"{name} is a comma-separated list without empty entries.",
                          kind="invalid-search")
        chosen = set(codes) if chosen is None else chosen & set(codes)
    return chosen or set()


def _person(search: fhir.Search) -> str | None:
    """The one person ``patient`` and ``subject`` name together, if any."""
    named = {fhir.reference_id(value, "Patient", name)
             for name in (PATIENT.name, SUBJECT.name) for value in search.values.get(name, [])}
    if any("," in person for person in named):
        raise Problem(400, "patient names one person.", kind="invalid-search")
    if len(named) > 1:
        raise Problem(400, "patient and subject name different people.", kind="invalid-search")
    return named.pop() if named else None


def _statuses(search: fhir.Search) -> list[LifecycleStatus] | None:
    values = search.values.get(LIFECYCLE_STATUS.name)
    if values is None:
        return None
    codes = _all_of(values, LIFECYCLE_STATUS.name)
    try:
        return sorted(LifecycleStatus(code) for code in codes)
    except ValueError as exc:
        raise Problem(400, "lifecycle-status holds FHIR Goal lifecycle codes: "
                      + ", ".join(s.value for s in LifecycleStatus) + ".",
                      kind="invalid-search") from exc


def _ids(search: fhir.Search) -> list[str] | None:
    values = search.values.get(ID.name)
    if values is None:
        return None
    ids = _all_of(values, ID.name)
    if len(ids) > IDS_AT_MOST:
        raise Problem(400, f"A search names at most {IDS_AT_MOST} goal ids.",
                      kind="invalid-search")
    return sorted(ids)


async def matching_goals(access: RecordAccess, search: fhir.Search, *, limit: int,
                         counted: bool) -> service.GoalDocuments:
    """The goals a Goal search matches, through the goals list and its access rules."""
    return await service.list_goals(
        access, service_user_id=_person(search), team_id=None, statuses=_statuses(search),
        kind=None, ids=_ids(search), updated_since=search.since,
        updated_before=search.before, cursor=search.cursor, limit=limit, counted=counted)


def _conditions(request: Request, criteria: str) -> fhir.Search:
    """The search an ``If-None-Exist`` header names, parsed as a search with that query is,
    and strictly: a parameter left out would make the condition match more than was meant."""
    query = criteria.strip().split("?", 1)[-1]
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"prefer"]
    scope = {**request.scope, "query_string": query.encode(),
             "headers": [*headers, (b"prefer", b"handling=strict")]}
    search = fhir.parse_search(Request(scope), "Goal", GOAL_SEARCH, default_count=2,
                               max_count=2)
    if not search.values:
        raise Problem(400, "If-None-Exist names the Goal to look for with Goal search "
                      "parameters, e.g. patient=Patient/<id>&_id=<id>.", kind="invalid-search")
    return search


# --- a FHIR Goal sent to us ---------------------------------------------------------------


class _Element(BaseModel):
    """A FHIR datatype as sent, each of its R4 elements named: an element R4 does not have
    is refused, as a misspelt one would look kept and be lost."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    id: str | None = None
    extension: list[dict[str, Any]] | None = None  # extensions on datatypes are not kept


class FhirIdentifier(_Element):
    use: str | None = None
    type: dict[str, Any] | None = None
    system: str | None = None
    value: str | None = None
    period: dict[str, Any] | None = None
    assigner: dict[str, Any] | None = None


class FhirReference(_Element):
    reference: str | None = None
    type: str | None = None
    identifier: FhirIdentifier | None = None
    display: str | None = None


class FhirCoding(_Element):
    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    user_selected: bool | None = None


class FhirConcept(_Element):
    coding: list[FhirCoding] = Field(default_factory=list, max_length=50)
    text: str | None = None


class FhirExtension(BaseModel):
    """An extension: ours are read by their URL; any other is not kept (FHIR lets a server
    ignore extensions that are not modifiers), whatever its value's type."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel)

    url: str
    value_string: str | None = None
    value_identifier: FhirIdentifier | None = None
    value_reference: FhirReference | None = None


def _no_modifiers(value: Any) -> Any:
    if value:
        raise ValueError("modifiers change what the goal means and are not understood here")
    return value


class FhirTarget(_Element):
    modifier_extension: list[dict[str, Any]] | None = None
    measure: dict[str, Any] | None = None
    detail_quantity: dict[str, Any] | None = None
    detail_range: dict[str, Any] | None = None
    detail_codeable_concept: dict[str, Any] | None = None
    detail_string: str | None = None
    detail_boolean: bool | None = None
    detail_integer: int | None = None
    detail_ratio: dict[str, Any] | None = None
    due_date: str | None = None
    due_duration: dict[str, Any] | None = None

    _understood = field_validator("modifier_extension")(_no_modifiers)


class FhirGoal(BaseModel):
    """A FHIR R4 Goal as an EHR sends it, every R4 element named. We keep its subject,
    description, categories in our code systems, target due date and our extensions; we set
    its status, dates and who expressed it; priority, notes, addresses, outcomes, identifiers
    and other extensions are not kept."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, title="FhirGoal")

    resource_type: Literal["Goal"]
    id: str | None = Field(default=None, max_length=64)
    meta: dict[str, Any] | None = None
    implicit_rules: str | None = None
    language: str | None = None
    text: dict[str, Any] | None = None
    contained: list[dict[str, Any]] | None = None
    extension: list[FhirExtension] = Field(default_factory=list, max_length=100)
    modifier_extension: list[dict[str, Any]] | None = None
    identifier: list[dict[str, Any]] | None = None
    lifecycle_status: str | None = None
    achievement_status: FhirConcept | None = None
    category: list[FhirConcept] = Field(default_factory=list, max_length=20)
    priority: dict[str, Any] | None = None
    description: FhirConcept
    subject: FhirReference
    start_date: str | None = None
    start_codeable_concept: dict[str, Any] | None = None
    target: list[FhirTarget] = Field(default_factory=list, max_length=1,
                                     description="At most one: the goal's due date")
    status_date: str | None = None
    status_reason: str | None = None
    expressed_by: dict[str, Any] | None = None
    addresses: list[dict[str, Any]] | None = None
    note: list[dict[str, Any]] | None = None
    outcome_code: list[dict[str, Any]] | None = None
    outcome_reference: list[dict[str, Any]] | None = None

    _understood = field_validator("implicit_rules", "modifier_extension")(_no_modifiers)


FhirGoalBody = Annotated[FhirGoal, Body(media_type=FHIR_JSON,
                                        description="A FHIR R4 Goal (application/fhir+json)")]


def _invalid(expression: str, detail: str) -> Problem:
    return Problem(422, detail, kind="invalid-resource",
                   invalid_params=[InvalidParam(name=expression, reason=detail)])


def _subject(subject: FhirReference, settings: Settings) -> str:
    """The person a Goal is about: a literal reference to their Patient, or the EHR's
    identifier for them, or both naming the same person."""
    named: set[str] = set()
    if subject.type not in (None, "Patient"):
        raise _invalid("Goal.subject.type", "A goal is about a Patient.")
    if subject.reference is not None:
        try:
            named.add(fhir.reference_id(subject.reference, "Patient", "subject"))
        except Problem as exc:
            raise _invalid("Goal.subject.reference",
                           "subject.reference is Patient/<id>.") from exc
    if subject.identifier is not None:
        system = settings.fhir_patient_identifier_system
        if subject.identifier.system != system or not subject.identifier.value:
            raise _invalid("Goal.subject.identifier",
                           f"subject.identifier is the EHR's patient id, in system {system}.")
        named.add(subject.identifier.value)
    if len(named) != 1:
        raise _invalid("Goal.subject", "subject names one Patient, by reference or identifier."
                       if not named else "subject's reference and identifier name two people.")
    return named.pop()


def _our_extensions(goal: FhirGoal) -> dict[str, list[str]]:
    """The values of our own extensions, by URL; other extensions are not kept."""
    found: dict[str, list[str]] = {TEAM: [], WHY_IT_MATTERS: [], STRENGTH: [],
                                   SERVES_LIFE_GOAL: []}
    for index, extension in enumerate(goal.extension):
        where = f"Goal.extension[{index}]"
        if extension.url == TEAM:
            team = extension.value_identifier
            if team is None or not team.value or team.system not in (None, TEAM_SYSTEM):
                raise _invalid(where, f"The team extension holds a valueIdentifier in system "
                               f"{TEAM_SYSTEM}.")
            found[TEAM].append(team.value)
        elif extension.url in (WHY_IT_MATTERS, STRENGTH):
            if extension.value_string is None:
                raise _invalid(where, f"The extension {extension.url} holds a valueString.")
            found[extension.url].append(extension.value_string)
        elif extension.url == SERVES_LIFE_GOAL:
            served = extension.value_reference
            try:
                found[SERVES_LIFE_GOAL].append(
                    fhir.reference_id((served.reference if served else None) or "", "Goal",
                                      "serves-life-goal"))
            except Problem as exc:
                raise _invalid(where, "serves-life-goal holds a valueReference to Goal/<id>."
                               ) from exc
    return found


def _categories(goal: FhirGoal) -> dict[str, list[str]]:
    """Codes of our code systems among the categories; codings of other systems are not
    kept. A goal has one kind and at most one life area."""
    found: dict[str, list[str]] = {GOAL_KIND_SYSTEM: [], LIFE_AREA_SYSTEM: [], CHIME_SYSTEM: []}
    for category in goal.category:
        for coding in category.coding:
            if coding.system in found:
                if not coding.code:
                    raise _invalid("Goal.category", f"A coding in {coding.system} has a code.")
                if coding.code not in found[coding.system]:
                    found[coding.system].append(coding.code)
    for system, what in ((GOAL_KIND_SYSTEM, "kind"), (LIFE_AREA_SYSTEM, "life area")):
        if len(found[system]) > 1:
            raise _invalid("Goal.category", f"A goal has one {what}.")
    return found


def _one(values: list[str], field: str) -> str | None:
    if len(set(values)) > 1:
        raise _invalid(ELEMENTS[field], f"{ELEMENTS[field]} is given once.")
    return values[0] if values else None


def _described(goal: FhirGoal) -> str:
    if not goal.description.text:
        raise _invalid("Goal.description.text",
                       "description.text holds the goal in the person's own words.")
    return goal.description.text


def _due(goal: FhirGoal) -> str | None:
    return goal.target[0].due_date if goal.target else None


Shape = TypeVar("Shape", GoalCreate, GoalUpdate)


def _validated(shape: type[Shape], fields: dict[str, Any]) -> Shape:
    """``fields`` as the goals API's own input, refused (422) as it would refuse them, each
    field named by its FHIR element."""
    try:
        return shape.model_validate(fields)
    except ValidationError as exc:
        params = [InvalidParam(name=ELEMENTS.get(str(error["loc"][0]) if error["loc"] else "",
                                                 "Goal"), reason=error["msg"])
                  for error in exc.errors()]
        raise Problem(422, "The Goal holds values the goals service does not accept; see "
                      "each issue's expression.", kind="invalid-resource",
                      invalid_params=params) from exc


def _token_team(principal: Principal) -> str:
    """The team of a proposal that names none: the one team the practitioner's token holds."""
    if len(principal.teams) != 1:
        raise _invalid(ELEMENTS["team_id"], "Name the goal's team with the team extension "
                       "(valueIdentifier in " + TEAM_SYSTEM + "): your token holds "
                       + ("several teams." if principal.teams else "no team."))
    return next(iter(principal.teams))


def proposal(goal: FhirGoal, principal: Principal, settings: Settings) -> GoalCreate:
    """A Goal an EHR sends as what the goals API creates. Its status, dates and author are
    ours to set: it becomes a proposal of the practitioner sending it."""
    ours, categories = _our_extensions(goal), _categories(goal)
    fields: dict[str, Any] = {
        "service_user_id": _subject(goal.subject, settings),
        "team_id": _one(ours[TEAM], "team_id") or _token_team(principal),
        "description": _described(goal),
        "target_date": _due(goal),
        "chime_tags": categories[CHIME_SYSTEM],
        "strengths": ours[STRENGTH],
        "serves_goal_ids": ours[SERVES_LIFE_GOAL],
    }
    for name, value in (("kind", _one(categories[GOAL_KIND_SYSTEM], "kind")),
                        ("life_area", _one(categories[LIFE_AREA_SYSTEM], "life_area")),
                        ("why_it_matters", _one(ours[WHY_IT_MATTERS], "why_it_matters"))):
        if value is not None:
            fields[name] = value
    return _validated(GoalCreate, fields)


def replacement(goal: FhirGoal, goal_id: str,
                settings: Settings) -> tuple[GoalUpdate, dict[str, str]]:
    """A whole Goal sent to replace the one stored, as what the goals API updates, and what
    it says about what an update never changes (person, team, statuses).

    Core elements are replaced as FHIR's update says (a target left out clears the due
    date); our extensions change only when the Goal carries them, so an EHR that does not
    keep them does not erase the person's words."""
    if goal.id != goal_id:
        raise Problem(400, "The Goal's id must be the id in the URL.", kind="id-mismatch")
    ours, categories = _our_extensions(goal), _categories(goal)
    fields: dict[str, Any] = {
        "description": _described(goal),
        "life_area": _one(categories[LIFE_AREA_SYSTEM], "life_area"),
        "chime_tags": categories[CHIME_SYSTEM],
        "target_date": _due(goal),
    }
    if kind := _one(categories[GOAL_KIND_SYSTEM], "kind"):
        fields["kind"] = kind
    if why := _one(ours[WHY_IT_MATTERS], "why_it_matters"):
        fields["why_it_matters"] = why
    for url, name in ((STRENGTH, "strengths"), (SERVES_LIFE_GOAL, "serves_goal_ids")):
        if ours[url]:
            fields[name] = ours[url]
    stated = {"service_user_id": _subject(goal.subject, settings)}
    if team := _one(ours[TEAM], "team_id"):
        stated["team_id"] = team
    if goal.lifecycle_status is not None:
        stated["lifecycle_status"] = goal.lifecycle_status
    achieved = [c.code for c in (goal.achievement_status.coding if goal.achievement_status
                                 else []) if c.system == ACHIEVEMENT_SYSTEM and c.code]
    if achieved:
        stated["achievement_status"] = achieved[0]
    return _validated(GoalUpdate, fields), stated


@contextmanager
def in_fhir_terms() -> Iterator[None]:
    """The goals API's refusals name its fields; under /fhir they name the Goal's elements."""
    try:
        yield
    except Problem as problem:
        if problem.invalid_params:
            problem.invalid_params = [
                InvalidParam(name=ELEMENTS.get(p.name, p.name), reason=p.reason)
                for p in problem.invalid_params]
        raise


# --- answers --------------------------------------------------------------------------------


def resource_response(resource: dict[str, Any], *, status: int = 200) -> FhirResponse:
    """A Goal as a write (or a conditional create that found it) answers it."""
    return FhirResponse(fhir.with_text(resource), status_code=status,
                        headers=fhir.version_headers(resource))


def created_answer(goal: Goal, base: str, settings: Settings) -> Answer:
    """What creating the goal answers, kept for a retry under the same Idempotency-Key."""
    resource = fhir.with_text(stored_resource(goal.document, settings))
    return Answer(201, json_text(resource), fhir.etag(goal.version),
                  f"{base}/Goal/{goal.id}/_history/{goal.version}")


def answer_response(answer: Answer, *, replayed: bool = False) -> Response:
    """A create's answer, the first time and (``replayed``) for a retry under its key."""
    headers = {name: value for name, value in (("ETag", answer.etag),
                                               ("Location", answer.location)) if value}
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(answer.body, status_code=answer.status, media_type=FHIR_JSON,
                    headers=headers)


async def fhir_idempotency(
        request: Request, access: AccessDep,
        key: Annotated[str | None, Header(
            alias=HEADER, description="As on POST /v1/goals: a retry with the same key and "
            "body answers what the first did (Idempotent-Replayed: true) and creates nothing "
            "more; with another body, 422.")] = None,
) -> IdempotentRequest | Answer | None:
    """The kit's ``Idempotency-Key`` handling, with a retry's kept answer handed to the route
    to answer as FHIR JSON."""
    try:
        return await idempotent_request(request, access, key)
    except Replayed as replayed:
        return replayed.answer


FhirIdempotencyKey = Annotated[IdempotentRequest | Answer | None, Depends(fhir_idempotency)]
IfNoneExist = Annotated[str | None, Header(
    alias="If-None-Exist", max_length=1000,
    description="Conditional create: Goal search parameters, e.g. patient=Patient/<id>&_id=<id>;"
                " one match answers it (200) and creates nothing, several are 412")]


# --- the CapabilityStatement and the routes ---------------------------------------------------


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: Goal, and Patient for the people it holds goals of."""
    goal = {
        "type": "Goal",
        "profile": "http://hl7.org/fhir/StructureDefinition/Goal",
        "interaction": [{"code": code} for code in ("read", "vread", "history-instance",
                                                    "search-type", "create", "update")],
        # Updates must name the version they change (If-Match): version-aware updates.
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": True,
        "conditionalRead": "not-match",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": fhir.searched_by(GOAL_SEARCH),
    }
    return [goal, fhir.patient_capability()]


router = fhir.fhir_router("goals", capability_statement)
fhir.add_patient_routes(router, service.holds_person)

GoalId = Annotated[str, Path(min_length=1, max_length=64, description="The goal's id")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: If-None-Match names this version"}}
CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created: the Goal proposed", "content": FHIR_OK[200]["content"]}}


@router.get("/Goal/{goal_id}", response_model=None,
            responses={**FHIR_OK, **NOT_MODIFIED, **problem_responses(404)},
            summary="Read a Goal (ETag; 304 when If-None-Match names its version)")
async def read_goal(request: Request, goal_id: GoalId, access: AccessDep,
                    settings: SettingsDep) -> Response:
    _, document = await service.read_goal_document(access, goal_id)
    return fhir.read_response(request, stored_resource(document, settings))


@router.get("/Goal/{goal_id}/_history/{version_id}", response_model=None,
            responses={**FHIR_OK, **NOT_MODIFIED, **problem_responses(404)},
            summary="Read one version of a Goal (vread)")
async def vread_goal(request: Request, goal_id: GoalId,
                     version_id: Annotated[str, Path(min_length=1, max_length=20)],
                     access: AccessDep, settings: SettingsDep) -> Response:
    document = await service.read_goal_version(access, goal_id, fhir.version_number(version_id))
    return fhir.read_response(request, stored_resource(document, settings))


@router.get("/Goal/{goal_id}/_history", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404)},
            openapi_extra=_query_parameters((), _RESULT_PARAMETERS[:3]),
            summary="Every version of a Goal, newest first (history Bundle, paged)")
async def goal_history(request: Request, goal_id: GoalId, access: AccessDep,
                       settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "Goal", (), default_count=settings.page_size_default,
                               max_count=settings.page_size_max)
    page = await service.goal_history(access, goal_id, cursor=search.cursor,
                                      limit=0 if search.count_only else search.count)
    url = f"{search.base}/Goal/{goal_id}/_history"
    following = [*search.kept, ("_cursor", page.next_cursor)] if page.next_cursor else None
    return FhirResponse(fhir.history(
        search.base, "Goal", [stored_resource(d, settings) for d in page.documents],
        self_url=_with_query(url, search.kept), total=page.total,
        next_url=_with_query(url, following) if following else None))


@router.get("/Goal", response_model=None, responses={**FHIR_OK, **problem_responses(400, 404)},
            openapi_extra=_query_parameters(GOAL_SEARCH, _RESULT_PARAMETERS),
            summary="Search Goals (searchset Bundle)")
async def search_goals(request: Request, access: AccessDep,
                       settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "Goal", GOAL_SEARCH,
                               default_count=settings.page_size_default,
                               max_count=settings.page_size_max)
    page = await matching_goals(access, search, limit=0 if search.count_only else search.count,
                                counted=search.wants_total)
    return FhirResponse(search.bundle((stored_resource(d, settings) for d in page.documents),
                                      next_cursor=page.next_cursor, total=page.total))


@router.post("/Goal", status_code=201, response_model=None,
             responses={**CREATED, **FHIR_OK, **problem_responses(400, 404, 409, 412, 422)},
             summary="Propose a Goal from an EHR (a practitioner's proposal the person then "
                     "accepts or declines); conditional with If-None-Exist")
async def create_goal(request: Request, goal: FhirGoalBody, access: AccessDep,
                      settings: SettingsDep, once: FhirIdempotencyKey,
                      if_none_exist: IfNoneExist = None) -> Response:
    if isinstance(once, Answer):
        return answer_response(once, replayed=True)
    data = proposal(goal, access.principal, settings)
    if if_none_exist is not None:
        found = await matching_goals(access, _conditions(request, if_none_exist), limit=2,
                                     counted=False)
        if len(found.documents) > 1:
            raise Problem(412, "If-None-Exist matches more than one Goal; name one.",
                          kind="several-matches")
        if found.documents:
            return resource_response(stored_resource(found.documents[0], settings))
    base = fhir.public_base(request)
    with in_fhir_terms():
        created = await service.create_goal(
            access, data, once, answer=lambda new: created_answer(new, base, settings),
            proposal_only=True)
    return answer_response(created_answer(created, base, settings))


@router.put("/Goal/{goal_id}", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404, 409, 412, 422, 428)},
            summary="Update a Goal (If-Match with its version): what the goals API lets the "
                    "caller change")
async def update_goal(goal_id: GoalId, goal: FhirGoalBody, session: SessionDep,
                      access: AccessDep, settings: SettingsDep,
                      if_match: IfMatch = None) -> FhirResponse:
    change, stated = replacement(goal, goal_id, settings)
    with in_fhir_terms():
        updated = await service.update_goal(session, access, goal_id, if_match, change,
                                            stated=stated)
    return resource_response(stored_resource(updated.document, settings))

