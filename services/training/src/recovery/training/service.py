"""What the training service does: plain functions over a session and the caller's access."""

from collections.abc import Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import and_, false, func, or_, tuple_, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from recovery.common.audit import Outcome
from recovery.common.auth import Principal, Role, Verb, require_scope
from recovery.common.deps import RecordAccess
from recovery.common.events import CloudEvent, record_event
from recovery.common.idempotency import Answer, IdempotentRequest, keep_answer
from recovery.common.pagination import Page, decode_time_cursor, keyset_page
from recovery.common.problems import InvalidParam, Problem
from recovery.common.rules import refuse
from recovery.common.timeutil import utcnow
from recovery.common.versioning import require_if_match
from recovery.training import rules
from recovery.training.events import TrainingEvent, enrolment_event_data
from recovery.training.models import (
    FOUNDATION_COURSE_ID,
    AttendanceRecord,
    Completion,
    Course,
    CourseCreate,
    CoursePublic,
    CourseQuality,
    CourseRun,
    CourseRuns,
    CourseUpdate,
    CoverageGroup,
    Educator,
    EducatorCreate,
    EducatorPublic,
    Enrolment,
    EnrolmentCreate,
    EnrolmentPublic,
    EnrolmentStatus,
    FeedbackCreate,
    FoundationCoverage,
    LearnerKind,
    RunCreate,
    RunDelivery,
    RunPublic,
    RunsBatchRead,
    RunsBatchReadResult,
    StaffMember,
    StaffPublic,
    SupervisionRecord,
    SupportRecord,
    TrainingQuality,
    TrainingRecord,
)

COURSE, ENROLMENT, EDUCATOR, STAFF = "Course", "Enrolment", "Educator", "StaffMember"
HOLDS_PLACE = (EnrolmentStatus.enrolled.value, EnrolmentStatus.completed.value)
OPEN = (EnrolmentStatus.enrolled.value, EnrolmentStatus.waiting.value)
T = TypeVar("T", bound=SQLModel)


def not_found(record_type: str) -> Problem:
    return Problem(404, f"No {record_type} with that id is available to you.", kind="not-found")


def require_college(principal: Principal, resource: str, verb: Verb) -> None:
    """Keeping the prospectus, runs, educators and learning records is the college's job."""
    require_scope(principal, resource, verb)
    if not rules.runs_the_college(principal):
        raise Problem(403, "Only the Recovery Education Centre (educators and admins) may do "
                      "this.", kind="forbidden")


