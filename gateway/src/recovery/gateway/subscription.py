"""Live changes over graphql-transport-ws, fed from NATS. Each event is read back from the
owning service with the subscriber's own token before it is sent, so a subscriber only ever
receives what a direct read would give them."""

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import strawberry

from recovery.common.events.envelope import CloudEvent
from recovery.gateway.access import check_person, check_team
from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.types.arguments import ServiceUserId, TeamId
from recovery.gateway.types.crisis_plan import CrisisPlan
from recovery.gateway.types.goal import Goal
from recovery.gateway.types.risk_assessment import RiskAssessment
from recovery.gateway.types.team import Readiness
from recovery.gateway.upstream import segment

T = TypeVar("T")
Info = strawberry.Info[GatewayContext, None]
#: Events that can move a team's readiness: staff, training, supervision, leads, climate.
READINESS_SOURCES = ("recovery.workforce.", "recovery.training.")
TEAM_KEYS = ("team_id", "previous_team_id")


@strawberry.type(description="A goal of the person changed.")
class GoalChange:
    event_type: str = strawberry.field(description="What happened, e.g. "
                                                   "recovery.goals.goal.accepted.")
    goal: Goal = strawberry.field(description="The goal as it is now.")


@strawberry.type(description="The person's crisis plan changed (drafted, signed, agreed, "
                             "agreement withdrawn, a shared decision on medication recorded "
                             "with it).")
class CrisisPlanChange:
    event_type: str = strawberry.field(description="What happened, e.g. "
                                                   "recovery.crisis-plans.plan.agreed.")
    plan: CrisisPlan = strawberry.field(description="The plan as it is now.")


@strawberry.type(description="The person's risk co-assessment changed.")
class RiskAssessmentChange:
    event_type: str = strawberry.field(description="What happened, e.g. "
                                                   "recovery.risk.assessment.agreed.")
    assessment: RiskAssessment = strawberry.field(description="The co-assessment now.")


@strawberry.type(description="Something that moves the team's readiness happened.")
class ReadinessChange:
    event_type: str = strawberry.field(description="What happened.")
    readiness: Readiness = strawberry.field(description="The team's readiness now.")


def about_person(prefix: str, person: str) -> Callable[[CloudEvent], bool]:
    return lambda e: e.type.startswith(prefix) and e.data.get("service_user_id") == person


async def readable(read: Callable[[], Awaitable[T]]) -> T | None:
    """The record as the subscriber may read it, or None when they may not (or it is gone)."""
    try:
        return await read()
    except GatewayError as error:
        if error.code in {ErrorCode.forbidden, ErrorCode.not_found,
                          ErrorCode.unauthenticated}:
            return None
        raise


@strawberry.type(description="Live changes. Send the bearer token in the connection_init "
                             "payload ({\"Authorization\": \"Bearer …\"}) or the handshake.")
class Subscription:
    @strawberry.subscription(description="Changes to a service user's goals.")
    async def goal_changed(self, info: Info,
                           service_user_id: ServiceUserId) -> AsyncGenerator[GoalChange, None]:
        context = info.context
        check_person(context.principal, str(service_user_id))
        async for event in context.events.events(about_person("recovery.goals.goal.",
                                                            str(service_user_id))):
            goal_id = event.data.get("goal_id") or event.subject

            async def read(goal_id: str = goal_id) -> Goal:
                answer = await context.call("goals", "GET", f"/v1/goals/{segment(goal_id)}")
                return Goal.from_service(answer.body)
            goal = await readable(read)
            if goal is not None:
                yield GoalChange(event_type=event.type, goal=goal)

    @strawberry.subscription(description="Changes to a service user's crisis plan.")
    async def crisis_plan_changed(self, info: Info, service_user_id: ServiceUserId
                                  ) -> AsyncGenerator[CrisisPlanChange, None]:
        context = info.context
        check_person(context.principal, str(service_user_id))
        async for event in context.events.events(about_person("recovery.crisis-plans.",
                                                            str(service_user_id))):
            if event.type.endswith("break-glass.accessed"):
                continue
            plan_id = event.data.get("plan_id") or event.subject

            async def read(plan_id: str = plan_id) -> CrisisPlan:
                answer = await context.call("crisis-plans", "GET",
                                            f"/v1/crisis-plans/{segment(plan_id)}")
                return CrisisPlan.from_plan(answer.body)
            plan = await readable(read)
            if plan is not None:
                yield CrisisPlanChange(event_type=event.type, plan=plan)

    @strawberry.subscription(description="Changes to a service user's risk co-assessments.")
    async def risk_assessment_changed(self, info: Info, service_user_id: ServiceUserId
                                      ) -> AsyncGenerator[RiskAssessmentChange, None]:
        context = info.context
        check_person(context.principal, str(service_user_id))
        async for event in context.events.events(about_person("recovery.risk.assessment.",
                                                            str(service_user_id))):
            assessment_id = event.data.get("assessment_id") or event.subject

            async def read(assessment_id: str = assessment_id) -> RiskAssessment:
                answer = await context.call("risk", "GET",
                                            f"/v1/risk-assessments/{segment(assessment_id)}")
                return RiskAssessment.from_service(answer.body)
            assessment = await readable(read)
            if assessment is not None:
                yield RiskAssessmentChange(event_type=event.type, assessment=assessment)

    @strawberry.subscription(description="A team's readiness, each time something that "
                                         "moves it happens.")
    async def team_readiness_changed(self, info: Info, team_id: TeamId
                                     ) -> AsyncGenerator[ReadinessChange, None]:
        context = info.context
        check_team(context.principal, str(team_id))
        team = str(team_id)

        def wanted(event: CloudEvent) -> bool:
            return event.type.startswith(READINESS_SOURCES) and any(
                event.data.get(key) == team for key in TEAM_KEYS)

        async for event in context.events.events(wanted):
            async def read() -> Readiness:
                answer = await context.call("workforce", "GET",
                                            f"/v1/teams/{segment(team)}/readiness")
                return Readiness.from_service(answer.body)
            readiness = await readable(read)
            if readiness is not None:
                yield ReadinessChange(event_type=event.type, readiness=readiness)
