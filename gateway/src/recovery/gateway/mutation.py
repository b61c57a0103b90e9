"""Commands of each service, with the caller's token and the version they read (`ifMatch`);
refusals come back as typed results (StaleVersion, NotAllowed, Invalid, NotFound).

Every mutation field is nullable: a service that is down or failed leaves its own field null
with a typed error, and never hides what another mutation of the document committed."""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.scalars import JSON

from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import GatewayError
from recovery.gateway.idempotency import IdempotencyKeyArgument, idempotency_key_for
from recovery.gateway.types.arguments import (
    ContentHash,
    IfMatch,
    ServiceUserId,
    TeamId,
    record_id,
)
from recovery.gateway.types.crisis_plan import CrisisPlan
from recovery.gateway.types.enums import (
    CareContactMode,
    GoalAchievementStatus,
    GoalKind,
    LearnerKind,
    LifeArea,
    SigningParty,
)
from recovery.gateway.types.goal import Goal
from recovery.gateway.types.node import local_id
from recovery.gateway.types.outcomes import Invalid, NotAllowed, NotFound, StaleVersion, refusal_of
from recovery.gateway.types.records import CareContact, Enrolment, GoalReview, SupervisionSession
from recovery.gateway.types.risk_assessment import RiskAssessment
from recovery.gateway.upstream import segment

T = TypeVar("T")
Info = strawberry.Info[GatewayContext, None]

GoalResult = Annotated[Goal | StaleVersion | NotAllowed | Invalid | NotFound,
                       strawberry.union("GoalResult", description="The goal, or why not.")]
GoalReviewResult = Annotated[
    GoalReview | StaleVersion | NotAllowed | Invalid | NotFound,
    strawberry.union("GoalReviewResult", description="The review, or why not.")]
CrisisPlanResult = Annotated[
    CrisisPlan | StaleVersion | NotAllowed | Invalid | NotFound,
    strawberry.union("CrisisPlanResult", description="The plan, or why not.")]
RiskAssessmentResult = Annotated[
    RiskAssessment | StaleVersion | NotAllowed | Invalid | NotFound,
    strawberry.union("RiskAssessmentResult", description="The co-assessment, or why not.")]
EnrolmentResult = Annotated[
    Enrolment | StaleVersion | NotAllowed | Invalid | NotFound,
    strawberry.union("EnrolmentResult", description="The enrolment, or why not.")]
CareContactResult = Annotated[
    CareContact | NotAllowed | Invalid | NotFound,
    strawberry.union("CareContactResult", description="The contact, or why not.")]
SupervisionResult = Annotated[
    SupervisionSession | NotAllowed | Invalid | NotFound,
    strawberry.union("SupervisionResult", description="The session, or why not.")]


PlanContent = Annotated[JSON, strawberry.argument(
    description="The plan's sections, as the crisis-plans service documents them.")]
Party = Annotated[SigningParty | None, strawberry.argument(
    description="The party you sign as, when your role could be more than one.")]
BreakGlassReason = Annotated[str, strawberry.argument(
    description="Why you need the plan now (at least 10 characters); kept with the record "
                "of this access.")]
RiskAreas = Annotated[JSON, strawberry.argument(
    description="Each risk area with the person's view, the clinician's and whether they "
                "agree, as the risk service documents them.")]
SafetyPlan = Annotated[JSON | None, strawberry.argument(
    description="The safety plan the person holds, if one is made.")]
LearnerId = Annotated[strawberry.ID | None, strawberry.argument(
    description="Who to enrol (the college); yourself when left out.")]
LearnerKindArgument = Annotated[LearnerKind, strawberry.argument(
    description="Who the learner is.")]
CompletedOn = Annotated[date, strawberry.argument(description="The day they completed it.")]
WHAT_HAPPENED = strawberry.argument(description="What happened.")


def etag(version: int | None) -> str | None:
    return f'"{version}"' if version is not None else None