async def _page(session: AsyncSession, statement: SelectOfScalar[T], model: type[T],
                cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """Keyset page over (created_at, id), oldest first."""
    # Every paged table has these two columns; T only knows it is a SQLModel.
    created, ident = getattr(model, "created_at"), getattr(model, "id")  # noqa: B009
    if cursor:
        moment, last_id = decode_time_cursor(cursor)
        statement = statement.where(tuple_(created, ident) > tuple_(moment, last_id))
    rows = (await session.exec(statement.order_by(created, ident).limit(limit + 1))).all()
    return keyset_page(rows, limit,
                       lambda r: (getattr(r, "created_at"), getattr(r, "id")))  # noqa: B009


# --- the prospectus -----------------------------------------------------------------------


async def list_courses(session: AsyncSession, principal: Principal, *, cursor: str | None,
                       limit: int) -> Page[CoursePublic]:
    """Every signed-in role reads the prospectus."""
    rows, next_cursor = await _page(session, select(Course), Course, cursor, limit)
    return Page(items=[CoursePublic.model_validate(r) for r in rows], next_cursor=next_cursor)


async def get_course(session: AsyncSession, course_id: str) -> Course:
    course = await session.get(Course, course_id) if len(course_id) <= 36 else None
    if course is None:
        raise not_found(COURSE)
    return course


def course_answer(course: Course) -> Answer:
    """What adding the course answers: the course, its ETag and address."""
    return Answer.of(CoursePublic.model_validate(course), version=course.version,
                     location=f"/v1/courses/{course.id}")


async def create_course(session: AsyncSession, principal: Principal, data: CourseCreate,
                        once: IdempotentRequest | None = None) -> Course:
    require_college(principal, COURSE, Verb.create)
    if data.foundation:
        raise Problem(409, "There is one foundation course on recovery principles already; "
                      "change that one.", kind="foundation-exists")
    course = Course(**data.model_dump(mode="json"), required_for_all_staff=False)
    await keep_answer(once, session, course_answer(course))
    session.add(course)
    await session.commit()
    return course


async def update_course(session: AsyncSession, principal: Principal, course_id: str,
                        if_match: str | None, change: CourseUpdate) -> Course:
    require_college(principal, COURSE, Verb.update)
    course = await get_course(session, course_id)
    require_if_match(if_match, course.version)
    for name, value in change.model_dump(mode="json", exclude_unset=True).items():
        if value is None:
            raise Problem(422, f"{name} cannot be emptied.", kind="invalid",
                          invalid_params=[InvalidParam(name=name, reason="null")])
        setattr(course, name, value)
    if course.foundation and "staff" not in course.audience:
        raise Problem(422, "The foundation course is for all staff.", kind="invalid",
                      invalid_params=[InvalidParam(name="audience", reason="staff")])
    course.version += 1
    course.updated_at = utcnow()
    await session.commit()
    return course


# --- runs ---------------------------------------------------------------------------------


async def _facilitators(session: AsyncSession, ids: Sequence[str]) -> list[rules.Facilitator]:
    found = (await session.exec(select(Educator).where(col(Educator.id).in_(list(ids))))).all()
    return [rules.Facilitator(e.id, e.lived_experience) for e in found]


async def _known_educators(session: AsyncSession, ids: Sequence[str],
                           field: str) -> list[rules.Facilitator]:
    facilitators = await _facilitators(session, ids)
    if set(ids) - {f.educator_id for f in facilitators}:
        raise Problem(422, "Some facilitators are not known educators.", kind="unknown-educator",
                      invalid_params=[InvalidParam(name=field, reason="unknown educator")])
    return facilitators


async def _run_public(session: AsyncSession, run: CourseRun) -> RunPublic:
    return _with_places(run, await _places_of_runs(session, [run.id]))


def run_answer(run: RunPublic) -> Answer:
    """What scheduling the run answers: the run and its address."""
    return Answer.of(run, location=f"/v1/runs/{run.id}")


async def create_run(session: AsyncSession, principal: Principal, course_id: str,
                     data: RunCreate, once: IdempotentRequest | None = None) -> RunPublic:
    """Schedule a run; refused unless it is co-delivered."""
    require_college(principal, COURSE, Verb.create)
    await get_course(session, course_id)
    facilitators = await _known_educators(session, data.facilitator_ids, "facilitator_ids")
    refusal = rules.co_delivery_refusal(facilitators)
    if refusal:
        raise refuse(refusal)
    run = CourseRun(course_id=course_id, **data.model_dump(
        exclude={"facilitator_ids"}), facilitator_ids=list(dict.fromkeys(data.facilitator_ids)))
    public = RunPublic.model_validate(run)  # a new run: no places taken, nobody waiting
    await keep_answer(once, session, run_answer(public))
    session.add(run)
    await session.commit()
    return public


async def list_runs(session: AsyncSession, course_id: str, *, cursor: str | None,
                    limit: int) -> Page[RunPublic]:
    await get_course(session, course_id)
    rows, next_cursor = await _page(
        session, select(CourseRun).where(col(CourseRun.course_id) == course_id), CourseRun,
        cursor, limit)
    places = await _places_of_runs(session, [r.id for r in rows])
    return Page(items=[_with_places(r, places) for r in rows], next_cursor=next_cursor)


async def batch_read_runs(session: AsyncSession, request: RunsBatchRead) -> RunsBatchReadResult:
    """The first runs of many courses at once, each course's as its own runs list pages them
    (oldest first, with the cursor to go on); courses that do not exist are left out."""
    course_ids = list(dict.fromkeys(request.course_ids))
    known = (await session.exec(select(col(Course.id)).where(
        col(Course.id).in_(course_ids)))).all()
    position = func.row_number().over(
        partition_by=col(CourseRun.course_id),
        order_by=(col(CourseRun.created_at), col(CourseRun.id))).label("position")
    ranked = select(CourseRun, position).where(col(CourseRun.course_id).in_(known)).subquery()
    numbered = aliased(CourseRun, ranked)
    rows = (await session.exec(
        select(numbered).where(ranked.c.position <= request.limit_per_course + 1)
        .order_by(ranked.c.course_id, ranked.c.position))).all()
    runs: dict[str, list[CourseRun]] = {course: [] for course in course_ids if course in known}
    for run in rows:
        runs[run.course_id].append(run)
    places = await _places_of_runs(session, [run.id for run in rows])
    results = []
    for course, fetched in runs.items():
        page, next_cursor = keyset_page(fetched, request.limit_per_course,
                                        lambda r: (r.created_at, r.id))
        results.append(CourseRuns(course_id=course, runs=[_with_places(r, places)
                                                          for r in page],
                                  truncated=next_cursor is not None, next_cursor=next_cursor))
    return RunsBatchReadResult(results=results)


async def _places_of_runs(session: AsyncSession, run_ids: list[str]
                          ) -> dict[tuple[str, str], int]:
    """Enrolments by (run, status) for many runs in one query."""
    if not run_ids:
        return {}
    counts = (await session.exec(
        select(Enrolment.run_id, Enrolment.status, func.count())
        .where(col(Enrolment.run_id).in_(run_ids))
        .group_by(col(Enrolment.run_id), col(Enrolment.status)))).all()
    return {(str(run), str(status)): int(n) for run, status, n in counts}


def _with_places(run: CourseRun, places: dict[tuple[str, str], int]) -> RunPublic:
    public = RunPublic.model_validate(run)
    public.places_taken = sum(places.get((run.id, s), 0) for s in HOLDS_PLACE)
    public.waiting = places.get((run.id, EnrolmentStatus.waiting.value), 0)
    return public


async def get_run(session: AsyncSession, run_id: str, *, lock: bool = False) -> CourseRun:
    """A run; with ``lock``, held for this transaction so its places are counted by one
    writer at a time."""
    if len(run_id) > 36:
        raise not_found("CourseRun")
    if lock:
        # A write that changes nothing: on PostgreSQL it locks the row, on SQLite it takes
        # the write lock, so the count of places that follows cannot be raced.
        await session.exec(update(CourseRun).where(col(CourseRun.id) == run_id)
                           .values(capacity=col(CourseRun.capacity)))
    run = (await session.exec(select(CourseRun).where(col(CourseRun.id) == run_id))).first()
    if run is None:
        raise not_found("CourseRun")
    return run


async def read_run(session: AsyncSession, run_id: str) -> RunPublic:
    return await _run_public(session, await get_run(session, run_id))


async def record_delivery(session: AsyncSession, principal: Principal, run_id: str,
                          data: RunDelivery) -> RunPublic:
    """Who really facilitated the run, as it happened; the quality figures judge it."""
    require_college(principal, COURSE, Verb.update)
    run = await get_run(session, run_id, lock=True)
    refusal = rules.delivery_refusal(starts_on=run.starts_on, today=utcnow().date(),
                                     delivered_by=run.delivered_by)
    if refusal:
        raise refuse(refusal)
    await _known_educators(session, data.delivered_by, "delivered_by")
    run.delivered_by = list(dict.fromkeys(data.delivered_by))
    run.version += 1
    await session.commit()
    return await _run_public(session, run)


# --- educators ----------------------------------------------------------------------------


def educator_answer(educator: Educator) -> Answer:
    """What adding the educator answers: the educator and their address."""
    return Answer.of(EducatorPublic.model_validate(educator),
                     location=f"/v1/educators/{educator.id}")


async def create_educator(session: AsyncSession, principal: Principal, data: EducatorCreate,
                          once: IdempotentRequest | None = None) -> Educator:
    require_college(principal, EDUCATOR, Verb.create)
    educator = Educator(**data.model_dump(mode="json"))
    await keep_answer(once, session, educator_answer(educator))
    session.add(educator)
    await session.commit()
    return educator


async def list_educators(session: AsyncSession, access: RecordAccess, *, cursor: str | None,
                         limit: int) -> Page[EducatorPublic]:
    require_college(access.principal, EDUCATOR, Verb.search)
    rows, next_cursor = await _page(session, select(Educator), Educator, cursor, limit)
    access.audit(record_type=EDUCATOR, record_id=None, service_user_id=None, action="search",
                 outcome=Outcome.allowed)
    return Page(items=[EducatorPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


async def get_educator(session: AsyncSession, access: RecordAccess, educator_id: str, *,
                       action: str = "read") -> Educator:
    """An educator's record: the college and the educator themselves; 404 to anyone else."""
    require_scope(access.principal, EDUCATOR, Verb.read)
    educator = await session.get(Educator, educator_id) if len(educator_id) <= 36 else None
    allowed = educator is not None and rules.may_see_educator(access.principal,
                                                              staff_id=educator.staff_id)
    access.audit(record_type=EDUCATOR, record_id=educator_id[:64], service_user_id=None,
                 action=action, outcome=Outcome.allowed if allowed else Outcome.denied)
    if educator is None or not allowed:
        raise not_found(EDUCATOR)
    return educator


async def add_educator_record(session: AsyncSession, access: RecordAccess, educator_id: str,
                              record: TrainingRecord | SupervisionRecord | SupportRecord
                              ) -> Educator:
    """The educator's own training, supervision or support, recorded by the college."""
    educator = await get_educator(session, access, educator_id, action="update")
    require_college(access.principal, EDUCATOR, Verb.update)
    entry = record.model_dump(mode="json")
    if isinstance(record, TrainingRecord):
        educator.own_training = [*educator.own_training, entry]
    elif isinstance(record, SupervisionRecord):
        educator.supervision = [*educator.supervision, entry]
    else:
        educator.support = [*educator.support, entry]
    await session.commit()
    return educator


# --- enrolment ----------------------------------------------------------------------------


def _audit_enrolment(access: RecordAccess, enrolment_id: str, enrolment: Enrolment | None,
                     action: str, allowed: bool) -> None:
    person = (enrolment.learner_id if enrolment is not None
              and enrolment.learner_kind == LearnerKind.service_user else None)
    access.audit(record_type=ENROLMENT, record_id=enrolment_id[:64], service_user_id=person,
                 action=action, outcome=Outcome.allowed if allowed else Outcome.denied)


async def get_enrolment(session: AsyncSession, access: RecordAccess, enrolment_id: str, *,
                        verb: Verb = Verb.read, action: str = "read") -> Enrolment:
    """An enrolment the caller may see (the learner, the college, the team's managers)."""
    require_scope(access.principal, ENROLMENT, verb)
    enrolment = await session.get(Enrolment, enrolment_id) if len(enrolment_id) <= 36 else None
    allowed = enrolment is not None and rules.may_see_enrolment(
        access.principal, learner_id=enrolment.learner_id, team_id=enrolment.team_id)
    _audit_enrolment(access, enrolment_id, enrolment, action, allowed)
    if enrolment is None or not allowed:
        raise not_found(ENROLMENT)
    return enrolment


def _publish(session: AsyncSession, event: TrainingEvent, enrolment: Enrolment,
             course: Course) -> None:
    record_event(session, event, enrolment.id,
                 enrolment_event_data(enrolment, foundation=course.foundation))


async def _places_taken(session: AsyncSession, run_id: str) -> int:
    return (await session.exec(select(func.count()).select_from(Enrolment).where(
        col(Enrolment.run_id) == run_id, col(Enrolment.status).in_(HOLDS_PLACE)))).one()


def enrolment_answer(enrolment: Enrolment) -> Answer:
    """What enrolling answers: the enrolment and its address."""
    return Answer.of(EnrolmentPublic.model_validate(enrolment),
                     location=f"/v1/enrolments/{enrolment.id}")


async def enrol(session: AsyncSession, access: RecordAccess, run_id: str,
                data: EnrolmentCreate, once: IdempotentRequest | None = None) -> Enrolment:
    """A place on a run, or a place on its waiting list when it is full."""
    principal = access.principal
    require_scope(principal, ENROLMENT, Verb.create)
    run = await get_run(session, run_id, lock=True)  # serialises the places of one run
    course = await get_course(session, run.course_id)
    learner_id = data.learner_id or rules.learner_identity(principal)
    if learner_id is None:
        raise Problem(422, "Name the learner.", kind="invalid",
                      invalid_params=[InvalidParam(name="learner_id", reason="missing")])
    if not rules.may_enrol(principal, learner_id=learner_id):
        raise Problem(403, "You may enrol yourself; the college enrols others.",
                      kind="forbidden")
    kind = LearnerKind.service_user if principal.is_service_user else data.learner_kind
    if kind.value not in course.audience:
        raise Problem(422, f"This course is not offered to {kind.value.replace('_', ' ')}s.",
                      kind="not-in-audience",
                      invalid_params=[InvalidParam(name="learner_kind", reason="audience")])
    existing = (await session.exec(select(Enrolment).where(
        col(Enrolment.learner_id) == learner_id, col(Enrolment.course_id) == course.id,
        col(Enrolment.status).in_((*OPEN, EnrolmentStatus.completed.value))))).first()
    if existing is not None and (existing.run_id is not None
                                 or existing.status == EnrolmentStatus.completed):
        raise Problem(409, "This learner is enrolled on the course already.",
                      kind="already-enrolled")
    status = rules.place_or_wait(await _places_taken(session, run.id), run.capacity)
    if existing is not None:
        # Staff enrolled automatically in the foundation course take a place on a run.
        existing.run_id, existing.status = run.id, status
        existing.version += 1
        existing.updated_at = utcnow()
        enrolment = existing
    else:
        member = (await session.get(StaffMember, learner_id)
                  if kind == LearnerKind.staff else None)
        team_id = member.team_id if member is not None else data.team_id
        enrolment = Enrolment(course_id=course.id, run_id=run.id, learner_kind=kind.value,
                              learner_id=learner_id, team_id=team_id, status=status)
        session.add(enrolment)
        _publish(session, TrainingEvent.enrolment_created, enrolment, course)
    await keep_answer(once, session, enrolment_answer(enrolment))
    await session.commit()
    _audit_enrolment(access, enrolment.id, enrolment, "create", True)
    return enrolment


async def list_enrolments(session: AsyncSession, access: RecordAccess, *,
                          learner_id: str | None, run_id: str | None, course_id: str | None,
                          team_id: str | None, status: EnrolmentStatus | None,
                          cursor: str | None, limit: int) -> Page[EnrolmentPublic]:
    """Enrolments the caller may see, oldest first (a team's: of its present members)."""
    principal = access.principal
    require_scope(principal, ENROLMENT, Verb.search)
    statement = select(Enrolment)
    if not (rules.runs_the_college(principal) or principal.is_system):
        visible: list[ColumnElement[bool]] = []
        me = rules.learner_identity(principal)
        if me is not None:
            visible.append(col(Enrolment.learner_id) == me)
        if Role.manager in principal.roles and principal.teams:
            visible.append(col(Enrolment.team_id).in_(sorted(principal.teams)))
        statement = statement.where(or_(*visible) if visible else false())
    for column, value in ((Enrolment.learner_id, learner_id), (Enrolment.run_id, run_id),
                          (Enrolment.course_id, course_id), (Enrolment.team_id, team_id),
                          (Enrolment.status, status)):
        if value is not None:
            statement = statement.where(col(column) == value)
    rows, next_cursor = await _page(session, statement, Enrolment, cursor, limit)
    access.audit(record_type=ENROLMENT, record_id=None, service_user_id=None, action="search",
                 outcome=Outcome.allowed)
    return Page(items=[EnrolmentPublic.model_validate(r) for r in rows],
                next_cursor=next_cursor)


async def record_attendance(session: AsyncSession, access: RecordAccess, enrolment_id: str,
                            data: AttendanceRecord) -> Enrolment:
    enrolment = await get_enrolment(session, access, enrolment_id, verb=Verb.update,
                                    action="update")
    require_college(access.principal, ENROLMENT, Verb.update)
    if enrolment.status != EnrolmentStatus.enrolled or enrolment.run_id is None:
        raise Problem(409, "Attendance is recorded for learners with a place on a run.",
                      kind="no-place")
    enrolment.attended = data.attended
    enrolment.version += 1
    enrolment.updated_at = utcnow()
    await session.commit()
    return enrolment


async def complete(session: AsyncSession, access: RecordAccess, enrolment_id: str,
                   data: Completion) -> Enrolment:
    enrolment = await get_enrolment(session, access, enrolment_id, verb=Verb.update,
                                    action="update")
    require_college(access.principal, ENROLMENT, Verb.update)
    run = await session.get(CourseRun, enrolment.run_id) if enrolment.run_id else None
    refusal = rules.completion_refusal(
        status=enrolment.status, run_id=enrolment.run_id, attended=enrolment.attended,
        completed_on=data.completed_on, run_starts_on=run.starts_on if run else None)
    if refusal:
        raise refuse(refusal)
    enrolment.status = EnrolmentStatus.completed
    enrolment.completed_on = data.completed_on
    enrolment.version += 1
    enrolment.updated_at = utcnow()
    _publish(session, TrainingEvent.course_completed, enrolment,
             await get_course(session, enrolment.course_id))
    await session.commit()
    return enrolment


async def _withdraw(session: AsyncSession, enrolment: Enrolment, course: Course) -> None:
    """Withdraw, and give a freed place to the longest waiting (in the same transaction)."""
    held_place = enrolment.status == EnrolmentStatus.enrolled and enrolment.run_id is not None
    enrolment.status = EnrolmentStatus.withdrawn
    enrolment.version += 1
    enrolment.updated_at = utcnow()
    _publish(session, TrainingEvent.enrolment_withdrawn, enrolment, course)
    if held_place and enrolment.run_id is not None:
        run = await get_run(session, enrolment.run_id, lock=True)
        await session.flush()
        waiting = (await session.exec(select(Enrolment).where(
            col(Enrolment.run_id) == run.id, col(Enrolment.status) == EnrolmentStatus.waiting)
            .order_by(col(Enrolment.created_at), col(Enrolment.id)))).all()
        taken = await _places_taken(session, run.id)
        for promoted in waiting[:rules.places_to_promote(taken, run.capacity, len(waiting))]:
            promoted.status = EnrolmentStatus.enrolled
            promoted.version += 1
            promoted.updated_at = utcnow()


async def withdraw(session: AsyncSession, access: RecordAccess,
                   enrolment_id: str) -> Enrolment:
    enrolment = await get_enrolment(session, access, enrolment_id, verb=Verb.update,
                                    action="update")
    if not rules.may_enrol(access.principal, learner_id=enrolment.learner_id):
        raise Problem(403, "The learner or the college may withdraw an enrolment.",
                      kind="forbidden")
    if enrolment.status not in OPEN:
        raise Problem(409, f"This enrolment is {enrolment.status} already.", kind="closed")
    await _withdraw(session, enrolment, await get_course(session, enrolment.course_id))
    await session.commit()
    return enrolment


async def record_feedback(session: AsyncSession, access: RecordAccess, enrolment_id: str,
                          data: FeedbackCreate) -> Enrolment:
    """The learner's rating and words; only the rating leaves the service in events."""
    enrolment = await get_enrolment(session, access, enrolment_id, verb=Verb.update,
                                    action="update")
    if rules.learner_identity(access.principal) != enrolment.learner_id:
        raise Problem(403, "Feedback is the learner's own.", kind="forbidden")
    if enrolment.status != EnrolmentStatus.completed:
        raise Problem(409, "Feedback follows completion of the course.", kind="not-completed")
    if enrolment.rating is not None:
        raise Problem(409, "Feedback was given already.", kind="feedback-given")
    enrolment.rating, enrolment.feedback_words = data.rating, data.words
    enrolment.version += 1
    enrolment.updated_at = utcnow()
    _publish(session, TrainingEvent.feedback_recorded, enrolment,
             await get_course(session, enrolment.course_id))
    await session.commit()
    return enrolment


# --- the staff roster, kept from workforce events -----------------------------------------


async def apply_staff_event(session: AsyncSession, event: CloudEvent) -> None:
    """staff joined, moved or left: only a newer version of the staff record changes
    anything; staff in post are enrolled in the foundation course once."""
    data = event.data
    staff_id, version = str(data["staff_id"]), int(data["version"])
    change = event.type.rsplit(".", 1)[-1]
    member = (await session.exec(select(StaffMember).where(
        col(StaffMember.staff_id) == staff_id).with_for_update())).first()
    if member is not None and not rules.is_newer(version, member.version):
        return
    if member is None:
        member = StaffMember(staff_id=staff_id)
        session.add(member)
    effective = _date(data.get("effective_date"))
    member.version = version
    member.updated_at = utcnow()
    for name in ("profession", "grade", "role_type"):
        if data.get(name) is not None:
            setattr(member, name, str(data[name]))
    if data.get("team_id") is not None:
        member.team_id = str(data["team_id"])
    if change == rules.StaffChange.left:
        member.active, member.left_on = False, effective
    else:
        member.active, member.left_on = True, None
        if change == rules.StaffChange.joined or member.joined_on is None:
            member.joined_on = effective
    enrolments = (await session.exec(select(Enrolment).where(
        col(Enrolment.learner_id) == staff_id,
        col(Enrolment.learner_kind) == LearnerKind.staff.value))).all()
    for enrolment in enrolments:
        if enrolment.status != EnrolmentStatus.withdrawn and enrolment.team_id != member.team_id:
            enrolment.team_id = member.team_id
            enrolment.updated_at = utcnow()
    if not member.active:
        for enrolment in enrolments:
            if enrolment.status in OPEN:
                await _withdraw(session, enrolment,
                                await get_course(session, enrolment.course_id))
        return
    foundation = await session.get(Course, FOUNDATION_COURSE_ID)
    if foundation is None:
        return
    already = any(e.course_id == foundation.id and e.status != EnrolmentStatus.withdrawn
                  for e in enrolments)
    if rules.needs_foundation_enrolment(active=member.active, already_enrolled=already):
        enrolment = Enrolment(course_id=foundation.id, learner_kind=LearnerKind.staff.value,
                              learner_id=staff_id, team_id=member.team_id,
                              status=EnrolmentStatus.enrolled, automatic=True)
        session.add(enrolment)
        _publish(session, TrainingEvent.enrolment_created, enrolment, foundation)


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


async def get_staff(session: AsyncSession, access: RecordAccess, staff_id: str) -> StaffPublic:
    require_scope(access.principal, STAFF, Verb.read)
    member = await session.get(StaffMember, staff_id) if len(staff_id) <= 64 else None
    allowed = member is not None and rules.may_see_enrolment(
        access.principal, learner_id=member.staff_id, team_id=member.team_id)
    access.audit(record_type=STAFF, record_id=staff_id[:64], service_user_id=None,
                 action="read", outcome=Outcome.allowed if allowed else Outcome.denied)
    if member is None or not allowed:
        raise not_found(STAFF)
    return StaffPublic.model_validate(member)


# --- figures ------------------------------------------------------------------------------


async def foundation_coverage(session: AsyncSession, access: RecordAccess,
                              team_id: str | None) -> FoundationCoverage:
    """Who of the staff in post has completed the foundation course, by team, profession
    and grade (one team, or the organisation)."""
    access.check_aggregates(record_type="FoundationCoverage", team_id=team_id)
    # One grouped query: the figures cost the same for a team of 10 or of 200.
    completed = select(col(Enrolment.learner_id).label("learner_id")).join(
        Course, and_(col(Course.id) == col(Enrolment.course_id), col(Course.foundation))
    ).where(col(Enrolment.status) == EnrolmentStatus.completed,
            col(Enrolment.learner_kind) == LearnerKind.staff.value).distinct().subquery()
    grouping = (col(StaffMember.team_id), col(StaffMember.profession), col(StaffMember.grade))
    # sqlmodel's select has typed overloads up to four columns; this one has five.
    query = (select(*grouping, func.count(),  # type: ignore[call-overload]
                    func.count(completed.c.learner_id))
             .outerjoin(completed, completed.c.learner_id == col(StaffMember.staff_id))
             .where(col(StaffMember.active)).group_by(*grouping))
    if team_id is not None:
        query = query.where(col(StaffMember.team_id) == team_id)
    cohorts = [rules.Cohort(team, profession, grade, staff, done)
               for team, profession, grade, staff, done in (await session.exec(query)).all()]

    def groups(key: str) -> list[CoverageGroup]:
        return [CoverageGroup(key=group, staff=staff, completed=done,
                              coverage=rules.share(done, staff))
                for group, staff, done in rules.coverage(cohorts, key)]

    staff, done = sum(c.staff for c in cohorts), sum(c.completed for c in cohorts)
    return FoundationCoverage(team_id=team_id, staff=staff, completed=done,
                              coverage=rules.share(done, staff),
                              by_team=groups("team_id"), by_profession=groups("profession"),
                              by_grade=groups("grade"))


async def training_quality(session: AsyncSession, access: RecordAccess) -> TrainingQuality:
    """Per course: learners' ratings, and whether runs were really co-delivered as they
    were scheduled to be (co-delivery kept)."""
    access.check_aggregates(record_type="TrainingQuality", team_id=None)
    courses = (await session.exec(select(Course).order_by(col(Course.title)))).all()
    ratings = {course_id: (count, mean) for course_id, count, mean in (await session.exec(
        select(Enrolment.course_id, func.count(col(Enrolment.rating)),
               func.avg(col(Enrolment.rating))).where(col(Enrolment.rating).is_not(None))
        .group_by(col(Enrolment.course_id)))).all()}
    educators = {e.id: rules.Facilitator(e.id, e.lived_experience)
                 for e in (await session.exec(select(Educator))).all()}

    def co_delivered(ids: Sequence[str]) -> bool:
        return rules.is_co_delivered([educators[i] for i in ids if i in educators])

    planned: dict[str, list[bool]] = {}
    delivered: dict[str, list[bool]] = {}
    for run in (await session.exec(select(CourseRun))).all():
        planned.setdefault(run.course_id, []).append(co_delivered(run.facilitator_ids))
        if run.delivered_by is not None:
            delivered.setdefault(run.course_id, []).append(co_delivered(run.delivered_by))
    result = []
    for course in courses:
        count, mean = ratings.get(course.id, (0, None))
        scheduled, kept = planned.get(course.id, []), delivered.get(course.id, [])
        result.append(CourseQuality(
            course_id=course.id, title=course.title, feedback_count=count,
            mean_rating=round(float(mean), 2) if mean is not None else None,
            runs=len(scheduled), runs_co_delivered=sum(scheduled), runs_delivered=len(kept),
            runs_delivered_co_delivered=sum(kept),
            co_delivery_kept=rules.share(sum(kept), len(kept)) if kept else None))
    return TrainingQuality(courses=result)
