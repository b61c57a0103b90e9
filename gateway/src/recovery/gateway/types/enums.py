"""Every closed set of values in the schema, as a GraphQL enum (names in UPPER_SNAKE, as
GraphQL has them) whose values are the services' own.

Because each member's value is the text its service sends, a builder passes the service's
value as it is and GraphQL answers the member's name; an argument or input arrives as the
member, which is the service's text wherever it is sent on. A test holds each enum to the
values its service can produce."""

from enum import StrEnum

import strawberry


@strawberry.enum(description="A life goal, or a therapeutic goal that serves one.")
class GoalKind(StrEnum):
    LIFE = "life"
    THERAPEUTIC = "therapeutic"


@strawberry.enum(description="The area of life a goal belongs to.")
class LifeArea(StrEnum):
    WORK_AND_EDUCATION = "work_and_education"
    HOME = "home"
    RELATIONSHIPS_AND_CONNECTION = "relationships_and_connection"
    PHYSICAL_HEALTH = "physical_health"
    MENTAL_WELLBEING = "mental_wellbeing"
    MONEY = "money"
    LEISURE_AND_CREATIVITY = "leisure_and_creativity"
    SPIRITUALITY_AND_MEANING = "spirituality_and_meaning"
    IDENTITY = "identity"
    COMMUNITY_AND_CITIZENSHIP = "community_and_citizenship"


@strawberry.enum(description="The CHIME recovery processes (connectedness, hope, identity, "
                             "meaning, empowerment).")
class ChimeTag(StrEnum):
    CONNECTEDNESS = "connectedness"
    HOPE = "hope"
    IDENTITY = "identity"
    MEANING = "meaning"
    EMPOWERMENT = "empowerment"


@strawberry.enum(description="Whose words a goal is in.")
class ExpressedBy(StrEnum):
    SERVICE_USER = "service_user"
    STAFF = "staff"


@strawberry.enum(description="FHIR R4 Goal.lifecycleStatus.")
class GoalLifecycleStatus(StrEnum):
    PROPOSED = "proposed"
    PLANNED = "planned"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"
    REJECTED = "rejected"


@strawberry.enum(description="FHIR R4 Goal.achievementStatus.")
class GoalAchievementStatus(StrEnum):
    IN_PROGRESS = "in-progress"
    IMPROVING = "improving"
    WORSENING = "worsening"
    NO_CHANGE = "no-change"
    ACHIEVED = "achieved"
    SUSTAINING = "sustaining"
    NOT_ACHIEVED = "not-achieved"
    NO_PROGRESS = "no-progress"
    NOT_ATTAINABLE = "not-attainable"


@strawberry.enum(description="Where a crisis plan's version stands.")
class CrisisPlanStatus(StrEnum):
    DRAFT = "draft"
    AGREED = "agreed"
    WITHDRAWN = "withdrawn"
    ENTERED_IN_ERROR = "entered-in-error"


@strawberry.enum(description="The part a signatory plays in agreeing a version: a crisis "
                             "plan's service user, care coordinator or psychiatrist; a risk "
                             "co-assessment's service user or clinician.")
class SigningParty(StrEnum):
    SERVICE_USER = "service_user"
    CARE_COORDINATOR = "care_coordinator"
    PSYCHIATRIST = "psychiatrist"
    CLINICIAN = "clinician"


@strawberry.enum(description="Where a risk co-assessment stands.")
class RiskAssessmentStatus(StrEnum):
    DRAFT = "draft"
    AGREED = "agreed"
    AGREED_WITH_DIFFERENCES = "agreed-with-differences"
    AGREEMENT_WITHDRAWN = "agreement-withdrawn"
    ENTERED_IN_ERROR = "entered-in-error"


@strawberry.enum(description="Whether a co-assessment's latest version is agreed.")
class RiskAssessmentVersionStatus(StrEnum):
    DRAFT = "draft"
    AGREED = "agreed"
    AGREED_WITH_DIFFERENCES = "agreed-with-differences"


@strawberry.enum(description="An area of safety talked through together.")
class RiskArea(StrEnum):
    SAFETY_OF_SELF = "safety_of_self"
    SAFETY_FROM_OTHERS = "safety_from_others"
    SAFETY_OF_OTHERS = "safety_of_others"
    SELF_NEGLECT = "self_neglect"
    PHYSICAL_HEALTH = "physical_health"
    SUBSTANCES = "substances"
    OTHER = "other"


@strawberry.enum(description="Where a learner's enrolment stands.")
class EnrolmentStatus(StrEnum):
    ENROLLED = "enrolled"
    WAITING = "waiting"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


@strawberry.enum(description="Where a member of staff stands with the foundation course: an "
                             "enrolment's status, or not enrolled at all.")
class FoundationTrainingStatus(StrEnum):
    ENROLLED = "enrolled"
    WAITING = "waiting"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    NOT_ENROLLED = "not-enrolled"


@strawberry.enum(description="Who a learner is.")
class LearnerKind(StrEnum):
    STAFF = "staff"
    SERVICE_USER = "service_user"
    CARER = "carer"


@strawberry.enum(description="Who a course is for.")
class Audience(StrEnum):
    STAFF = "staff"
    SERVICE_USER = "service_user"
    CARER = "carer"


@strawberry.enum(description="A member of staff's profession.")
class Profession(StrEnum):
    NURSING = "nursing"
    PSYCHIATRY = "psychiatry"
    PSYCHOLOGY = "psychology"
    OCCUPATIONAL_THERAPY = "occupational_therapy"
    SOCIAL_WORK = "social_work"
    PEER_SUPPORT = "peer_support"
    SUPPORT_WORK = "support_work"
    EDUCATION = "education"
    MANAGEMENT = "management"
    ADMINISTRATION = "administration"
    OTHER = "other"


@strawberry.enum(description="The kind of role a member of staff holds.")
class RoleType(StrEnum):
    PROFESSIONAL = "professional"
    PEER_SPECIALIST = "peer_specialist"
    EDUCATOR = "educator"
    MANAGER = "manager"


@strawberry.enum(description="How care was delivered.")
class CareContactMode(StrEnum):
    INDIVIDUAL = "individual"
    GROUP = "group"


@strawberry.enum(description="A role a token gives its holder.")
class Role(StrEnum):
    SERVICE_USER = "service_user"
    CLINICIAN = "clinician"
    PEER_SPECIALIST = "peer_specialist"
    EDUCATOR = "educator"
    MANAGER = "manager"
    ADMIN = "admin"
    SYSTEM = "system"


@strawberry.enum(description="One of the four interdependent readiness factors.")
class ReadinessFactorName(StrEnum):
    TRAINING = "training"
    SUPERVISION = "supervision"
    LEADERSHIP = "leadership"
    CULTURE = "culture"


@strawberry.enum(description="A readiness score in words.")
class ReadinessLevel(StrEnum):
    READY = "ready"
    DEVELOPING = "developing"
    LOW = "low"
