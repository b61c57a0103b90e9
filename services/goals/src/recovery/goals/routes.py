"""The REST API under ``/v1``: thin translations from HTTP to ``service`` calls."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from recovery.common.deps import AccessDep, SessionDep, SettingsDep
from recovery.common.http import Cursor, IfMatch, Limit, document_response, json_response
from recovery.common.idempotency import IdempotencyKey
from recovery.common.pagination import Page, page_size
from recovery.common.problems import problem_responses
from recovery.goals import service
from recovery.goals.models import (
    BatchRead,
    BatchReadResult,
    Decision,
    Goal,
    GoalCreate,
    GoalKind,
    GoalPublic,
    GoalUpdate,
    GoalVersionPublic,
    LifecycleStatus,
    ReviewCreate,
    ReviewPublic,
    StatusChange,
    StepCreate,
    StepUpdate,
    TeamFigures,
)

router = APIRouter(prefix="/v1", tags=["goals"])

GoalId = Annotated[str, Path(min_length=1, max_length=64, description="The goal's id")]

READ = problem_responses(404)
CHANGE = problem_responses(404, 409, 412, 428)
#: Creating: 409 also for a copy of the request still being answered (Idempotency-Key).
CREATE = problem_responses(409, 422)


def goal_response(goal: Goal, *, status_code: int = 200) -> Response:
    """The goal's stored document (written with the change) and its ETag."""
    return document_response(goal.document, version=goal.version, status_code=status_code)


@router.post("/goals", status_code=201, response_model=GoalPublic,
             responses=CREATE, summary="Write a goal (the person) or propose one (staff)")
async def create_goal(data: GoalCreate, access: AccessDep, once: IdempotencyKey) -> Response:
    goal = await service.create_goal(access, data, once)
    return service.created_answer(goal).response()


@router.get("/goals", response_model=Page[GoalPublic], responses=READ,
            summary="Goals the caller may see, newest first")
async def list_goals(
    access: AccessDep, settings: SettingsDep,
    service_user_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    team_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: Annotated[list[LifecycleStatus] | None, Query(
        description="Lifecycle statuses to include; entered-in-error is left out unless named"
    )] = None,
    kind: GoalKind | None = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    page = await service.list_goals(
        access, service_user_id=service_user_id, team_id=team_id, statuses=status,
        kind=kind, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return Response(page.json(), media_type="application/json")


@router.post("/goals:batch-read", response_model=BatchReadResult,
             summary="Goals of many service users in one call, each filtered by access")
async def batch_read(request: BatchRead, access: AccessDep) -> Response:
    return Response(await service.batch_read(access, request),
                    media_type="application/json")


@router.get("/goals/{goal_id}", response_model=GoalPublic, responses=READ,
            summary="One goal, with its ETag")
async def read_goal(goal_id: GoalId, access: AccessDep) -> Response:
    version, document = await service.read_goal_document(access, goal_id)
    return document_response(document, version=version)


@router.patch("/goals/{goal_id}", response_model=GoalPublic, responses=CHANGE,
              summary="Change what a goal says (If-Match required)")
async def update_goal(goal_id: GoalId, change: GoalUpdate, session: SessionDep,
                      access: AccessDep, if_match: IfMatch = None) -> Response:
    goal = await service.update_goal(session, access, goal_id, if_match, change)
    return goal_response(goal)


@router.post("/goals/{goal_id}/accept", response_model=GoalPublic, responses=CHANGE,
             summary="The person accepts a proposed goal; it becomes active")
async def accept_goal(goal_id: GoalId, session: SessionDep, access: AccessDep,
                      if_match: IfMatch = None,
                      decision: Annotated[Decision | None, Body()] = None) -> Response:
    goal = await service.decide_goal(session, access, goal_id, if_match,
                                     decision or Decision(), accept=True)
    return goal_response(goal)


@router.post("/goals/{goal_id}/decline", response_model=GoalPublic, responses=CHANGE,
             summary="The person declines a proposed goal; it is kept as rejected")
async def decline_goal(goal_id: GoalId, session: SessionDep, access: AccessDep,
                       if_match: IfMatch = None,
                       decision: Annotated[Decision | None, Body()] = None) -> Response:
    goal = await service.decide_goal(session, access, goal_id, if_match,
                                     decision or Decision(), accept=False)
    return goal_response(goal)


@router.post("/goals/{goal_id}/status", response_model=GoalPublic, responses=CHANGE,
             summary="Move a goal along its lifecycle (on-hold, completed, entered-in-error…)")
async def change_status(goal_id: GoalId, change: StatusChange, session: SessionDep,
                        access: AccessDep, if_match: IfMatch = None) -> Response:
    goal = await service.change_status(session, access, goal_id, if_match, change)
    return goal_response(goal)


@router.post("/goals/{goal_id}/steps", status_code=201, response_model=GoalPublic,
             responses=CHANGE, summary="Add a step: who does what, by when")
async def add_step(goal_id: GoalId, step: StepCreate, session: SessionDep, access: AccessDep,
                   if_match: IfMatch = None) -> Response:
    goal = await service.add_step(session, access, goal_id, if_match, step)
    return goal_response(goal, status_code=201)


@router.patch("/goals/{goal_id}/steps/{step_id}", response_model=GoalPublic, responses=CHANGE,
              summary="Change a step or mark it done")
async def update_step(goal_id: GoalId,
                      step_id: Annotated[str, Path(min_length=1, max_length=64)],
                      change: StepUpdate, session: SessionDep, access: AccessDep,
                      if_match: IfMatch = None) -> Response:
    goal = await service.update_step(session, access, goal_id, step_id, if_match, change)
    return goal_response(goal)


@router.get("/goals/{goal_id}/reviews", response_model=Page[ReviewPublic], responses=READ,
            summary="Progress reviews of a goal, most recent first")
async def list_reviews(goal_id: GoalId, session: SessionDep, access: AccessDep,
                       settings: SettingsDep, cursor: Cursor = None,
                       limit: Limit = None) -> Response:
    page = await service.list_reviews(
        session, access, goal_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(page)


@router.post("/goals/{goal_id}/reviews", status_code=201, response_model=ReviewPublic,
             responses={**CHANGE, **CREATE},
             summary="Record a progress review (If-Match of the goal)")
async def add_review(goal_id: GoalId, review: ReviewCreate, session: SessionDep,
                     access: AccessDep, once: IdempotencyKey,
                     if_match: IfMatch = None) -> Response:
    row = await service.add_review(session, access, goal_id, if_match, review, once)
    return service.review_answer(row).response()


@router.get("/goals/{goal_id}/versions", response_model=Page[GoalVersionPublic],
            responses=READ, summary="Every version of a goal, oldest first")
async def list_versions(goal_id: GoalId, session: SessionDep, access: AccessDep,
                        settings: SettingsDep, cursor: Cursor = None,
                        limit: Limit = None) -> Response:
    page = await service.list_versions(
        session, access, goal_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(page)


@router.get("/teams/{team_id}/figures", response_model=TeamFigures, tags=["figures"],
            summary="A team's goal figures (managers and admins of the team)")
async def team_figures(
    team_id: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep, access: AccessDep,
    reviewed_within_days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> Response:
    figures = await service.team_figures(session, access, team_id,
                                         reviewed_within_days=reviewed_within_days)
    return json_response(figures)
