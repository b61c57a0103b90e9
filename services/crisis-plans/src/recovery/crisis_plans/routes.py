"""The REST API under ``/v1``: thin translations from HTTP to ``service`` calls."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from recovery.common.deps import AccessDep, SettingsDep
from recovery.common.http import Cursor, IfMatch, Limit, document_response, json_response
from recovery.common.idempotency import Answer, IdempotencyKey
from recovery.common.pagination import Page, page_size
from recovery.common.problems import problem_responses
from recovery.common.rules import EnteredInError
from recovery.crisis_plans import service
from recovery.crisis_plans.models import (
    ActivePlan,
    BatchRead,
    BatchReadResult,
    BreakGlassPublic,
    BreakGlassRequest,
    CrisisPlan,
    DecisionReviewsDue,
    MedicationDecisionCreate,
    MedicationDecisionPublic,
    OverdueReviews,
    PlanChange,
    PlanCreate,
    PlanPublic,
    SignRequest,
    VersionPublic,
    Withdrawal,
)

router = APIRouter(prefix="/v1", tags=["crisis-plans"])

PlanId = Annotated[str, Path(min_length=1, max_length=64, description="The plan's id")]
PersonId = Annotated[str, Path(min_length=1, max_length=64,
                               description="The service user's id (the EHR patient id)")]
TeamId = Annotated[str, Path(min_length=1, max_length=64)]

READ = problem_responses(404)
CHANGE = problem_responses(404, 409, 412, 428)


def plan_response(plan: CrisisPlan, *, status_code: int = 200) -> Response:
    """The plan's stored document (written with the change) and its ETag."""
    return document_response(plan.document, version=plan.version, status_code=status_code)


@router.post("/crisis-plans", status_code=201, response_model=PlanPublic,
             responses=problem_responses(409, 422),
             summary="Start a person's joint crisis plan")
async def create_plan(data: PlanCreate, access: AccessDep, once: IdempotencyKey) -> Response:
    plan = await service.create_plan(access, data, once)
    return service.created_answer(plan).response()


@router.post("/crisis-plans:batch-read", response_model=BatchReadResult,
             summary="Active plans of many service users in one call, each filtered by access")
async def batch_read(request: BatchRead, access: AccessDep) -> Response:
    return Response(await service.batch_read(access, request), media_type="application/json")


@router.get("/crisis-plans/{plan_id}", response_model=PlanPublic, responses=READ,
            summary="A plan's newest version and where agreement stands, with its ETag")
async def read_plan(plan_id: PlanId, access: AccessDep) -> Response:
    version, document = await service.read_plan_document(access, plan_id)
    return document_response(document, version=version)


@router.put("/crisis-plans/{plan_id}", response_model=PlanPublic, responses=CHANGE,
            summary="Write a new version of the plan (If-Match required)")
async def change_plan(plan_id: PlanId, change: PlanChange, access: AccessDep,
                      if_match: IfMatch = None) -> Response:
    return plan_response(await service.change_plan(access, plan_id, if_match, change))


@router.post("/crisis-plans/{plan_id}/signatures", status_code=201, response_model=PlanPublic,
             responses=CHANGE,
             summary="Sign the version If-Match names, bound to its content hash")
async def sign_version(plan_id: PlanId, request: SignRequest, access: AccessDep,
                       if_match: IfMatch = None) -> Response:
    version, document = await service.sign_version(access, plan_id, if_match, request)
    return document_response(document, version=version, status_code=201)


@router.post("/crisis-plans/{plan_id}/withdraw-agreement", response_model=PlanPublic,
             responses=CHANGE, summary="The service user withdraws their agreement")
async def withdraw_agreement(plan_id: PlanId, access: AccessDep, if_match: IfMatch = None,
                             withdrawal: Annotated[Withdrawal | None, Body()] = None
                             ) -> Response:
    plan = await service.withdraw_agreement(access, plan_id, if_match,
                                            withdrawal or Withdrawal())
    return plan_response(plan)


@router.post("/crisis-plans/{plan_id}/entered-in-error", response_model=PlanPublic,
             responses=CHANGE, summary="Staff mark a plan made in error (kept, readable by id, "
                                       "no longer active, out of lists)")
async def mark_entered_in_error(plan_id: PlanId, marking: EnteredInError, access: AccessDep,
                                if_match: IfMatch = None) -> Response:
    return plan_response(await service.mark_entered_in_error(access, plan_id, if_match,
                                                             marking))