async def attempt(make: Callable[[], Awaitable[T]]) -> Any:
    """The record, or the typed refusal the service's answer means."""
    try:
        return await make()
    except GatewayError as error:
        return refusal_of(error)


@strawberry.input(description="A new goal: the person's own, or one staff propose.")
class GoalInput:
    service_user_id: strawberry.ID = strawberry.field(description="Whose goal it is.")
    team_id: strawberry.ID = strawberry.field(description="The team supporting it.")
    description: str = strawberry.field(description="The goal in the person's own words.")
    kind: GoalKind = strawberry.field(default=GoalKind.LIFE,
                                      description="A life goal, or a therapeutic one.")
    life_area: LifeArea | None = strawberry.field(default=None,
                                              description="The area of life.")
    why_it_matters: str | None = strawberry.field(default=None,
                                                  description="Why it matters to them.")
    target_date: date | None = strawberry.field(default=None, description="When.")
    serves_goal_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Life goals a therapeutic goal serves.")


@strawberry.input(description="A progress review of a goal.")
class GoalReviewInput:
    achievement_status: GoalAchievementStatus = strawberry.field(
        description="FHIR Goal achievement status.")
    reviewed_on: date | None = strawberry.field(default=None, description="Defaults to today.")
    rating: int | None = strawberry.field(default=None,
                                          description="The person's own rating, 0 to 10.")
    own_words: str | None = strawberry.field(default=None,
                                             description="How it is going, in their words.")


@strawberry.input(description="Care delivered to a service user.")
class CareContactInput:
    staff_id: strawberry.ID = strawberry.field(description="Who delivered the care.")
    service_user_id: strawberry.ID = strawberry.field(description="The EHR's patient id.")
    occurred_on: date = strawberry.field(description="When.")
    minutes: int = strawberry.field(description="How long, 1 to 720.")
    mode: CareContactMode = strawberry.field(default=CareContactMode.INDIVIDUAL,
                                             description="One person, or a group.")


@strawberry.input(description="A supervision session.")
class SupervisionInput:
    staff_id: strawberry.ID = strawberry.field(description="Who was supervised.")
    supervisor_id: strawberry.ID = strawberry.field(description="Who supervised.")
    held_on: date = strawberry.field(description="When.")
    recovery_focused: bool = strawberry.field(description="Whether it was recovery-focused.")
    quality: int = strawberry.field(description="1 poor to 5 excellent.")
    peer_supervision: bool = strawberry.field(default=False,
                                              description="Peer supervision for peer staff.")


def _body(value: object) -> dict[str, Any]:
    """An input as the service's JSON: snake_case keys, dates as text, unset left out."""
    out: dict[str, Any] = {}
    for key, item in vars(value).items():
        if item is None:
            continue
        out[key] = item.isoformat() if isinstance(item, date) else item
    return out


