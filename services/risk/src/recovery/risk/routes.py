"""The REST API under ``/v1``: thin translations from HTTP to ``service`` calls.

Every route first refuses a predictive score, level or stratification, in the body or the
query, with a problem that says why (NICE NG225), before anything is read or stored.
"""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from recovery.common.deps import AccessDep, PrincipalDep, SettingsDep
from recovery.common.http import Cursor, IfMatch, Limit, document_response, json_response
from recovery.common.idempotency import IdempotencyKey
from recovery.common.pagination import Page, page_size
from recovery.common.problems import InvalidParam, Problem, problem_responses
from recovery.common.rules import EnteredInError
from recovery.risk import rules, service
from recovery.risk.models import (
    AssessmentCreate,
    AssessmentPublic,
    AssessmentUpdate,
    BatchRead,
    BatchReadResult,
    PositiveRiskDecisionCreate,
    ReviewDueList,
    RiskAssessment,
    SignatureCreate,
    VersionPublic,
)


async def refuse_predictive_scores(request: Request, _caller: PrincipalDep) -> None:
    """422 for any score, level, rating, probability or stratification in the request (after
    the token is checked, so an anonymous caller still gets 401)."""
    found = [f"query.{name}" for name in request.query_params if rules.is_predictive_name(name)]
    if request.method in {"POST", "PUT", "PATCH"}:
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None  # not JSON: the body's own validation answers
        found += [f"body.{path}" for path in rules.predictive_fields(body)]
    if found:
        raise Problem(422, rules.NICE_NG225, kind="predictive-risk-score-refused",
                      title="Risk is not a number",
                      invalid_params=[InvalidParam(name=where, reason=(
                          "A predictive risk score or level is neither accepted nor stored "
                          "(NICE NG225).")) for where in found])


router = APIRouter(prefix="/v1", tags=["risk"], dependencies=[Depends(refuse_predictive_scores)])

AssessmentId = Annotated[str, Path(min_length=1, max_length=64,
                                   description="The co-assessment's id")]
FilterId = Annotated[str | None, Query(min_length=1, max_length=64)]

READ = problem_responses(404)
CHANGE = problem_responses(404, 409, 412, 428)


def assessment_response(assessment: RiskAssessment, *, status_code: int = 200) -> Response:
    """The stored document written with the change, and its ETag."""
    return document_response(assessment.document, version=assessment.version,
                             status_code=status_code)


@router.post("/risk-assessments", status_code=201, response_model=AssessmentPublic,
             responses=problem_responses(409, 422),
             summary="Start a co-assessment (a draft until both sides sign)")
async def create_assessment(data: AssessmentCreate, access: AccessDep,
                            once: IdempotencyKey) -> Response:
    assessment = await service.create_assessment(access, data, once)
    return service.created_answer(assessment).response()


@router.get("/risk-assessments", response_model=Page[AssessmentPublic], responses=READ,
            summary="Co-assessments the caller may see, newest first")