@router.get("/crisis-plans/{plan_id}/versions", response_model=Page[VersionPublic],
            responses=READ, summary="Every version with its hash and signatures, oldest first")
async def list_versions(plan_id: PlanId, access: AccessDep, settings: SettingsDep,
                        cursor: Cursor = None, limit: Limit = None) -> Response:
    return json_response(await service.list_versions(
        access, plan_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max)))


@router.post("/crisis-plans/{plan_id}/medication-decisions", status_code=201,
             response_model=MedicationDecisionPublic,
             responses=problem_responses(404, 409, 422),
             summary="Record a shared decision on medication, in the person's voice (at a "
                     "review, one that revisits the earlier decision)")
async def record_medication_decision(plan_id: PlanId, decision: MedicationDecisionCreate,
                                     access: AccessDep, once: IdempotencyKey) -> Response:
    public = await service.record_medication_decision(access, plan_id, decision, once)
    return Answer.of(public).response()


@router.get("/crisis-plans/{plan_id}/medication-decisions",
            response_model=Page[MedicationDecisionPublic], responses=READ,
            summary="Shared decisions on medication, newest first")
async def list_medication_decisions(plan_id: PlanId, access: AccessDep, settings: SettingsDep,
                                    cursor: Cursor = None, limit: Limit = None) -> Response:
    return json_response(await service.list_medication_decisions(
        access, plan_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max)))


@router.get("/people/{service_user_id}/crisis-plan", response_model=ActivePlan,
            responses=READ, summary="The person's active (agreed) crisis plan")
async def read_active_plan(service_user_id: PersonId, access: AccessDep) -> Response:
    return Response(await service.read_active_plan(access, service_user_id),
                    media_type="application/json")


@router.get("/people/{service_user_id}/crisis-plans", response_model=Page[PlanPublic],
            responses=READ, summary="The person's crisis plans, newest first: their own for "
                                    "the person, their teams' for staff")
async def list_person_plans(service_user_id: PersonId, access: AccessDep,
                            settings: SettingsDep, include_entered_in_error: bool = False,
                            cursor: Cursor = None, limit: Limit = None) -> Response:
    page = await service.list_person_plans(
        access, service_user_id, include_entered_in_error=include_entered_in_error,
        cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return Response(page, media_type="application/json")


@router.post("/people/{service_user_id}/crisis-plan:break-glass",
             response_model=BreakGlassPublic, responses=problem_responses(403, 404, 422),
             summary="A crisis-team clinician reads the active plan outside their teams, "
                     "giving a reason (audited, announced)")
async def break_glass(service_user_id: PersonId, request: BreakGlassRequest,
                      access: AccessDep) -> Response:
    crisis_teams: frozenset[str] = access.kit.extras["crisis_teams"]
    return json_response(await service.break_glass(access, service_user_id, request,
                                                   crisis_teams))


@router.get("/teams/{team_id}/crisis-plans", response_model=Page[PlanPublic], responses=READ,
            summary="A team's plans, newest first; filter those with nothing personal in them")
async def list_team_plans(team_id: TeamId, access: AccessDep, settings: SettingsDep,
                          not_individualised: bool | None = None, cursor: Cursor = None,
                          limit: Limit = None) -> Response:
    page = await service.list_team_plans(
        access, team_id, not_individualised=not_individualised, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return Response(page, media_type="application/json")


@router.get("/teams/{team_id}/medication-decisions:review-due",
            response_model=DecisionReviewsDue, responses=READ,
            summary="A team's shared decisions on medication due for review, most overdue first")
async def decision_reviews_due(team_id: TeamId, access: AccessDep, settings: SettingsDep,
                               limit: Limit = None) -> Response:
    return json_response(await service.decision_reviews_due(
        access, team_id, limit=page_size(limit, settings.page_size_default,
                                         settings.page_size_max)))


@router.get("/teams/{team_id}/crisis-plans:overdue-review", response_model=OverdueReviews,
            responses=READ, summary="A team's plans past their review date")
async def overdue_reviews(team_id: TeamId, access: AccessDep, settings: SettingsDep,
                          limit: Limit = None) -> Response:
    return json_response(await service.overdue_reviews(
        access, team_id, limit=page_size(limit, settings.page_size_default,
                                         settings.page_size_max)))
