"""Goals, their versions and progress reviews: the tables and the API shapes around them."""

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from recovery.common.db import UTCDateTime
from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow


class LifeArea(StrEnum):
    work_and_education = "work_and_education"
    home = "home"
    relationships_and_connection = "relationships_and_connection"
    physical_health = "physical_health"
    mental_wellbeing = "mental_wellbeing"
    money = "money"
    leisure_and_creativity = "leisure_and_creativity"
    spirituality_and_meaning = "spirituality_and_meaning"
    identity = "identity"
    community_and_citizenship = "community_and_citizenship"


class ChimeTag(StrEnum):
    """The CHIME recovery processes, free to use as tags."""

    connectedness = "connectedness"
    hope = "hope"
    identity = "identity"
    meaning = "meaning"
    empowerment = "empowerment"


class GoalKind(StrEnum):
    life = "life"
    therapeutic = "therapeutic"


class ExpressedBy(StrEnum):
    service_user = "service_user"
    staff = "staff"


class LifecycleStatus(StrEnum):
    """FHIR R4 Goal.lifecycleStatus."""

    proposed = "proposed"
    planned = "planned"
    accepted = "accepted"
    active = "active"
    on_hold = "on-hold"
    completed = "completed"
    cancelled = "cancelled"
    entered_in_error = "entered-in-error"
    rejected = "rejected"


class AchievementStatus(StrEnum):
    """FHIR R4 Goal.achievementStatus (goal-achievement code system)."""

    in_progress = "in-progress"
    improving = "improving"
    worsening = "worsening"
    no_change = "no-change"
    achieved = "achieved"
    sustaining = "sustaining"
    not_achieved = "not-achieved"
    no_progress = "no-progress"
    not_attainable = "not-attainable"


class SupporterRole(StrEnum):
    staff = "staff"
    peer_specialist = "peer_specialist"
    carer = "carer"


class StepActor(StrEnum):
    service_user = "service_user"
    staff = "staff"
    peer = "peer"
    carer = "carer"


class ReviewAttendee(StrEnum):
    service_user = "service_user"
    staff = "staff"
    peer_specialist = "peer_specialist"
    carer = "carer"
    advocate = "advocate"
    other = "other"


ID_PATTERN = r"^[A-Za-z0-9._:@|-]+$"


def id_field(default: Any = ..., **extra: Any) -> Any:
    """An opaque id from another system (an EHR patient id, a team id, a staff id)."""
    return Field(default, min_length=1, max_length=64, pattern=ID_PATTERN, **extra)


PersonId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
GoalRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Strength = Annotated[str, StringConstraints(min_length=1, max_length=500)]


# --- tables -------------------------------------------------------------------------------


class Goal(SQLModel, table=True):
    """A goal as it stands now; every change also writes a ``GoalVersion`` snapshot."""

    __tablename__ = "goal"
    __table_args__ = (
        # Keyset pagination walks (filter, created_at, id) newest first.
        Index("ix_goal_service_user_created", "service_user_id", "created_at", "id"),
        Index("ix_goal_team_created", "team_id", "created_at", "id"),
        Index("ix_goal_created", "created_at", "id"),
    )

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    service_user_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    team_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    kind: str = SQLField(sa_column=Column(String(20), nullable=False))
    life_area: str | None = SQLField(default=None, sa_column=Column(String(40)))
    chime_tags: list[str] = SQLField(default_factory=list,
                                     sa_column=Column(JSON, nullable=False))
    description: str = SQLField(sa_column=Column(Text, nullable=False))
    why_it_matters: str | None = SQLField(default=None, sa_column=Column(Text))
    strengths: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    supporters: list[dict[str, Any]] = SQLField(default_factory=list,
                                                sa_column=Column(JSON, nullable=False))
    target_date: date | None = None
    serves_goal_ids: list[str] = SQLField(default_factory=list,
                                          sa_column=Column(JSON, nullable=False))
    # Steps live with the goal: they are part of the plan the person agrees, and are versioned
    # with it; a goal then reads in one indexed query.
    steps: list[dict[str, Any]] = SQLField(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    expressed_by: str = SQLField(sa_column=Column(String(20), nullable=False))
    proposed_by: str | None = SQLField(default=None, sa_column=Column(String(200)))
    lifecycle_status: str = SQLField(sa_column=Column(String(20), nullable=False))
    achievement_status: str | None = SQLField(default=None, sa_column=Column(String(20)))
    status_reason: str | None = SQLField(default=None, sa_column=Column(Text))
    created_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))
    status_changed_at: datetime = SQLField(default_factory=utcnow,
                                           sa_column=Column(UTCDateTime(), nullable=False))
    accepted_at: datetime | None = SQLField(default=None, sa_column=Column(UTCDateTime()))
    last_reviewed_on: date | None = None
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))
    # The goal as callers see it (GoalPublic) at this version, written with every change:
    # reads and lists hand it out as stored, without rebuilding it row by row.
    document: dict[str, Any] = SQLField(default_factory=dict,
                                        sa_column=Column(JSON, nullable=False))


