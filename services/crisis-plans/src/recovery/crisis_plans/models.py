"""Joint crisis plans, their immutable versions and signatures, break-glass reads and shared
decisions on medication: the tables and the API shapes around them."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from recovery.common.db import StoredJSON, UTCDateTime
from recovery.common.ids import new_id
from recovery.common.rules import ErrorReason
from recovery.common.timeutil import utcnow

ID_PATTERN = r"^[A-Za-z0-9._:@|-]+$"
PersonId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
Item = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
SHORT_LIST = 30


class Party(StrEnum):
    """The part a signatory plays in agreeing a version."""

    service_user = "service_user"
    care_coordinator = "care_coordinator"
    psychiatrist = "psychiatrist"


CLINICIAN_PARTIES = frozenset({Party.care_coordinator, Party.psychiatrist})


class ParticipantRole(StrEnum):
    """Who took part in making the plan (Henderson 2004; CRIMSON)."""

    service_user = "service_user"
    care_coordinator = "care_coordinator"
    psychiatrist = "psychiatrist"
    external_facilitator = "external_facilitator"
    carer = "carer"
    advocate = "advocate"
    other = "other"


class PlanStatus(StrEnum):
    """Where the newest version stands."""

    draft = "draft"  # not (yet) signed by every required party
    agreed = "agreed"  # the newest version is the active plan
    withdrawn = "withdrawn"  # the person withdrew their agreement
    entered_in_error = "entered-in-error"  # a mistake: kept, readable by id, closed, not active


class PracticalArea(StrEnum):
    children = "children"
    dependants = "dependants"
    pets = "pets"
    home = "home"
    bills = "bills"
    other = "other"


class CopyHolderKind(StrEnum):
    gp = "gp"
    crisis_team = "crisis_team"
    nearest_relative = "nearest_relative"
    carer = "carer"
    advocate = "advocate"
    other = "other"


# --- tables -------------------------------------------------------------------------------

_REVISION = Column("revision", Integer, nullable=False)
#: The plans in use: those not marked entered-in-error (the partial index's condition).
IN_USE = text("status != 'entered-in-error'")


class CrisisPlan(SQLModel, table=True):
    """A person's joint crisis plan as it stands: newest version, and the active (agreed) one.
    Never deleted: a plan made in error is marked so, and another may then be started.

    ``revision`` counts every change (edits, signatures, withdrawals) and guards each write:
    two changes racing from the same state cannot both commit.
    """

    __tablename__ = "crisis_plan"
    __table_args__ = (
        # One plan in use per person (so "the active plan" is never ambiguous); a plan marked
        # entered-in-error is kept beside the one that replaces it.
        Index("ix_crisis_plan_in_use_per_person", "service_user_id", unique=True,
              sqlite_where=IN_USE, postgresql_where=IN_USE),
        Index("ix_crisis_plan_person_created", "service_user_id", "created_at", "id"),
        Index("ix_crisis_plan_team_created", "team_id", "created_at", "id"),
        Index("ix_crisis_plan_team_review", "team_id", "review_on"),
    )

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    service_user_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    team_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    created_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    created_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))
    required_parties: list[str] = SQLField(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    version: int = SQLField(default=1, sa_column=Column(Integer, nullable=False))
    status: str = SQLField(default=PlanStatus.draft.value,
                           sa_column=Column(String(20), nullable=False))
    entered_in_error_reason: str | None = SQLField(default=None, sa_column=Column(String(30)))
    active_version: int | None = SQLField(default=None, sa_column=Column(Integer))
    agreed_at: datetime | None = SQLField(default=None, sa_column=Column(UTCDateTime()))
    review_on: date | None = SQLField(default=None, sa_column=Column(Date))
    review_due_announced_for: date | None = SQLField(default=None, sa_column=Column(Date))
    not_individualised: bool = SQLField(default=False,
                                        sa_column=Column(Boolean, nullable=False))
    revision: int = SQLField(default=1, sa_column=_REVISION)
    # The plan as callers see it (PlanPublic), and the active version as a crisis team reads
    # it (ActivePlan): written with every change, handed out as stored (a signature writes
    # the text it answers with, ``EncodedJSON``).
    document: dict[str, Any] = SQLField(default_factory=dict,
                                        sa_column=Column(StoredJSON, nullable=False))
    active_document: dict[str, Any] | None = SQLField(default=None,
                                                      sa_column=Column(StoredJSON))

    __mapper_args__ = {"version_id_col": _REVISION}


class CrisisPlanVersion(SQLModel, table=True):
    """One version of a plan exactly as written, with its content hash; never changed."""

    __tablename__ = "crisis_plan_version"

    plan_id: str = SQLField(sa_column=Column(String(36), ForeignKey("crisis_plan.id"),
                                             primary_key=True))
    version: int = SQLField(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    recorded_at: datetime = SQLField(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    content: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    content_hash: str = SQLField(sa_column=Column(String(80), nullable=False))


class CrisisPlanSignature(SQLModel, table=True):
    """A signatory's agreement to one version, bound to its content hash."""

    __tablename__ = "crisis_plan_signature"
    __table_args__ = (Index("ix_crisis_plan_signature_plan", "plan_id", "version"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    plan_id: str = SQLField(sa_column=Column(String(36), ForeignKey("crisis_plan.id"),
                                             nullable=False))
    version: int = SQLField(sa_column=Column(Integer, nullable=False))
    signatory: str = SQLField(sa_column=Column(String(200), nullable=False))
    party: str = SQLField(sa_column=Column(String(30), nullable=False))
    content_hash: str = SQLField(sa_column=Column(String(80), nullable=False))
    signed_at: datetime = SQLField(default_factory=utcnow,
                                   sa_column=Column(UTCDateTime(), nullable=False))
    withdrawn_at: datetime | None = SQLField(default=None, sa_column=Column(UTCDateTime()))


class BreakGlassAccess(SQLModel, table=True):
    """A read of someone's active plan from outside their teams; the reason is kept here
    (the audit trail holds only the purpose code)."""

    __tablename__ = "crisis_plan_break_glass"
    __table_args__ = (Index("ix_break_glass_person", "service_user_id", "accessed_at"),)

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    plan_id: str = SQLField(sa_column=Column(String(36), nullable=False))
    service_user_id: str = SQLField(sa_column=Column(String(64), nullable=False))
    accessed_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    accessed_at: datetime = SQLField(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
    reason: str = SQLField(sa_column=Column(Text, nullable=False))
    plan_version: int = SQLField(sa_column=Column(Integer, nullable=False))


class MedicationDecision(SQLModel, table=True):
    """A shared decision on medication (CommonGround), recorded with the plan. A review is a
    new decision that revisits an earlier one; each decision is revisited at most once."""

    __tablename__ = "medication_decision"
    __table_args__ = (Index("ix_medication_decision_plan", "plan_id", "recorded_at", "id"),
                      Index("ix_medication_decision_revisits", "revisits", unique=True),
                      Index("ix_medication_decision_review", "review_on"))

    id: str = SQLField(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    plan_id: str = SQLField(sa_column=Column(String(36), ForeignKey("crisis_plan.id"),
                                             nullable=False))
    revisits: str | None = SQLField(default=None, sa_column=Column(
        String(36), ForeignKey("medication_decision.id",
                               name="fk_medication_decision_revisits")))
    review_on: date | None = SQLField(default=None, sa_column=Column(Date))
    recorded_by: str = SQLField(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = SQLField(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
    document: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    #: When ``medication-decision.review-due`` was raised for it (once, by the review sweep).
    review_due_announced_at: datetime | None = SQLField(default=None,
                                                        sa_column=Column(UTCDateTime()))


# --- API shapes ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Contact(_Strict):
    """Someone who can help, the part they play, and how to reach them."""

    name: Name
    role: Name = Field(description="e.g. sister, neighbour, GP, crisis line")
    how_to_reach: Item
    available_24_hours: bool = False


class PersonNotToInvolve(_Strict):
    name: Name
    reason: Item | None = None


class DeclinedTreatment(_Strict):
    """A treatment the person declines, with what they would accept instead."""

    treatment: Item
    reason: Item | None = None
    acceptable_alternatives: list[Item] = Field(default_factory=list, max_length=SHORT_LIST)


class RefusedTreatment(_Strict):
    treatment: Item
    circumstances: Item


class AdvanceDecision(_Strict):
    """An advance decision to refuse treatment: kept apart, its legal status differs."""

    treatments_refused: list[RefusedTreatment] = Field(min_length=1, max_length=SHORT_LIST)
    made_on: date
    witnessed: bool = False
    document_reference: Item | None = None


class PracticalNeed(_Strict):
    area: PracticalArea
    what_needs_doing: Item


class Participant(_Strict):
    """Someone who took part in making the plan."""

    role: ParticipantRole
    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    name: Name | None = None


class UnagreedPreference(_Strict):
    """A preference the team could not agree to, kept with the reason."""

    preference: Item
    reason: Item


class CopyHolder(_Strict):
    """Someone the service user chose to hold a copy."""

    kind: CopyHolderKind
    name: Name | None = None
    how_to_reach: Item | None = None


def _list(description: str = "") -> Any:
    return Field(default_factory=list, max_length=SHORT_LIST, description=description)


class PlanContent(_Strict):
    """Everything a joint crisis plan says (JCP, NICE QS14, WRAP, Stanley-Brown)."""

    when_well: list[Item] = _list("What I am like when I am well")
    early_warning_signs: list[Item] = _list()
    triggers: list[Item] = _list()
    what_helps: list[Item] = _list()
    what_does_not_help: list[Item] = _list()
    coping_strategies: list[Item] = _list("Things I can do on my own")
    people_and_places_that_help: list[Item] = _list()
    helpful_contacts: list[Contact] = _list("Family or friends who can help")
    people_not_to_involve: list[PersonNotToInvolve] = _list()
    professional_contacts: list[Contact] = _list("Professionals and 24-hour contacts")
    preferred_treatment: list[Item] = _list()
    preferred_setting: Item | None = Field(default=None, description="e.g. home treatment")
    preferred_place_of_admission: Item | None = None
    declined_treatments: list[DeclinedTreatment] = _list()
    advance_statement: list[Item] = _list("Wishes and preferences")
    advance_decision: AdvanceDecision | None = Field(
        default=None, description="Advance decision to refuse treatment, kept apart")
    practical_needs: list[PracticalNeed] = _list("Children, dependants, pets, home, bills")
    safer_environment: list[Item] = _list("Making the environment safer")
    reasons_for_living: list[Item] = _list()
    signs_crisis_is_over: list[Item] = _list()
    after_crisis_wishes: list[Item] = _list()
    participants: list[Participant] = _list("Who took part in making the plan")
    unagreed_preferences: list[UnagreedPreference] = _list(
        "Preferences the team could not agree to, with reasons")
    copy_holders: list[CopyHolder] = _list("Chosen by the service user")
    review_on: date | None = None


class PlanCreate(PlanContent):
    """A new plan for a person; the first version is a draft."""

    service_user_id: PersonId
    team_id: PersonId
    clinician_parties_required: list[Party] = Field(
        default_factory=lambda: [Party.care_coordinator], min_length=1, max_length=2,
        description="Clinicians who must sign besides the service user")

    @field_validator("clinician_parties_required")
    @classmethod
    def _clinicians_only(cls, value: list[Party]) -> list[Party]:
        if Party.service_user in value:
            raise ValueError("the service user always signs; list only clinician parties")
        return list(dict.fromkeys(value))

    def content(self) -> PlanContent:
        return PlanContent.model_validate(self.model_dump(
            exclude={"service_user_id", "team_id", "clinician_parties_required"}))


class PlanChange(PlanContent):
    """A new version: the whole content as it should now read (sections left out are empty)."""


class SignRequest(_Strict):
    """Agreement to the version named by If-Match, bound to the hash the signatory saw."""

    content_hash: str = Field(min_length=71, max_length=71, pattern=r"^sha256:[0-9a-f]{64}$")
    party: Party | None = Field(default=None, description="Defaults to service_user for the "
                                                          "person, care_coordinator for staff")


class Withdrawal(_Strict):
    reason: Item | None = None


class BreakGlassRequest(_Strict):
    # Optional here so that a missing or short reason gets its own clear refusal.
    reason: str | None = Field(default=None, max_length=2000,
                               description="Why the plan is needed now (kept, not logged)")


class SignaturePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    signatory: str
    party: Party
    version: int
    content_hash: str
    signed_at: datetime
    withdrawn_at: datetime | None


class PlanPublic(BaseModel):
    """A plan as callers see it: the newest version and where agreement stands."""

    id: str
    service_user_id: str
    team_id: str
    status: PlanStatus
    entered_in_error_reason: ErrorReason | None = Field(
        None, description="Why the plan was marked entered-in-error (null otherwise)")
    version: int
    content_hash: str
    content: PlanContent
    required_parties: list[Party]
    signatures: list[SignaturePublic] = Field(description="Standing and withdrawn signatures "
                                                          "of this version")
    active_version: int | None
    agreed_at: datetime | None
    review_on: date | None
    not_individualised: bool = Field(description="Nothing in it is specific to the person")
    created_by: str
    created_at: datetime
    updated_at: datetime


class ActivePlan(BaseModel):
    """The agreed version a crisis team acts on."""

    plan_id: str
    service_user_id: str
    team_id: str
    version: int
    content_hash: str
    content: PlanContent
    signatures: list[SignaturePublic]
    agreed_at: datetime
    review_on: date | None
    newer_draft: bool = Field(description="A newer version waits for agreement")


class VersionPublic(BaseModel):
    plan_id: str
    version: int
    recorded_at: datetime
    recorded_by: str
    content_hash: str
    content: PlanContent
    signatures: list[SignaturePublic]


class BreakGlassPublic(BaseModel):
    access_id: str
    plan: ActivePlan


class OverdueReview(BaseModel):
    plan_id: str
    service_user_id: str
    review_on: date
    days_overdue: int
    status: PlanStatus
    not_individualised: bool


class OverdueReviews(BaseModel):
    team_id: str
    as_of: date
    items: list[OverdueReview]
    truncated: bool


class BatchRead(_Strict):
    """Active plans of many service users in one call (the gateway's DataLoader), and, when
    ``limit_per_person`` asks for them, the first page of each one's plans."""

    service_user_ids: list[PersonId] = Field(min_length=1, max_length=100)
    limit_per_person: int = Field(
        default=0, ge=0, le=200,
        description="Also each person's newest plans, as many as this (0: the active plan "
                    "only), as GET /v1/people/{id}/crisis-plans lists them")

    @field_validator("service_user_ids")
    @classmethod
    def _distinct_people(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class PersonPlan(BaseModel):
    service_user_id: str
    active_plan: ActivePlan | None
    plans: list[PlanPublic] | None = Field(
        default=None, description="Their newest plans, when limit_per_person asks for them")
    truncated: bool = Field(default=False, description="More plans exist than the limit")
    next_cursor: str | None = Field(
        default=None,
        description="Where their plans list (GET /v1/people/{id}/crisis-plans) goes on after "
                    "the last one here")


class BatchReadResult(BaseModel):
    results: list[PersonPlan]


class OptionConsidered(_Strict):
    option: Item
    what_it_offers: Item | None = None
    what_it_costs: Item | None = None


class MedicationDecisionCreate(_Strict):
    """A shared decision on medication, in the person's voice (CommonGround)."""

    question: Item
    options_considered: list[OptionConsidered] = Field(min_length=1, max_length=SHORT_LIST)
    what_matters_to_me: Item = Field(description="The person's power statement")
    clinician_information: Item
    decision_in_my_words: Item
    one_thing_i_will_do: Item
    review_on: date
    revisits: Annotated[str, StringConstraints(min_length=1, max_length=36)] | None = Field(
        None, description="At a review: the earlier decision on this plan that this one "
                          "revisits (it then stands no longer)")
    how_it_went_in_my_words: Item | None = Field(
        None, description="At a review: how the earlier decision went, in the person's words")

    @model_validator(mode="after")
    def _review_says_how_it_went(self) -> "MedicationDecisionCreate":
        if (self.revisits is None) != (self.how_it_went_in_my_words is None):
            raise ValueError("a review gives both revisits (the earlier decision) and "
                             "how_it_went_in_my_words; a first decision gives neither")
        return self


class DecisionReviewDue(BaseModel):
    decision_id: str
    plan_id: str
    service_user_id: str
    review_on: date
    days_overdue: int = Field(description="0 when the review date is today")


class DecisionReviewsDue(BaseModel):
    """A team's shared decisions on medication whose review date has come, and that no later
    decision has revisited yet, most overdue first."""

    team_id: str
    as_of: date
    items: list[DecisionReviewDue]
    truncated: bool = Field(description="More are due than the limit let through")


class MedicationDecisionPublic(MedicationDecisionCreate):
    id: str
    plan_id: str
    recorded_by: str
    recorded_at: datetime
    revisited_by: str | None = Field(
        None, description="The later decision that reviewed this one; null while it stands")