async def list_assessments(access: AccessDep, settings: SettingsDep,
                           service_user_id: FilterId = None, team_id: FilterId = None,
                           cursor: Cursor = None, limit: Limit = None) -> Response:
    page = await service.list_assessments(
        access, service_user_id=service_user_id, team_id=team_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return Response(page, media_type="application/json")


@router.post("/risk-assessments:batch-read", response_model=BatchReadResult,
             summary="Co-assessments of many service users in one call, each filtered by access")
async def batch_read(request: BatchRead, access: AccessDep) -> Response:
    return Response(await service.batch_read(access, request), media_type="application/json")


@router.get("/risk-assessments/{assessment_id}", response_model=AssessmentPublic,
            responses=READ, summary="One co-assessment (its latest version), with its ETag")
async def read_assessment(assessment_id: AssessmentId, access: AccessDep) -> Response:
    version, document = await service.read_document(access, assessment_id)
    return document_response(document, version=version)


@router.patch("/risk-assessments/{assessment_id}", response_model=AssessmentPublic,
              responses=CHANGE,
              summary="Change what it says: a new draft version (If-Match required)")
async def update_assessment(assessment_id: AssessmentId, update: AssessmentUpdate,
                            access: AccessDep, if_match: IfMatch = None) -> Response:
    assessment = await service.update_assessment(access, assessment_id, if_match, update)
    return assessment_response(assessment)


@router.post("/risk-assessments/{assessment_id}/signatures", status_code=201,
             response_model=AssessmentPublic, responses=CHANGE,
             summary="Sign the version named by If-Match, by its content hash")
async def sign(assessment_id: AssessmentId, data: SignatureCreate, access: AccessDep,
               if_match: IfMatch = None) -> Response:
    assessment = await service.sign_version(access, assessment_id, if_match, data)
    return assessment_response(assessment, status_code=201)


@router.post("/risk-assessments/{assessment_id}/withdraw-agreement",
             response_model=AssessmentPublic, responses=CHANGE,
             summary="The service user withdraws their agreement")
async def withdraw_agreement(assessment_id: AssessmentId, access: AccessDep,
                             if_match: IfMatch = None) -> Response:
    assessment = await service.withdraw_agreement(access, assessment_id, if_match)
    return assessment_response(assessment)


@router.post("/risk-assessments/{assessment_id}/entered-in-error",
             response_model=AssessmentPublic, responses=CHANGE,
             summary="Staff mark a co-assessment made in error (kept, out of lists)")
async def mark_entered_in_error(assessment_id: AssessmentId, marking: EnteredInError,
                                access: AccessDep, if_match: IfMatch = None) -> Response:
    assessment = await service.mark_entered_in_error(access, assessment_id, if_match, marking)
    return assessment_response(assessment)


@router.post("/risk-assessments/{assessment_id}/positive-risk-decisions", status_code=201,
             response_model=AssessmentPublic, responses=CHANGE,
             summary="Record a positive risk-taking decision for a goal (a new draft version)")
async def add_decision(assessment_id: AssessmentId, data: PositiveRiskDecisionCreate,
                       access: AccessDep, if_match: IfMatch = None) -> Response:
    assessment, _ = await service.add_decision(access, assessment_id, if_match, data)
    return assessment_response(assessment, status_code=201)


@router.get("/risk-assessments/{assessment_id}/active", response_model=VersionPublic,
            responses=READ, summary="The agreed version in force (404 when none is)")
async def read_active(assessment_id: AssessmentId, access: AccessDep) -> Response:
    version = await service.read_active(access, assessment_id)
    return json_response(version)


@router.get("/risk-assessments/{assessment_id}/versions", response_model=Page[VersionPublic],
            responses=READ, summary="Every version with its signatures, oldest first")
async def list_versions(assessment_id: AssessmentId, access: AccessDep,
                        settings: SettingsDep, cursor: Cursor = None,
                        limit: Limit = None) -> Response:
    page = await service.list_versions(
        access, assessment_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(page)


@router.get("/risk-assessments/{assessment_id}/versions/{version}",
            response_model=VersionPublic, responses=READ,
            summary="One version exactly as it was, with its hash and signatures")
async def read_version(assessment_id: AssessmentId,
                       version: Annotated[int, Path(ge=1, le=1_000_000)],
                       access: AccessDep) -> Response:
    return json_response(await service.read_version(access, assessment_id, version))


@router.get("/teams/{team_id}/risk-reviews-due", response_model=ReviewDueList, responses=READ,
            tags=["reviews"], summary="A team's co-assessments due (or overdue) for review")
async def reviews_due(team_id: Annotated[str, Path(min_length=1, max_length=64)],
                      access: AccessDep,
                      within_days: Annotated[int, Query(ge=0, le=365)] = 0) -> Response:
    return json_response(await service.reviews_due(access, team_id, within_days=within_days))