class GoalVersion(SQLModel, table=True):
    """One version of a goal exactly as it was, kept for ever."""

    __tablename__ = "goal_version"

    goal_id: str = SQLField(sa_column=Column(String(36), ForeignKey("goal.id"),
                                             primary_key=True))
    version: int = SQLField(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    recorded_at: datetime = SQLField(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    change: str = SQLField(sa_column=Column(String(30), nullable=False))
    snapshot: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))


class GoalReview(SQLModel, table=True):
    """A progress review: who was there, how it is going, and the person's own view."""

    __tablename__ = "goal_review"
    __table_args__ = (Index("ix_goal_review_goal", "goal_id", "reviewed_on", "id"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    goal_id: str = SQLField(sa_column=Column(String(36), ForeignKey("goal.id"), nullable=False))
    reviewed_on: date
    attendees: list[dict[str, Any]] = SQLField(default_factory=list,
                                               sa_column=Column(JSON, nullable=False))
    achievement_status: str = SQLField(sa_column=Column(String(20), nullable=False))
    rating: int | None = None
    own_words: str | None = SQLField(default=None, sa_column=Column(Text))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
    goal_version: int = SQLField(sa_column=Column(Integer, nullable=False))


# --- API shapes ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Supporter(_Strict):
    """Someone who helps with the goal: a member of staff, a peer specialist or a carer."""

    role: SupporterRole
    name: str | None = Field(default=None, min_length=1, max_length=200)
    id: str | None = id_field(None)


class StepCreate(_Strict):
    who: StepActor
    what: str = Field(min_length=1, max_length=1000)
    by_when: date | None = None


def not_null_in_schema(*names: str) -> Callable[[dict[str, Any]], None]:
    """Schema hook: for these optional fields leaving them out keeps the value, and null is
    refused, so the published schema does not offer null either."""

    def hook(schema: dict[str, Any]) -> None:
        for name in names:
            prop = schema["properties"][name]
            variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
            if variants:
                prop.update(variants[0])
            prop.pop("default", None)

    return hook


def _not_null(value: Any) -> Any:
    # Runs only for values sent: left out, a field keeps its value; sent as null, it is refused.
    if value is None:
        raise ValueError("cannot be null; leave the field out to keep it as it is")
    return value


STEP_NOT_NULL = ("who", "what", "done")


class StepUpdate(_Strict):
    """A partial change of a step; ``by_when: null`` clears the date."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=not_null_in_schema(*STEP_NOT_NULL))

    who: StepActor | None = None
    what: str | None = Field(default=None, min_length=1, max_length=1000)
    by_when: date | None = None
    done: bool | None = None

    _sent_not_null = field_validator(*STEP_NOT_NULL)(_not_null)


class Step(BaseModel):
    """Who does what, by when; and whether it is done."""

    id: str
    who: StepActor
    what: str
    by_when: date | None = None
    done: bool = False
    done_at: datetime | None = None


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class GoalFields(_Strict):
    """What the person (or staff, proposing) writes about a goal."""

    life_area: LifeArea | None = None
    chime_tags: list[ChimeTag] = Field(default_factory=list, max_length=5)
    why_it_matters: str | None = Field(default=None, min_length=1, max_length=2000)
    strengths: list[Strength] = Field(default_factory=list, max_length=20)
    supporters: list[Supporter] = Field(default_factory=list, max_length=20)
    target_date: date | None = None

    @field_validator("chime_tags")
    @classmethod
    def _distinct_tags(cls, value: list[ChimeTag]) -> list[ChimeTag]:
        return _unique(value)


class GoalCreate(GoalFields):
    """A new goal; only ``service_user_id``, ``team_id`` and ``description`` are needed."""

    service_user_id: str = id_field()
    team_id: str = id_field()
    description: str = Field(min_length=1, max_length=2000,
                             description="The goal in the person's own words")
    kind: GoalKind = GoalKind.life
    serves_goal_ids: list[GoalRef] = Field(default_factory=list, max_length=20,
                                           description="Life goals a therapeutic goal serves")
    steps: list[StepCreate] = Field(default_factory=list, max_length=50)

    @field_validator("serves_goal_ids")
    @classmethod
    def _distinct_goals(cls, value: list[str]) -> list[str]:
        return _unique(value)


NOT_NULL_ON_UPDATE = ("description", "kind", "chime_tags", "strengths", "supporters",
                      "serves_goal_ids")


class GoalUpdate(_Strict):
    """A partial change; fields left out stay as they are, ``null`` clears optional ones."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=not_null_in_schema(*NOT_NULL_ON_UPDATE))

    description: str | None = Field(default=None, min_length=1, max_length=2000)
    kind: GoalKind | None = None
    life_area: LifeArea | None = None
    chime_tags: list[ChimeTag] | None = Field(default=None, max_length=5)
    why_it_matters: str | None = Field(default=None, min_length=1, max_length=2000)
    strengths: list[Strength] | None = Field(default=None, max_length=20)
    supporters: list[Supporter] | None = Field(default=None, max_length=20)
    target_date: date | None = None
    serves_goal_ids: list[GoalRef] | None = Field(default=None, max_length=20)

    @field_validator("chime_tags")
    @classmethod
    def _distinct_tags(cls, value: list[ChimeTag] | None) -> list[ChimeTag] | None:
        return None if value is None else _unique(value)

    @field_validator("serves_goal_ids")
    @classmethod
    def _distinct_goals(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique(value)

    _sent_not_null = field_validator(*NOT_NULL_ON_UPDATE)(_not_null)


class Decision(_Strict):
    """The person's answer to a proposed goal, optionally with their reason."""

    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class StatusChange(_Strict):
    status: LifecycleStatus
    achievement_status: AchievementStatus | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class Attendee(_Strict):
    role: ReviewAttendee
    name: str | None = Field(default=None, min_length=1, max_length=200)
    id: str | None = id_field(None)


class ReviewCreate(_Strict):
    reviewed_on: date | None = Field(default=None, description="Defaults to today (UTC)")
    attendees: list[Attendee] = Field(default_factory=list, max_length=20)
    achievement_status: AchievementStatus
    rating: int | None = Field(default=None, ge=0, le=10,
                               description="The person's own rating, 0 to 10")
    own_words: str | None = Field(default=None, min_length=1, max_length=4000,
                                  description="How it is going, in the person's words")


class ReviewPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    goal_id: str
    reviewed_on: date
    attendees: list[Attendee]
    achievement_status: AchievementStatus
    rating: int | None
    own_words: str | None
    recorded_by: str
    recorded_at: datetime
    goal_version: int


class GoalPublic(BaseModel):
    """A goal as callers see it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    service_user_id: str
    team_id: str
    kind: GoalKind
    description: str
    life_area: LifeArea | None
    chime_tags: list[ChimeTag]
    why_it_matters: str | None
    strengths: list[str]
    supporters: list[Supporter]
    target_date: date | None
    serves_goal_ids: list[str]
    steps: list[Step]
    expressed_by: ExpressedBy
    proposed_by: str | None
    lifecycle_status: LifecycleStatus
    achievement_status: AchievementStatus | None
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    accepted_at: datetime | None
    last_reviewed_on: date | None
    version: int


class GoalVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    goal_id: str
    version: int
    recorded_at: datetime
    recorded_by: str
    change: str
    snapshot: GoalPublic


class BatchRead(_Strict):
    """Goals of many service users in one call (the gateway's DataLoader)."""

    service_user_ids: list[PersonId] = Field(min_length=1, max_length=100)
    status: list[LifecycleStatus] | None = Field(default=None, max_length=9)
    limit_per_person: int = Field(default=50, ge=1, le=200)

    @field_validator("service_user_ids")
    @classmethod
    def _distinct_people(cls, value: list[str]) -> list[str]:
        return _unique(value)


class PersonGoals(BaseModel):
    service_user_id: str
    goals: list[GoalPublic]
    truncated: bool = Field(description="More goals exist than limit_per_person")
    next_cursor: str | None = Field(
        default=None,
        description="Where their goals list (GET /v1/goals) goes on after the last one here")


class BatchReadResult(BaseModel):
    results: list[PersonGoals]


class TeamFigures(BaseModel):
    """How a team's goals look: life versus therapeutic, whose words, reviews."""

    team_id: str
    as_of: datetime
    reviewed_within_days: int
    goals: int = Field(description="Goals counted: all but entered-in-error, declined, "
                                    "cancelled")
    life_goals: int
    therapeutic_goals: int
    life_share: float | None
    therapeutic_share: float | None
    expressed_by_service_user: int
    expressed_by_service_user_share: float | None
    employment_and_education_goals: int
    employment_and_education_share: float | None
    open_goals: int = Field(description="Goals being worked on: planned, accepted, active, "
                                        "on-hold")
    reviewed_recently: int = Field(description="Open goals reviewed within the window")
    reviewed_recently_share: float | None
    by_status: dict[str, int]
