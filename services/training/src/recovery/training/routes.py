"""The REST API under ``/v1``: thin translations from HTTP to ``service`` calls."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from recovery.common.deps import AccessDep, PrincipalDep, SessionDep, SettingsDep
from recovery.common.http import Cursor, IfMatch, Limit, json_response
from recovery.common.idempotency import IdempotencyKey
from recovery.common.pagination import Page, page_size
from recovery.common.problems import problem_responses
from recovery.common.settings import Settings
from recovery.training import service
from recovery.training.models import (
    AttendanceRecord,
    Completion,
    CourseCreate,
    CoursePublic,
    CourseUpdate,
    EducatorCreate,
    EducatorPublic,
    EnrolmentCreate,
    EnrolmentPublic,
    EnrolmentStatus,
    FeedbackCreate,
    FoundationCoverage,
    RunCreate,
    RunDelivery,
    RunPublic,
    RunsBatchRead,
    RunsBatchReadResult,
    StaffPublic,
    SupervisionRecord,
    SupportRecord,
    TrainingQuality,
    TrainingRecord,
)

router = APIRouter(prefix="/v1", tags=["training"])

Id = Annotated[str, Path(min_length=1, max_length=64)]
Filter = Annotated[str | None, Query(min_length=1, max_length=64)]

READ = problem_responses(404)
CHANGE = problem_responses(404, 409)


def size(limit: int | None, settings: Settings) -> int:
    return page_size(limit, settings.page_size_default, settings.page_size_max)


# --- the prospectus -----------------------------------------------------------------------


@router.get("/courses", response_model=Page[CoursePublic], summary="The prospectus")
async def list_courses(session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                       cursor: Cursor = None, limit: Limit = None) -> Response:
    return json_response(await service.list_courses(session, principal, cursor=cursor,
                                              limit=size(limit, settings)))


@router.post("/courses", status_code=201, response_model=CoursePublic,
             responses=problem_responses(409, 422),
             summary="Add a co-produced course (the college)")
async def create_course(data: CourseCreate, session: SessionDep, principal: PrincipalDep,
                        once: IdempotencyKey) -> Response:
    course = await service.create_course(session, principal, data, once)
    return service.course_answer(course).response()


@router.get("/courses/{course_id}", response_model=CoursePublic, responses=READ,
            summary="One course of the prospectus")
async def read_course(course_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    course = await service.get_course(session, course_id)
    return json_response(CoursePublic.model_validate(course), version=course.version)


@router.patch("/courses/{course_id}", response_model=CoursePublic,
              responses=problem_responses(404, 412, 428),
              summary="Change a course (the college; If-Match required)")
async def update_course(course_id: Id, change: CourseUpdate, session: SessionDep,
                        principal: PrincipalDep, if_match: IfMatch = None) -> Response:
    course = await service.update_course(session, principal, course_id, if_match, change)
    return json_response(CoursePublic.model_validate(course), version=course.version)


@router.get("/courses/{course_id}/runs", response_model=Page[RunPublic], responses=READ,
            summary="Runs of a course, with places taken and waiting")
async def list_runs(course_id: Id, session: SessionDep, principal: PrincipalDep,
                    settings: SettingsDep, cursor: Cursor = None,
                    limit: Limit = None) -> Response:
    return json_response(await service.list_runs(session, course_id, cursor=cursor,
                                           limit=size(limit, settings)))


@router.post("/runs:batch-read", response_model=RunsBatchReadResult,
             summary="The first runs of many courses in one call, each paged as its runs list")
async def batch_read_runs(request: RunsBatchRead, session: SessionDep,
                          principal: PrincipalDep) -> Response:
    return json_response(await service.batch_read_runs(session, request))


@router.post("/courses/{course_id}/runs", status_code=201, response_model=RunPublic,
             responses=problem_responses(404, 409, 422),
             summary="Schedule a run; refused unless co-delivered by an educator with lived "
                     "experience and another facilitator")
async def create_run(course_id: Id, data: RunCreate, session: SessionDep,
                     principal: PrincipalDep, once: IdempotencyKey) -> Response:
    run = await service.create_run(session, principal, course_id, data, once)
    return service.run_answer(run).response()


@router.get("/runs/{run_id}", response_model=RunPublic, responses=READ, summary="One run")
async def read_run(run_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    return json_response(await service.read_run(session, run_id))


@router.post("/runs/{run_id}/delivery", response_model=RunPublic, responses=CHANGE,
             summary="Record who really facilitated the run, once it has started (the college)")
async def record_delivery(run_id: Id, data: RunDelivery, session: SessionDep,
                          principal: PrincipalDep) -> Response:
    return json_response(await service.record_delivery(session, principal, run_id, data))


# --- educators ----------------------------------------------------------------------------


@router.post("/educators", status_code=201, response_model=EducatorPublic,
             responses=problem_responses(409, 422),
             summary="Add an educator (service-user, peer, carer or professional)")
async def create_educator(data: EducatorCreate, session: SessionDep, principal: PrincipalDep,
                          once: IdempotencyKey) -> Response:
    educator = await service.create_educator(session, principal, data, once)
    return service.educator_answer(educator).response()


@router.get("/educators", response_model=Page[EducatorPublic],
            summary="Educators (the college)")
async def list_educators(session: SessionDep, access: AccessDep, settings: SettingsDep,
                         cursor: Cursor = None, limit: Limit = None) -> Response:
    return json_response(await service.list_educators(session, access, cursor=cursor,
                                                limit=size(limit, settings)))


@router.get("/educators/{educator_id}", response_model=EducatorPublic, responses=READ,
            summary="One educator with their training, supervision and support")
async def read_educator(educator_id: Id, session: SessionDep, access: AccessDep) -> Response:
    return json_response(EducatorPublic.model_validate(
        await service.get_educator(session, access, educator_id)))


@router.post("/educators/{educator_id}/training", response_model=EducatorPublic,
             status_code=201, responses=READ, summary="Record the educator's own training")
async def add_training(educator_id: Id, record: TrainingRecord, session: SessionDep,
                       access: AccessDep) -> Response:
    return json_response(EducatorPublic.model_validate(
        await service.add_educator_record(session, access, educator_id, record)),
        status_code=201)


@router.post("/educators/{educator_id}/supervision", response_model=EducatorPublic,
             status_code=201, responses=READ, summary="Record the educator's supervision")
async def add_supervision(educator_id: Id, record: SupervisionRecord, session: SessionDep,
                          access: AccessDep) -> Response:
    return json_response(EducatorPublic.model_validate(
        await service.add_educator_record(session, access, educator_id, record)),
        status_code=201)


@router.post("/educators/{educator_id}/support", response_model=EducatorPublic,
             status_code=201, responses=READ, summary="Record support given to the educator")
async def add_support(educator_id: Id, record: SupportRecord, session: SessionDep,
                      access: AccessDep) -> Response:
    return json_response(EducatorPublic.model_validate(
        await service.add_educator_record(session, access, educator_id, record)),
        status_code=201)


# --- enrolment ----------------------------------------------------------------------------


@router.post("/runs/{run_id}/enrolments", status_code=201, response_model=EnrolmentPublic,
             responses={**CHANGE, **problem_responses(422)},
             summary="Enrol on a run (a place, or the waiting list)")
async def enrol(run_id: Id, data: EnrolmentCreate, session: SessionDep,
                access: AccessDep, once: IdempotencyKey) -> Response:
    enrolment = await service.enrol(session, access, run_id, data, once)
    return service.enrolment_answer(enrolment).response()


@router.get("/enrolments", response_model=Page[EnrolmentPublic],
            summary="Enrolments the caller may see, oldest first")
async def list_enrolments(session: SessionDep, access: AccessDep, settings: SettingsDep,
                          learner_id: Filter = None, run_id: Filter = None,
                          course_id: Filter = None, team_id: Filter = None,
                          status: EnrolmentStatus | None = None,
                          cursor: Cursor = None, limit: Limit = None) -> Response:
    return json_response(await service.list_enrolments(
        session, access, learner_id=learner_id, run_id=run_id, course_id=course_id,
        team_id=team_id, status=status, cursor=cursor, limit=size(limit, settings)))


@router.get("/enrolments/{enrolment_id}", response_model=EnrolmentPublic, responses=READ,
            summary="One enrolment")
async def read_enrolment(enrolment_id: Id, session: SessionDep, access: AccessDep) -> Response:
    return json_response(EnrolmentPublic.model_validate(
        await service.get_enrolment(session, access, enrolment_id)))


@router.post("/enrolments/{enrolment_id}/attendance", response_model=EnrolmentPublic,
             responses=CHANGE, summary="Record attendance (the college)")
async def record_attendance(enrolment_id: Id, data: AttendanceRecord, session: SessionDep,
                            access: AccessDep) -> Response:
    return json_response(EnrolmentPublic.model_validate(
        await service.record_attendance(session, access, enrolment_id, data)))


@router.post("/enrolments/{enrolment_id}/completion", response_model=EnrolmentPublic,
             responses=CHANGE, summary="Record completion (the college)")
async def complete(enrolment_id: Id, data: Completion, session: SessionDep,
                   access: AccessDep) -> Response:
    return json_response(EnrolmentPublic.model_validate(
        await service.complete(session, access, enrolment_id, data)))


@router.post("/enrolments/{enrolment_id}/withdrawal", response_model=EnrolmentPublic,
             responses=CHANGE,
             summary="Withdraw; the place goes to the first on the waiting list")
async def withdraw(enrolment_id: Id, session: SessionDep, access: AccessDep) -> Response:
    return json_response(EnrolmentPublic.model_validate(
        await service.withdraw(session, access, enrolment_id)))


@router.post("/enrolments/{enrolment_id}/feedback", response_model=EnrolmentPublic,
             responses=CHANGE, summary="The learner's rating and words, once, after completion")
async def record_feedback(enrolment_id: Id, data: FeedbackCreate, session: SessionDep,
                          access: AccessDep) -> Response:
    return json_response(EnrolmentPublic.model_validate(
        await service.record_feedback(session, access, enrolment_id, data)))


# --- roster and figures -------------------------------------------------------------------


@router.get("/staff/{staff_id}", response_model=StaffPublic, responses=READ,
            summary="A member of staff as the roster knows them (from workforce events)")
async def read_staff(staff_id: Id, session: SessionDep, access: AccessDep) -> Response:
    return json_response(await service.get_staff(session, access, staff_id))


@router.get("/figures/foundation-coverage", response_model=FoundationCoverage,
            tags=["figures"], summary="Foundation course coverage across the organisation")
async def organisation_coverage(session: SessionDep, access: AccessDep) -> Response:
    return json_response(await service.foundation_coverage(session, access, None))


@router.get("/teams/{team_id}/foundation-coverage", response_model=FoundationCoverage,
            tags=["figures"], summary="A team's foundation coverage by profession and grade")
async def team_coverage(team_id: Id, session: SessionDep, access: AccessDep) -> Response:
    return json_response(await service.foundation_coverage(session, access, team_id))


@router.get("/figures/quality", response_model=TrainingQuality, tags=["figures"],
            summary="Quality: feedback and co-delivery kept, per course")
async def quality(session: SessionDep, access: AccessDep) -> Response:
    return json_response(await service.training_quality(session, access))
