"""Teams, staff, care delivered, management records and training facts: tables and API shapes."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Index, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from recovery.common.db import UTCDateTime
from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow


class Profession(StrEnum):
    nursing = "nursing"
    psychiatry = "psychiatry"
    psychology = "psychology"
    occupational_therapy = "occupational_therapy"
    social_work = "social_work"
    peer_support = "peer_support"
    support_work = "support_work"
    education = "education"
    management = "management"
    administration = "administration"
    other = "other"


class RoleType(StrEnum):
    professional = "professional"
    peer_specialist = "peer_specialist"
    educator = "educator"
    manager = "manager"


class ContactMode(StrEnum):
    individual = "individual"
    group = "group"


class PanelMemberKind(StrEnum):
    staff = "staff"
    service_user = "service_user"
    peer_specialist = "peer_specialist"
    carer = "carer"


ID_PATTERN = r"^[A-Za-z0-9._:@|-]+$"


def id_field(default: Any = ..., **extra: Any) -> Any:
    """An opaque id: a team id as tokens carry it, a staff id, an EHR patient id."""
    return Field(default, min_length=1, max_length=64, pattern=ID_PATTERN, **extra)


def _id_column(primary_key: bool = False, nullable: bool = False) -> Any:
    return Column(String(64), primary_key=primary_key, nullable=nullable)


def _time_column() -> Any:
    return Column(UTCDateTime(), nullable=False)


# --- tables -------------------------------------------------------------------------------


class Team(SQLModel, table=True):
    __tablename__ = "team"

    id: str = SQLField(sa_column=_id_column(primary_key=True))
    name: str = SQLField(sa_column=Column(String(200), nullable=False))
    recovery_lead_staff_id: str | None = SQLField(default=None, sa_column=Column(String(64)))
    created_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())
    updated_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))


class Staff(SQLModel, table=True):
    """A member of staff in post (``end_date`` empty or ahead) or who has left."""

    __tablename__ = "staff"
    __table_args__ = (Index("ix_staff_team", "team_id", "id"),)

    id: str = SQLField(sa_column=_id_column(primary_key=True))
    team_id: str = SQLField(sa_column=_id_column())
    display_name: str = SQLField(sa_column=Column(String(200), nullable=False))
    profession: str = SQLField(sa_column=Column(String(40), nullable=False))
    grade: str = SQLField(sa_column=Column(String(40), nullable=False))
    role_type: str = SQLField(sa_column=Column(String(20), nullable=False))
    fte: float = SQLField(sa_column=Column(Float, nullable=False))
    start_date: date
    end_date: date | None = None
    created_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())
    updated_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))


class LivedExperience(SQLModel, table=True):
    """A voluntary, private declaration: read only by the person and admins, never counted."""

    __tablename__ = "lived_experience"

    staff_id: str = SQLField(sa_column=_id_column(primary_key=True))
    declared: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    declared_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())


class CareContact(SQLModel, table=True):
    """Care delivered: minutes with a service user, individually or in a group, by whom."""

    __tablename__ = "care_contact"
    # The billing export's index only: nothing reads contacts by member of staff, and each
    # index is one more B-tree every contact logged writes (migration 0003).
    __table_args__ = (Index("ix_care_contact_billing", "team_id", "by_peer", "occurred_on"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    team_id: str = SQLField(sa_column=_id_column())
    staff_id: str = SQLField(sa_column=_id_column())
    service_user_id: str = SQLField(sa_column=_id_column())
    occurred_on: date
    minutes: int = SQLField(sa_column=Column(Integer, nullable=False))
    mode: str = SQLField(sa_column=Column(String(20), nullable=False))
    # Whether a peer specialist delivered it, as they were when they did.
    by_peer: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())


class CareMinutes(SQLModel, table=True):
    """Minutes of care per team, month and peer or not, kept with every contact: peer share
    and its trend read a few rows, not every contact."""

    __tablename__ = "care_minutes"

    team_id: str = SQLField(sa_column=_id_column(primary_key=True))
    month: str = SQLField(sa_column=Column(String(7), primary_key=True))
    by_peer: bool = SQLField(sa_column=Column(Boolean, primary_key=True))
    minutes: int = SQLField(sa_column=Column(BigInteger, nullable=False))
    contacts: int = SQLField(sa_column=Column(Integer, nullable=False))


class SupervisionSession(SQLModel, table=True):
    __tablename__ = "supervision_session"
    __table_args__ = (Index("ix_supervision_team", "team_id", "held_on"),
                      Index("ix_supervision_staff", "staff_id", "held_on", "id"))

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    staff_id: str = SQLField(sa_column=_id_column())
    team_id: str = SQLField(sa_column=_id_column())
    supervisor_id: str = SQLField(sa_column=_id_column())
    held_on: date
    recovery_focused: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    peer_supervision: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    quality: int = SQLField(sa_column=Column(Integer, nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())


class Appraisal(SQLModel, table=True):
    __tablename__ = "appraisal"
    # By team for readiness's culture factor (without it, every appraisal was read).
    __table_args__ = (Index("ix_appraisal_staff", "staff_id", "held_on", "id"),
                      Index("ix_appraisal_team", "team_id", "held_on"))

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    staff_id: str = SQLField(sa_column=_id_column())
    team_id: str = SQLField(sa_column=_id_column())
    held_on: date
    service_user_feedback_included: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    recovery_objectives_set: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())


class RecruitmentPanel(SQLModel, table=True):
    __tablename__ = "recruitment_panel"
    __table_args__ = (Index("ix_panel_team", "team_id", "held_on", "id"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    team_id: str = SQLField(sa_column=_id_column())
    role_type: str = SQLField(sa_column=Column(String(20), nullable=False))
    held_on: date
    members: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    lived_experience_members: int = SQLField(sa_column=Column(Integer, nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())


class ClimateResponse(SQLModel, table=True):
    """One anonymous answer to the team climate survey: who answered is not kept."""

    __tablename__ = "climate_response"
    __table_args__ = (Index("ix_climate_team", "team_id", "responded_on"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    team_id: str = SQLField(sa_column=_id_column())
    responded_on: date
    answers: list[int] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    score: float = SQLField(sa_column=Column(Float, nullable=False))


class TrainingRecord(SQLModel, table=True):
    """What training's events said about one enrolment; each fact keeps the version it came
    with, so a late or repeated event never undoes a newer one."""

    __tablename__ = "training_record"
    __table_args__ = (Index("ix_training_staff", "staff_id"),)

    enrolment_id: str = SQLField(sa_column=_id_column(primary_key=True))
    staff_id: str = SQLField(sa_column=_id_column())
    course_id: str = SQLField(sa_column=_id_column())
    foundation: bool = SQLField(sa_column=Column(Boolean, nullable=False))
    completed_on: date | None = None
    completed_version: int = SQLField(default=0, sa_column=Column(Integer, nullable=False))
    rating: float | None = SQLField(default=None, sa_column=Column(Float))
    rating_version: int = SQLField(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = SQLField(default_factory=utcnow, sa_column=_time_column())


# --- API shapes ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeamCreate(_Strict):
    id: str = id_field(description="The team id, as staff tokens carry it in `teams`")
    name: str = Field(min_length=1, max_length=200)


class TeamPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    recovery_lead_staff_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class RecoveryLeadAssign(_Strict):
    staff_id: str = id_field(description="A member of staff in post in the team")


class StaffCreate(_Strict):
    id: str | None = id_field(None, description="The person's id at the identity provider "
                                                "(their token's `sub`); generated if left out")
    team_id: str = id_field()
    display_name: str = Field(min_length=1, max_length=200)
    profession: Profession
    grade: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9 ._-]+$",
                       description="Grade or level, e.g. band-6")
    role_type: RoleType
    fte: float = Field(gt=0, le=1, description="Full-time equivalent, above 0 up to 1")
    start_date: date


class StaffUpdate(_Strict):
    """A change of name or hours; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    fte: float | None = Field(default=None, gt=0, le=1)

    @field_validator("display_name", "fte")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it as it is")
        return value


