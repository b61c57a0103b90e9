"""ServiceUser: one person's goals, crisis plan and risk co-assessments, fetched in parallel;
lists page by the services' own cursors, the active plan and counts come through the
per-request DataLoaders."""

from functools import partial
from typing import Annotated, Any

import strawberry

from recovery.gateway.context import GatewayContext
from recovery.gateway.loaders import PersonRecords
from recovery.gateway.types.arguments import After, First
from recovery.gateway.types.connection import Connection, first_page, service_list
from recovery.gateway.types.crisis_plan import CrisisPlan
from recovery.gateway.types.enums import GoalLifecycleStatus
from recovery.gateway.types.goal import Goal
from recovery.gateway.types.node import Node
from recovery.gateway.types.risk_assessment import RiskAssessment
from recovery.gateway.upstream import segment

LifecycleStatuses = Annotated[list[GoalLifecycleStatus] | None, strawberry.argument(
    description="Only goals in these FHIR lifecycle statuses (e.g. PROPOSED, ACTIVE).")]


@strawberry.type(description="A person who uses services, identified by the EHR's patient "
                             "id. Each field comes from the service that owns it; one that "
                             "cannot be read is null with an error, the others still arrive.")
class ServiceUser(Node):

    @strawberry.field(description="Their goals, newest first.")
    async def goals(self, info: strawberry.Info[GatewayContext, None],
                    first: First = None, after: After = None,
                    lifecycle_status: LifecycleStatuses = None) -> Connection[Goal] | None:
        person = str(self.local_id)
        params: dict[str, Any] = {"service_user_id": person}
        if lifecycle_status:
            params["status"] = lifecycle_status
            return await service_list(info.context, "goals", "/v1/goals", Goal.from_service,
                                      first, after, params)

        async def count() -> int:
            return await _count(info, await info.context.loaders.goals_of_person.load(person),
                                "goals", "/v1/goals", params)

        if after is None and first != 0:
            # Many people's first pages (a caseload) come in one batch call.
            return await first_page(
                lambda size: info.context.loaders.first_goals.load((person, size)),
                Goal.from_service, first, count)
        return await service_list(info.context, "goals", "/v1/goals", Goal.from_service,
                                  first, after, params, count)

    @strawberry.field(description="The agreed crisis plan a crisis team acts on, if any.")
    async def active_crisis_plan(self, info: strawberry.Info[GatewayContext, None]
                                 ) -> CrisisPlan | None:
        plan = await info.context.loaders.active_plan_of_person.load(str(self.local_id))
        return CrisisPlan.from_active(plan) if plan else None

    @strawberry.field(description="Their crisis plans, newest first, each as it stands (its "
                                  "newest version: agreed, a draft waiting for signatures, "
                                  "or withdrawn); those entered in error are left out.")
    async def crisis_plans(self, info: strawberry.Info[GatewayContext, None],
                           first: First = None, after: After = None
                           ) -> Connection[CrisisPlan] | None:
        if after is None and first != 0:
            person = str(self.local_id)
            return await first_page(
                lambda size: info.context.loaders.first_crisis_plans.load((person, size)),
                CrisisPlan.from_plan, first, partial(_count_plans, info, person))
        return await service_list(info.context, "crisis-plans",
                                  f"/v1/people/{segment(self.local_id)}/crisis-plans",
                                  CrisisPlan.from_plan, first, after)

    @strawberry.field(description="Their risk co-assessments, newest first.")
    async def risk_assessments(self, info: strawberry.Info[GatewayContext, None],
                               first: First = None, after: After = None
                               ) -> Connection[RiskAssessment] | None:
        person = str(self.local_id)
        params: dict[str, Any] = {"service_user_id": person}

        async def count() -> int:
            held = await info.context.loaders.risk_assessments_of_person.load(person)
            return await _count(info, held, "risk", "/v1/risk-assessments", params)

        if after is None and first != 0:
            return await first_page(
                lambda size: info.context.loaders.first_risk_assessments.load((person, size)),
                RiskAssessment.from_service, first, count)
        return await service_list(info.context, "risk", "/v1/risk-assessments",
                                  RiskAssessment.from_service, first, after, params, count)


async def _count(info: strawberry.Info[GatewayContext, None], held: PersonRecords,
                 service: str, path: str, params: dict[str, Any]) -> int:
    """How many records the person has: the batch read's, or, when they have more than a
    batch holds, their whole list read through."""
    if not held.truncated:
        return len(held.records)
    return len(await info.context.every_item(service, path, params))


async def _count_plans(info: strawberry.Info[GatewayContext, None], person: str) -> int:
    """How many plans in use the person has that the caller may read: their list read
    through (asked only when the first page does not hold them all)."""
    return len(await info.context.every_item("crisis-plans",
                                             f"/v1/people/{segment(person)}/crisis-plans"))
