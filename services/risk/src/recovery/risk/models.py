"""Risk co-assessments, their versions and signatures: the tables and the API shapes.

What is assessed is held in words: each side's view per area, strengths, protective factors,
a safety plan and positive risk-taking decisions. There is no score or level anywhere.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import JSON, Column, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from recovery.common.db import UTCDateTime
from recovery.common.ids import new_id
from recovery.common.rules import ErrorReason
from recovery.common.timeutil import utcnow


class RiskArea(StrEnum):
    """Areas of safety talked through together (not categories of a scale)."""

    safety_of_self = "safety_of_self"
    safety_from_others = "safety_from_others"  # including exploitation
    safety_of_others = "safety_of_others"
    self_neglect = "self_neglect"
    physical_health = "physical_health"
    substances = "substances"
    other = "other"


class Party(StrEnum):
    """Who signs a co-assessment: both must sign the same version for it to be agreed."""

    service_user = "service_user"
    clinician = "clinician"


class VersionStatus(StrEnum):
    draft = "draft"
    agreed = "agreed"
    agreed_with_differences = "agreed-with-differences"


class AssessmentStatus(StrEnum):
    """Where the record stands: a draft only, an agreement in force, or withdrawn."""

    draft = "draft"
    agreed = "agreed"
    agreed_with_differences = "agreed-with-differences"
    agreement_withdrawn = "agreement-withdrawn"
    entered_in_error = "entered-in-error"  # a mistake: kept, readable, closed to change


ID_PATTERN = r"^[A-Za-z0-9._:@|-]+$"
PersonId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
Words = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Item = Annotated[str, StringConstraints(min_length=1, max_length=500)]


def id_field(default: Any = ..., **extra: Any) -> Any:
    """An opaque id from another system (an EHR patient id, a team id, a goal id)."""
    return Field(default, min_length=1, max_length=64, pattern=ID_PATTERN, **extra)


# --- tables -------------------------------------------------------------------------------


#: Bumped by every write and checked by it (SQLAlchemy's version counter): a write that read
#: the record before another write committed fails instead of overwriting it.
_REVISION = Column("revision", Integer, nullable=False)


class RiskAssessment(SQLModel, table=True):
    """A co-assessment as it stands now: its latest version and the agreement in force."""

    __tablename__ = "risk_assessment"
    __mapper_args__ = {"version_id_col": _REVISION}
    __table_args__ = (
        Index("ix_risk_assessment_person_created", "service_user_id", "created_at", "id"),
        Index("ix_risk_assessment_team_created", "team_id", "created_at", "id"),
        Index("ix_risk_assessment_team_review", "team_id", "review_date"),
    )

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    service_user_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    team_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    status: str = SQLField(sa_column=Column(String(30), nullable=False))
    entered_in_error_reason: str | None = SQLField(default=None, sa_column=Column(String(30)))
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))
    revision: int = SQLField(default=1, sa_column=_REVISION)
    content_hash: str = SQLField(sa_column=Column(String(80), nullable=False))
    #: The last version both parties signed, still in force (kept while a new draft is made).
    active_version: int | None = SQLField(default=None, sa_column=Column(Integer))
    review_date: date | None = SQLField(default=None, sa_column=Column(Date))
    #: The review date a review-due event was last raised for (raised once per date).
    review_due_raised_for: date | None = SQLField(default=None, sa_column=Column(Date))
    created_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    created_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))
    #: The record as callers see it (AssessmentPublic), written with every change.
    document: dict[str, Any] = SQLField(default_factory=dict,
                                        sa_column=Column(JSON, nullable=False))


class RiskAssessmentVersion(SQLModel, table=True):
    """One version's content exactly as it was, with its hash; kept for ever."""

    __tablename__ = "risk_assessment_version"

    assessment_id: str = SQLField(sa_column=Column(String(36), ForeignKey("risk_assessment.id"),
                                                   primary_key=True))
    version: int = SQLField(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    content: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    content_hash: str = SQLField(sa_column=Column(String(80), nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
    change: str = SQLField(sa_column=Column(String(40), nullable=False))


class RiskSignature(SQLModel, table=True):
    """A party's signature on one exact version (its content hash); withdrawal is kept."""

    __tablename__ = "risk_signature"
    __table_args__ = (
        # One standing signature per signatory and version: signing twice is a conflict.
        UniqueConstraint("assessment_id", "version", "signatory", name="uq_risk_signature"),
        Index("ix_risk_signature_assessment", "assessment_id", "version"),
    )

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    assessment_id: str = SQLField(sa_column=Column(String(36), ForeignKey("risk_assessment.id"),
                                                   nullable=False))
    version: int = SQLField(sa_column=Column(Integer, nullable=False))
    signatory: str = SQLField(sa_column=Column(String(200), nullable=False))
    party: str = SQLField(sa_column=Column(String(20), nullable=False))
    content_hash: str = SQLField(sa_column=Column(String(80), nullable=False))
    signed_at: datetime = SQLField(sa_column=Column(UTCDateTime(), nullable=False))
    withdrawn_at: datetime | None = SQLField(default=None, sa_column=Column(UTCDateTime()))


# --- API shapes ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AreaView(_Strict):
    """One area talked through: each side's view, what keeps the person safe, and whether
    the two views agree; a difference is written down, never smoothed over."""

    area: RiskArea
    area_name: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="What the area is called, for area 'other'")
    service_user_view: Words | None = Field(default=None,
                                            description="The person's view, in their words")
    clinician_view: Words | None = None
    strengths: list[Item] = Field(default_factory=list, max_length=20)
    protective_factors: list[Item] = Field(default_factory=list, max_length=20)
    views_agree: bool | None = Field(default=None,
                                     description="Whether the two views agree; empty until "
                                                 "talked through")
    difference: Words | None = Field(default=None,
                                     description="How the views differ, recorded openly")


class SelfAction(_Strict):
    """Something the person will do for themselves."""

    what: Item
    when: str | None = Field(default=None, min_length=1, max_length=200)


class OthersAction(_Strict):
    """Something someone else will do: who, what, when, and how to reach them."""

    who: Item
    what: Item
    when: str | None = Field(default=None, min_length=1, max_length=200)
    how_to_reach: str | None = Field(default=None, min_length=1, max_length=200)


class SafetyPlan(_Strict):
    """A safety plan made together and held by the service user."""

    i_will: list[SelfAction] = Field(default_factory=list, max_length=30)
    others_will: list[OthersAction] = Field(default_factory=list, max_length=30)
    copy_held_by_service_user_on: date | None = Field(
        default=None, description="When the person was given their copy")


class Views(_Strict):
    """The same question as each side sees it."""

    service_user: list[Item] = Field(default_factory=list, max_length=20)
    clinician: list[Item] = Field(default_factory=list, max_length=20)


class PositiveRiskDecisionCreate(_Strict):
    """A positive risk-taking decision: a risk taken on purpose, for a goal of the person."""

    goal_id: str = id_field(description="The goal (goals service) this decision serves")
    decision: Words
    options: list[Item] = Field(default_factory=list, max_length=20)
    benefits: Views = Field(default_factory=Views)
    harms: Views = Field(default_factory=Views)
    safeguards: list[Item] = Field(min_length=1, max_length=20)
    review_date: date


class PositiveRiskDecision(PositiveRiskDecisionCreate):
    id: str
    recorded_by: str
    recorded_at: datetime


def _distinct_areas(value: list[AreaView]) -> list[AreaView]:
    seen = [(a.area, a.area_name) for a in value]
    if len(set(seen)) != len(seen):
        raise ValueError("each area appears once")
    return value


class AssessmentContent(_Strict):
    """What one version says: the content both sides sign."""

    areas: list[AreaView] = Field(min_length=1, max_length=20)
    safety_plan: SafetyPlan | None = None
    positive_risk_decisions: list[PositiveRiskDecision] = Field(default_factory=list,
                                                                max_length=50)
    review_date: date | None = None

    _areas = field_validator("areas")(_distinct_areas)


class AssessmentCreate(_Strict):
    """A new co-assessment; it starts as a draft for both sides to sign."""

    service_user_id: str = id_field()
    team_id: str = id_field()
    areas: list[AreaView] = Field(min_length=1, max_length=20)
    safety_plan: SafetyPlan | None = None
    review_date: date | None = None

    _areas = field_validator("areas")(_distinct_areas)


class AssessmentUpdate(_Strict):
    """A change: fields left out stay as they are; ``areas`` replaces the list."""

    areas: list[AreaView] | None = Field(default=None, min_length=1, max_length=20)
    safety_plan: SafetyPlan | None = None
    review_date: date | None = None

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[AreaView] | None) -> list[AreaView] | None:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep the areas")
        return _distinct_areas(value)


class SignatureCreate(_Strict):
    """Sign the version named by If-Match; the hash must be that version's (what you read)."""

    content_hash: str = Field(min_length=71, max_length=80, pattern=r"^sha256:[0-9a-f]{64}$")


class SignaturePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    signatory: str
    party: Party
    version: int
    content_hash: str
    signed_at: datetime
    withdrawn_at: datetime | None


class AssessmentPublic(BaseModel):
    """A co-assessment as callers see it: the latest version and the agreement in force."""

    id: str
    service_user_id: str
    team_id: str
    status: AssessmentStatus
    entered_in_error_reason: ErrorReason | None = Field(
        None, description="Why it was marked entered-in-error (null otherwise)")
    version: int = Field(description="The latest version (the ETag)")
    version_status: VersionStatus = Field(description="Whether the latest version is agreed")
    content_hash: str
    content: AssessmentContent
    signatures: list[SignaturePublic] = Field(description="Signatures on the latest version")
    missing_parties: list[Party]
    active_version: int | None = Field(description="The agreed version in force, if any")
    differences: list[RiskArea] = Field(description="Areas where the views differ")
    review_date: date | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class VersionPublic(BaseModel):
    assessment_id: str
    version: int
    status: VersionStatus
    content_hash: str
    content: AssessmentContent
    signatures: list[SignaturePublic]
    recorded_by: str
    recorded_at: datetime
    change: str


class BatchRead(_Strict):
    """Co-assessments of many service users in one call (the gateway's DataLoader)."""

    service_user_ids: list[PersonId] = Field(min_length=1, max_length=100)
    limit_per_person: int = Field(default=20, ge=1, le=200)

    @field_validator("service_user_ids")
    @classmethod
    def _distinct_people(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class PersonAssessments(BaseModel):
    service_user_id: str
    assessments: list[AssessmentPublic]
    truncated: bool
    next_cursor: str | None = Field(
        default=None, description="Where their co-assessments list (GET "
                                  "/v1/risk-assessments) goes on after the last one here")


class BatchReadResult(BaseModel):
    results: list[PersonAssessments]


class ReviewDue(BaseModel):
    assessment_id: str
    service_user_id: str
    review_date: date
    overdue_days: int
    status: AssessmentStatus


class ReviewDueList(BaseModel):
    team_id: str
    as_of: date
    items: list[ReviewDue]
