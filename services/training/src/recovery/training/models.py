"""The Recovery Education Centre's records: courses, runs, educators, enrolments and the staff
roster kept from workforce events; the tables and the API shapes around them."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import JSON, Boolean, Column, Date, Index, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from recovery.common.db import UTCDateTime
from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow

ID_PATTERN = r"^[A-Za-z0-9._:@|-]+$"
#: The foundation course on recovery principles, created by the first migration.
FOUNDATION_COURSE_ID = "00000000-0000-4000-8000-000000000001"

PersonId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Outcome = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class Audience(StrEnum):
    staff = "staff"
    service_user = "service_user"
    carer = "carer"


class LearnerKind(StrEnum):
    staff = "staff"
    service_user = "service_user"
    carer = "carer"


class EducatorKind(StrEnum):
    """Service-user and peer educators bring lived experience; the others their profession."""

    service_user_educator = "service_user_educator"
    peer_educator = "peer_educator"
    carer_educator = "carer_educator"
    professional = "professional"


class EnrolmentStatus(StrEnum):
    enrolled = "enrolled"  # has a place (on a run, or awaiting one)
    waiting = "waiting"  # on the run's waiting list
    completed = "completed"
    withdrawn = "withdrawn"


# --- tables -------------------------------------------------------------------------------


def _now_column() -> Any:
    return SQLField(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Course(SQLModel, table=True):
    """One course of the prospectus."""

    __tablename__ = "course"
    __table_args__ = (Index("ix_course_created", "created_at", "id"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    title: str = SQLField(sa_column=Column(String(200), nullable=False))
    summary: str = SQLField(default="", sa_column=Column(Text, nullable=False))
    learning_outcomes: list[str] = SQLField(default_factory=list,
                                            sa_column=Column(JSON, nullable=False))
    audience: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    co_produced_with: list[str] = SQLField(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    foundation: bool = SQLField(default=False, sa_column=Column(Boolean, nullable=False))
    required_for_all_staff: bool = SQLField(default=False,
                                            sa_column=Column(Boolean, nullable=False))
    created_at: datetime = _now_column()
    updated_at: datetime = _now_column()
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))


class Educator(SQLModel, table=True):
    """An educator, with their own training, supervision and support."""

    __tablename__ = "educator"
    __table_args__ = (Index("ix_educator_created", "created_at", "id"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    display_name: str = SQLField(sa_column=Column(String(200), nullable=False))
    kind: str = SQLField(sa_column=Column(String(30), nullable=False))
    lived_experience: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    staff_id: str | None = SQLField(default=None, sa_column=Column(String(64)))
    own_training: list[dict[str, Any]] = SQLField(default_factory=list,
                                                  sa_column=Column(JSON, nullable=False))
    supervision: list[dict[str, Any]] = SQLField(default_factory=list,
                                                 sa_column=Column(JSON, nullable=False))
    support: list[dict[str, Any]] = SQLField(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    created_at: datetime = _now_column()


class CourseRun(SQLModel, table=True):
    """One run of a course: when, where, how many places, who facilitates."""

    __tablename__ = "course_run"
    __table_args__ = (Index("ix_course_run_course", "course_id", "starts_on", "id"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    course_id: str = SQLField(sa_column=Column(String(36), nullable=False))
    starts_on: date = SQLField(sa_column=Column(Date, nullable=False))
    ends_on: date = SQLField(sa_column=Column(Date, nullable=False))
    place: str | None = SQLField(default=None, sa_column=Column(String(200)))
    online: bool = SQLField(default=False, sa_column=Column(Boolean, nullable=False))
    capacity: int = SQLField(sa_column=Column(Integer, nullable=False))
    facilitator_ids: list[str] = SQLField(default_factory=list,
                                          sa_column=Column(JSON, nullable=False))
    # Who really facilitated, recorded once the run has taken place: co-delivery is kept
    # only if they, too, include an educator with lived experience and another.
    delivered_by: list[str] | None = SQLField(default=None, sa_column=Column(JSON))
    created_at: datetime = _now_column()
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))


class Enrolment(SQLModel, table=True):
    """A learner on a course (and, once placed, a run), through to completion and feedback."""

    __tablename__ = "enrolment"
    __table_args__ = (
        Index("ix_enrolment_learner", "learner_id", "course_id"),
        Index("ix_enrolment_run", "run_id", "status", "created_at"),
        Index("ix_enrolment_created", "created_at", "id"),
    )

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    course_id: str = SQLField(sa_column=Column(String(36), nullable=False))
    run_id: str | None = SQLField(default=None, sa_column=Column(String(36)))
    learner_kind: str = SQLField(sa_column=Column(String(20), nullable=False))
    learner_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    team_id: str | None = SQLField(default=None, sa_column=Column(String(64)))
    status: str = SQLField(sa_column=Column(String(20), nullable=False))
    automatic: bool = SQLField(default=False, sa_column=Column(Boolean, nullable=False))
    attended: bool | None = SQLField(default=None, sa_column=Column(Boolean))
    completed_on: date | None = SQLField(default=None, sa_column=Column(Date))
    rating: int | None = SQLField(default=None, sa_column=Column(Integer))
    feedback_words: str | None = SQLField(default=None, sa_column=Column(Text))
    created_at: datetime = _now_column()
    updated_at: datetime = _now_column()
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))


class StaffMember(SQLModel, table=True):
    """The staff roster as workforce's events describe it; ``version`` is workforce's."""

    __tablename__ = "staff_member"
    __table_args__ = (Index("ix_staff_member_team", "team_id", "active"),)

    staff_id: str = SQLField(sa_column=Column(String(64), primary_key=True))
    team_id: str | None = SQLField(default=None, sa_column=Column(String(64)))
    profession: str | None = SQLField(default=None, sa_column=Column(String(64)))
    grade: str | None = SQLField(default=None, sa_column=Column(String(64)))
    role_type: str | None = SQLField(default=None, sa_column=Column(String(64)))
    active: bool = SQLField(default=True, sa_column=Column(Boolean, nullable=False))
    joined_on: date | None = SQLField(default=None, sa_column=Column(Date))
    left_on: date | None = SQLField(default=None, sa_column=Column(Date))
    version: int = SQLField(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = _now_column()


# --- API shapes ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CourseCreate(_Strict):
    title: Title
    summary: str = Field("", max_length=4000)
    learning_outcomes: list[Outcome] = Field(min_length=1, max_length=30)
    audience: list[Audience] = Field(min_length=1, max_length=3)
    co_produced_with: list[Title] = Field(
        min_length=1, max_length=30,
        description="Who co-produced the course (people with lived experience among them)")
    foundation: bool = Field(False, description="The foundation course on recovery principles")


class CourseUpdate(_Strict):
    title: Title | None = None
    summary: str | None = Field(None, max_length=4000)
    learning_outcomes: list[Outcome] | None = Field(None, min_length=1, max_length=30)
    audience: list[Audience] | None = Field(None, min_length=1, max_length=3)
    co_produced_with: list[Title] | None = Field(None, min_length=1, max_length=30)


class CoursePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    summary: str
    learning_outcomes: list[str]
    audience: list[str]
    co_produced_with: list[str]
    foundation: bool
    required_for_all_staff: bool
    version: int


FacilitatorIds = list[Annotated[str, StringConstraints(min_length=1, max_length=36)]]


class RunCreate(_Strict):
    starts_on: date
    ends_on: date
    place: str | None = Field(None, min_length=1, max_length=200)
    online: bool = False
    capacity: int = Field(ge=1, le=500)
    facilitator_ids: FacilitatorIds = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _where_and_when(self) -> "RunCreate":
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        if not self.online and self.place is None:
            raise ValueError("a run is online or has a place")
        return self


class RunDelivery(_Strict):
    """Who really facilitated the run, once it has taken place."""

    delivered_by: FacilitatorIds = Field(min_length=1, max_length=10,
                                         description="Educator ids of those who facilitated")


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    course_id: str
    starts_on: date
    ends_on: date
    place: str | None
    online: bool
    capacity: int
    facilitator_ids: list[str]
    delivered_by: list[str] | None = Field(
        None, description="Who really facilitated, once recorded (None until then)")
    places_taken: int = 0
    waiting: int = 0
    version: int


class RunsBatchRead(_Strict):
    """Runs of many courses in one call (the gateway's DataLoader under the prospectus)."""

    course_ids: list[PersonId] = Field(min_length=1, max_length=100)
    limit_per_course: int = Field(default=50, ge=1, le=200)


class CourseRuns(BaseModel):
    course_id: str
    runs: list[RunPublic] = Field(description="The course's first runs, oldest first")
    truncated: bool = Field(description="More runs exist than limit_per_course")
    next_cursor: str | None = Field(
        description="Where the course's runs list (GET /v1/courses/{id}/runs) goes on")


class RunsBatchReadResult(BaseModel):
    results: list[CourseRuns] = Field(description="One per course asked for that exists")


class TrainingRecord(_Strict):
    title: Title
    completed_on: date


class SupervisionRecord(_Strict):
    held_on: date
    supervisor: Title
    recovery_focused: bool = True


class SupportRecord(_Strict):
    provided_on: date
    kind: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="e.g. peer support group, debrief, reasonable adjustment")


