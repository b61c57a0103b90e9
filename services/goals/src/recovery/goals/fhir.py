"""FHIR R4 Goal: the mapping from our goals, and the ``/fhir`` read, search and metadata routes.

Our own code systems and extensions live under ``https://recovery-platform.org/fhir/``;
``docs/fhir-mapping.md`` lists them.
"""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request

from recovery.common import fhir
from recovery.common.deps import AccessDep, SettingsDep
from recovery.common.fhir import (
    BASE,
    FHIR_OK,
    TEAM,
    TEAM_SYSTEM,
    FhirResponse,
    concept,
    instant,
)
from recovery.common.pagination import page_size
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
_STATUS = "|".join(s.value for s in LifecycleStatus)
STATUS_LIST = f"^({_STATUS})(,({_STATUS}))*$"

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


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return concept(system, code, display, text=True)


def goal_resource(goal: GoalPublic) -> dict[str, Any]:
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
    resource: dict[str, Any] = {
        "resourceType": "Goal",
        "id": goal.id,
        "meta": {"versionId": str(goal.version), "lastUpdated": instant(goal.updated_at)},
        "extension": extension,
        "lifecycleStatus": goal.lifecycle_status.value,
        "category": category,
        "description": {"text": goal.description},
        "subject": {"reference": f"Patient/{goal.service_user_id}"},
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
        resource["expressedBy"] = {"reference": f"Patient/{goal.service_user_id}"}
    elif goal.proposed_by:
        resource["expressedBy"] = {"reference": f"Practitioner/{goal.proposed_by}"}
    return resource


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: Goal read and search."""
    goal = {
        "type": "Goal",
        "versioning": "versioned",
        "readHistory": False,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [
            {"name": "patient", "type": "reference",
             "documentation": "The service user (Patient/<id> or <id>)"},
            {"name": "subject", "type": "reference"},
            {"name": "lifecycle-status", "type": "token"},
            {"name": "_count", "type": "number"},
        ],
    }
    return [goal]


router = fhir.fhir_router("goals", capability_statement)


@router.get("/Goal/{goal_id}", response_model=None,
            responses={**FHIR_OK, **problem_responses(404)}, summary="Read a Goal")
async def read_goal(goal_id: Annotated[str, Path(min_length=1, max_length=64)],
                    access: AccessDep) -> FhirResponse:
    version, document = await service.read_goal_document(access, goal_id)
    return FhirResponse(goal_resource(GoalPublic.model_validate_json(document)),
                        headers={"ETag": f'W/"{version}"'})


def _person(reference: str | None) -> str | None:
    if reference is None:
        return None
    person = reference.removeprefix("Patient/")
    if not person or "/" in person or len(person) > 64:
        raise Problem(400, "patient must be Patient/<id> or <id>.", kind="invalid-search")
    return person


def _statuses(text: str | None) -> list[LifecycleStatus] | None:
    if not text:
        return None
    try:
        return [LifecycleStatus(code) for code in text.split(",")]
    except ValueError as exc:
        raise Problem(400, "lifecycle-status holds FHIR Goal lifecycle codes.",
                      kind="invalid-search") from exc


@router.get("/Goal", response_model=None, responses={**FHIR_OK, **problem_responses(404)},
            summary="Search Goals (searchset Bundle)")
async def search_goals(
    request: Request, access: AccessDep, settings: SettingsDep,
    patient: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    lifecycle_status: Annotated[str | None, Query(
        alias="lifecycle-status", max_length=200, pattern=STATUS_LIST,
        description="Comma-separated FHIR Goal lifecycle codes")] = None,
    count: Annotated[int | None, Query(alias="_count", ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=500)] = None,
) -> FhirResponse:
    person = _person(patient) or _person(subject)
    if patient and subject and _person(patient) != _person(subject):
        raise Problem(400, "patient and subject name different people.", kind="invalid-search")
    size = page_size(count, settings.page_size_default, settings.page_size_max)
    page = await service.list_goals(
        access, service_user_id=person, team_id=None,
        statuses=_statuses(lifecycle_status), kind=None, cursor=cursor, limit=size)
    base = fhir.public_base(request).removesuffix("/fhir")
    params = {k: v for k, v in {"patient": person, "lifecycle-status": lifecycle_status,
                                 "_count": str(size)}.items() if v}
    links = [{"relation": "self", "url": f"{base}/fhir/Goal?{urlencode(params)}"}]
    if page.next_cursor:
        following = urlencode({**params, "_cursor": page.next_cursor})
        links.append({"relation": "next", "url": f"{base}/fhir/Goal?{following}"})
    bundle = fhir.searchset(
        (fhir.match(goal_resource(goal), f"{base}/fhir/Goal/{goal.id}") for goal in page.goals()),
        links=links)
    return FhirResponse(bundle)
