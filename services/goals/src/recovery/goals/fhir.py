"""FHIR R4 Goal: our goals as FHIR Goals, and the ``/fhir`` routes an EHR uses: read, vread,
history and search; Patient.

Our own code systems and extensions live under ``https://recovery-platform.org/fhir/``;
``docs/fhir-mapping.md`` lists them and says what each route does.
"""

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Request
from fastapi.responses import Response

from recovery.common import fhir
from recovery.common.deps import AccessDep, RecordAccess, SettingsDep
from recovery.common.fhir import (
    BASE,
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
from recovery.common.problems import Problem, problem_responses
from recovery.common.settings import Settings
from recovery.goals import service
from recovery.goals.models import ExpressedBy, GoalPublic, LifecycleStatus

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


# --- the CapabilityStatement and the routes ---------------------------------------------------


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: Goal, and Patient for the people it holds goals of."""
    goal = {
        "type": "Goal",
        "profile": "http://hl7.org/fhir/StructureDefinition/Goal",
        "interaction": [{"code": code} for code in ("read", "vread", "history-instance",
                                                    "search-type")],
        "versioning": "versioned",
        "readHistory": True,
        "conditionalRead": "not-match",
        "searchParam": fhir.searched_by(GOAL_SEARCH),
    }
    return [goal, fhir.patient_capability()]


router = fhir.fhir_router("goals", capability_statement)
fhir.add_patient_routes(router, service.holds_person)

GoalId = Annotated[str, Path(min_length=1, max_length=64, description="The goal's id")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: If-None-Match names this version"}}


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