class EducatorCreate(_Strict):
    display_name: Title
    kind: EducatorKind
    lived_experience: bool = Field(description="Teaches from their own lived experience")
    staff_id: PersonId | None = None


class EducatorPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    display_name: str
    kind: str
    lived_experience: bool
    staff_id: str | None
    own_training: list[dict[str, Any]]
    supervision: list[dict[str, Any]]
    support: list[dict[str, Any]]


class EnrolmentCreate(_Strict):
    learner_kind: LearnerKind = LearnerKind.staff
    learner_id: PersonId | None = Field(None, description="Yourself when left out")
    team_id: PersonId | None = None


class AttendanceRecord(_Strict):
    attended: bool


class Completion(_Strict):
    completed_on: date


class FeedbackCreate(_Strict):
    rating: int = Field(ge=1, le=5)
    words: str | None = Field(None, max_length=4000)


class EnrolmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    course_id: str
    run_id: str | None
    learner_kind: str
    learner_id: str
    team_id: str | None
    status: str
    automatic: bool
    attended: bool | None
    completed_on: date | None
    rating: int | None
    feedback_words: str | None
    version: int


class StaffPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    staff_id: str
    team_id: str | None
    profession: str | None
    grade: str | None
    role_type: str | None
    active: bool
    joined_on: date | None
    left_on: date | None


class CoverageGroup(BaseModel):
    key: str
    staff: int
    completed: int
    coverage: float


class FoundationCoverage(BaseModel):
    team_id: str | None
    staff: int
    completed: int
    coverage: float
    by_team: list[CoverageGroup]
    by_profession: list[CoverageGroup]
    by_grade: list[CoverageGroup]


class CourseQuality(BaseModel):
    course_id: str
    title: str
    feedback_count: int
    mean_rating: float | None
    runs: int
    runs_co_delivered: int = Field(description="Runs scheduled co-delivered (all of them)")
    runs_delivered: int = Field(description="Runs whose delivery has been recorded")
    runs_delivered_co_delivered: int = Field(
        description="Of those, runs really facilitated by an educator with lived experience "
                    "and another")
    co_delivery_kept: float | None = Field(
        description="runs_delivered_co_delivered / runs_delivered; None before any delivery")


class TrainingQuality(BaseModel):
    courses: list[CourseQuality]