@strawberry.type(description="Changes, each the command of the service that owns the record.")
class Mutation:
    @strawberry.mutation(description="Write a goal (the person) or propose one (staff); a "
                                     "proposed goal waits for the person to accept it.")
    async def propose_goal(self, info: Info,
                           input: Annotated[GoalInput, strawberry.argument(
                               description="The goal.")],
                           idempotency_key: IdempotencyKeyArgument = None) -> GoalResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> Goal:
            answer = await info.context.call("goals", "POST", "/v1/goals", json=_body(input),
                                             idempotency_key=key)
            return Goal.from_service(answer.body)
        result: GoalResult = await attempt(run)
        return result

    @strawberry.mutation(description="The person accepts a proposed goal; it becomes active.")
    async def accept_goal(self, info: Info, id: Annotated[strawberry.ID, record_id("goal")],
                          if_match: IfMatch) -> GoalResult | None:
        async def run() -> Goal:
            goal = local_id(id, "Goal")
            answer = await info.context.call("goals", "POST", f"/v1/goals/{goal}/accept",
                                             json={}, if_match=etag(if_match))
            return Goal.from_service(answer.body)
        result: GoalResult = await attempt(run)
        return result

    @strawberry.mutation(description="Record a progress review of a goal.")
    async def review_goal(self, info: Info, id: Annotated[strawberry.ID, record_id("goal")],
                          if_match: IfMatch,
                          input: Annotated[GoalReviewInput, strawberry.argument(
                              description="The review.")],
                          idempotency_key: IdempotencyKeyArgument = None
                          ) -> GoalReviewResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> GoalReview:
            goal = local_id(id, "Goal")
            answer = await info.context.call("goals", "POST", f"/v1/goals/{goal}/reviews",
                                             json=_body(input), if_match=etag(if_match),
                                             idempotency_key=key)
            return GoalReview.from_service(answer.body)
        result: GoalReviewResult = await attempt(run)
        return result

    @strawberry.mutation(description="Draft a joint crisis plan (its sections as the "
                                     "crisis-plans service documents them).")
    async def draft_crisis_plan(self, info: Info, service_user_id: ServiceUserId,
                                team_id: TeamId, content: PlanContent,
                                idempotency_key: IdempotencyKeyArgument = None
                                ) -> CrisisPlanResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> CrisisPlan:
            body = {**(content if isinstance(content, dict) else {}),
                    "service_user_id": service_user_id, "team_id": team_id}
            answer = await info.context.call("crisis-plans", "POST", "/v1/crisis-plans",
                                             json=body, idempotency_key=key)
            return CrisisPlan.from_plan(answer.body)
        result: CrisisPlanResult = await attempt(run)
        return result

    @strawberry.mutation(description="Sign the version you read (bound to its content hash); "
                                     "once every required party has, the plan is agreed.")
    async def sign_crisis_plan(self, info: Info, id: Annotated[strawberry.ID, record_id("plan")],
                               if_match: IfMatch, content_hash: ContentHash,
                               party: Party = None
                               ) -> CrisisPlanResult | None:
        async def run() -> CrisisPlan:
            body: dict[str, Any] = {"content_hash": content_hash}
            if party:
                body["party"] = party
            plan = local_id(id, "CrisisPlan")
            answer = await info.context.call("crisis-plans", "POST",
                                             f"/v1/crisis-plans/{plan}/signatures",
                                             json=body, if_match=etag(if_match))
            return CrisisPlan.from_plan(answer.body)
        result: CrisisPlanResult = await attempt(run)
        return result

    @strawberry.mutation(description="The person withdraws their agreement to their plan.")
    async def withdraw_crisis_plan(self, info: Info,
                                   id: Annotated[strawberry.ID, record_id("plan")],
                                   if_match: IfMatch) -> CrisisPlanResult | None:
        async def run() -> CrisisPlan:
            plan = local_id(id, "CrisisPlan")
            answer = await info.context.call("crisis-plans", "POST",
                                             f"/v1/crisis-plans/{plan}/withdraw-agreement",
                                             json={}, if_match=etag(if_match))
            return CrisisPlan.from_plan(answer.body)
        result: CrisisPlanResult = await attempt(run)
        return result

    @strawberry.mutation(description="A crisis-team clinician reads a person's active plan "
                                     "outside their own teams, saying why (kept and audited "
                                     "by the crisis-plans service, and announced).")
    async def break_glass(self, info: Info, service_user_id: ServiceUserId,
                          reason: BreakGlassReason) -> CrisisPlanResult | None:
        async def run() -> CrisisPlan:
            answer = await info.context.call(
                "crisis-plans", "POST",
                f"/v1/people/{segment(service_user_id)}/crisis-plan:break-glass",
                json={"reason": reason})
            return CrisisPlan.from_active(answer.body["plan"])
        result: CrisisPlanResult = await attempt(run)
        return result

    @strawberry.mutation(description="Record both views of each risk area (and a safety "
                                     "plan) as a new co-assessment, a draft to agree.")
    async def record_risk_views(self, info: Info, service_user_id: ServiceUserId,
                                team_id: TeamId, areas: RiskAreas,
                                safety_plan: SafetyPlan = None,
                                idempotency_key: IdempotencyKeyArgument = None
                                ) -> RiskAssessmentResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> RiskAssessment:
            body: dict[str, Any] = {"service_user_id": service_user_id, "team_id": team_id,
                                    "areas": areas}
            if safety_plan is not None:
                body["safety_plan"] = safety_plan
            answer = await info.context.call("risk", "POST", "/v1/risk-assessments",
                                             json=body, idempotency_key=key)
            return RiskAssessment.from_service(answer.body)
        result: RiskAssessmentResult = await attempt(run)
        return result

    @strawberry.mutation(description="Agree (sign) the version of a co-assessment you read.")
    async def agree_risk_assessment(self, info: Info,
                                    id: Annotated[strawberry.ID, record_id("co-assessment")],
                                    if_match: IfMatch,
                                    content_hash: ContentHash) -> RiskAssessmentResult | None:
        async def run() -> RiskAssessment:
            assessment = local_id(id, "RiskAssessment")
            answer = await info.context.call("risk", "POST",
                                             f"/v1/risk-assessments/{assessment}/signatures",
                                             json={"content_hash": content_hash},
                                             if_match=etag(if_match))
            return RiskAssessment.from_service(answer.body)
        result: RiskAssessmentResult = await attempt(run)
        return result

    @strawberry.mutation(description="Enrol on a run of a course (yourself, or anyone for "
                                     "the college).")
    async def enrol_on_course(self, info: Info, run_id: Annotated[strawberry.ID, record_id("run")],
                              learner_id: LearnerId = None,
                              learner_kind: LearnerKindArgument = LearnerKind.STAFF,
                              idempotency_key: IdempotencyKeyArgument = None
                              ) -> EnrolmentResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> Enrolment:
            body: dict[str, Any] = {"learner_kind": learner_kind}
            if learner_id:
                body["learner_id"] = learner_id
            course_run = local_id(run_id, "CourseRun")
            answer = await info.context.call("training", "POST",
                                             f"/v1/runs/{course_run}/enrolments", json=body,
                                             idempotency_key=key)
            return Enrolment.from_service(answer.body)
        result: EnrolmentResult = await attempt(run)
        return result

    @strawberry.mutation(description="Record that a learner completed a course (the college).")
    async def complete_course(self, info: Info,
                              enrolment_id: Annotated[strawberry.ID, record_id("enrolment")],
                              completed_on: CompletedOn) -> EnrolmentResult | None:
        async def run() -> Enrolment:
            enrolment = local_id(enrolment_id, "Enrolment")
            answer = await info.context.call("training", "POST",
                                             f"/v1/enrolments/{enrolment}/completion",
                                             json={"completed_on": completed_on.isoformat()})
            return Enrolment.from_service(answer.body)
        result: EnrolmentResult = await attempt(run)
        return result

    @strawberry.mutation(description="Log care delivered (counts toward the peer share).")
    async def log_care_contact(self, info: Info,
                               input: Annotated[CareContactInput, WHAT_HAPPENED],
                               idempotency_key: IdempotencyKeyArgument = None
                               ) -> CareContactResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> CareContact:
            answer = await info.context.call("workforce", "POST", "/v1/care-contacts",
                                             json=_body(input), idempotency_key=key)
            return CareContact.from_service(answer.body)
        result: CareContactResult = await attempt(run)
        return result

    @strawberry.mutation(description="Record a supervision session.")
    async def record_supervision(self, info: Info,
                                 input: Annotated[SupervisionInput, WHAT_HAPPENED],
                                 idempotency_key: IdempotencyKeyArgument = None
                                 ) -> SupervisionResult | None:
        key = idempotency_key_for(info, idempotency_key)

        async def run() -> SupervisionSession:
            answer = await info.context.call("workforce", "POST", "/v1/supervision-sessions",
                                             json=_body(input), idempotency_key=key)
            return SupervisionSession.from_service(answer.body)
        result: SupervisionResult = await attempt(run)
        return result