class StaffMove(_Strict):
    team_id: str = id_field(description="The team the person moves to")
    effective_date: date


class StaffLeave(_Strict):
    end_date: date = Field(description="The last day in post")


class StaffPublic(BaseModel):
    """A member of staff as colleagues see them: never a lived-experience declaration."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    team_id: str
    display_name: str
    profession: Profession
    grade: str
    role_type: RoleType
    fte: float
    start_date: date
    end_date: date | None
    in_post: bool
    version: int


class LivedExperienceDeclaration(_Strict):
    declared: bool = Field(description="Whether the person chooses to declare lived "
                                       "experience of mental health difficulties")


class LivedExperiencePublic(BaseModel):
    staff_id: str
    declared: bool | None = Field(description="None: the person has made no declaration")
    declared_at: datetime | None


class CareContactCreate(_Strict):
    staff_id: str = id_field(description="Who delivered the care")
    service_user_id: str = id_field(description="The EHR's patient id")
    occurred_on: date
    minutes: int = Field(ge=1, le=720)
    mode: ContactMode = ContactMode.individual


class CareContactPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    team_id: str
    staff_id: str
    service_user_id: str
    occurred_on: date
    minutes: int
    mode: ContactMode
    by_peer: bool
    recorded_by: str
    recorded_at: datetime


class MonthShare(BaseModel):
    month: str = Field(description="YYYY-MM")
    peer_minutes: int
    total_minutes: int
    share: float | None


class PeerShare(BaseModel):
    """Share of care minutes delivered by peer specialists, against the target."""

    team_id: str | None = Field(description="None for the whole organisation")
    months: int
    first_month: str
    last_month: str
    target: float
    peer_minutes: int
    total_minutes: int
    share: float | None
    meets_target: bool | None
    trend: list[MonthShare]


class SkillMix(BaseModel):
    team_id: str
    as_of: date
    staff_in_post: int
    fte_total: float
    fte_by_profession: dict[str, float]
    fte_by_role_type: dict[str, float]
    peer_fte: float
    professional_fte: float
    peer_to_professional_ratio: float | None = Field(
        description="Peer specialist FTE per professional FTE; None without professionals")


class SupervisionCreate(_Strict):
    staff_id: str = id_field(description="The member of staff supervised")
    supervisor_id: str = id_field()
    held_on: date
    recovery_focused: bool
    quality: int = Field(ge=1, le=5, description="1 poor to 5 excellent, as the supervisee "
                                                 "rates it")
    peer_supervision: bool = Field(default=False,
                                   description="Peer supervision for peer staff")


class SupervisionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    staff_id: str
    team_id: str
    supervisor_id: str
    held_on: date
    recovery_focused: bool
    peer_supervision: bool
    quality: int
    recorded_by: str
    recorded_at: datetime


class AppraisalCreate(_Strict):
    staff_id: str = id_field()
    held_on: date
    service_user_feedback_included: bool
    recovery_objectives_set: bool = False


class AppraisalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    staff_id: str
    team_id: str
    held_on: date
    service_user_feedback_included: bool
    recovery_objectives_set: bool
    recorded_by: str
    recorded_at: datetime


class PanelCreate(_Strict):
    team_id: str = id_field()
    role_type: RoleType = Field(description="The kind of post recruited to")
    held_on: date
    members: list[PanelMemberKind] = Field(min_length=1, max_length=12,
                                           description="Who sat on the panel, by kind")


class PanelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    team_id: str
    role_type: RoleType
    held_on: date
    members: list[PanelMemberKind]
    lived_experience_members: int
    recorded_by: str
    recorded_at: datetime


CLIMATE_ITEMS = (
    "New ideas to support people's recovery are welcomed in this team",
    "We try out new ways of working",
    "What service users tell us changes what we do",
    "We learn from things that go wrong without blame",
    "Our leaders support recovery-oriented practice",
)


class ClimateResponseCreate(_Strict):
    """One anonymous answer: each item from 1 (strongly disagree) to 5 (strongly agree)."""

    responded_on: date
    answers: list[int] = Field(min_length=len(CLIMATE_ITEMS), max_length=len(CLIMATE_ITEMS),
                               description="One answer per item of GET /v1/climate-survey")

    @field_validator("answers")
    @classmethod
    def _on_the_scale(cls, value: list[int]) -> list[int]:
        if any(not 1 <= answer <= 5 for answer in value):
            raise ValueError("every answer is from 1 to 5")
        return value


class ClimateSurvey(BaseModel):
    items: list[str]
    scale: str


class ClimateResponseAccepted(BaseModel):
    id: str
    team_id: str
    responded_on: date


class FactorPublic(BaseModel):
    name: str
    score: float = Field(description="0 to 1")
    level: str
    explanation: str
    records: dict[str, Any] = Field(description="The figures and records it comes from")


class Readiness(BaseModel):
    team_id: str
    as_of: date
    score: float
    level: str
    weakest_factor: str
    factors: list[FactorPublic]


class BillingLine(BaseModel):
    service_user_id: str
    service_date: date
    hcpcs: str
    modifier: str | None
    minutes: int
    units: int
    capped: bool = Field(description="Units were cut to the daily cap")
    contacts: int


class BillingExport(BaseModel):
    team_id: str
    date_from: date
    date_to: date
    hcpcs: str
    unit_minutes: int
    rounding: str
    daily_cap_units: int
    lines: list[BillingLine]
    total_units: int
