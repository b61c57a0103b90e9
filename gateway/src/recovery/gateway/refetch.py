"""`node(id:)` and `nodes(ids:)`: a record read back by its global id, from the service that
owns it, with the caller's token and the gateway's own checks of the type's read path.

A record the caller may not read answers exactly as one that does not exist (NOT_FOUND, one
message), so an id never tells whether another team's person has a record."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import strawberry

from recovery.gateway.access import check_person, check_team
from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.types.course import Course, CourseRun
from recovery.gateway.types.crisis_plan import CrisisPlan
from recovery.gateway.types.goal import Goal
from recovery.gateway.types.node import GlobalId, Node
from recovery.gateway.types.records import Enrolment
from recovery.gateway.types.risk_assessment import RiskAssessment
from recovery.gateway.types.service_user import ServiceUser
from recovery.gateway.types.staff_member import FoundationEnrolments, StaffMember
from recovery.gateway.types.team import Team, asks_for
from recovery.gateway.upstream import segment

#: The most records one `nodes` reads.
MAX_NODES = 100
#: What hides a record: it does not exist, or the caller may not read it.
HIDDEN = frozenset({ErrorCode.not_found, ErrorCode.forbidden})


def not_found() -> GatewayError:
    return GatewayError(ErrorCode.not_found, "No record has this id, or none you may read.")


async def _read(context: GatewayContext, service: str, path: str) -> dict[str, Any]:
    body: dict[str, Any] = (await context.call(service, "GET", path)).body
    return body


async def _goal(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    body = await _read(context, "goals", f"/v1/goals/{segment(local)}")
    check_person(context.principal, str(body["service_user_id"]))
    return Goal.from_service(body)


async def _crisis_plan(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    body = await _read(context, "crisis-plans", f"/v1/crisis-plans/{segment(local)}")
    check_person(context.principal, str(body["service_user_id"]))
    return CrisisPlan.from_plan(body)


async def _risk_assessment(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    body = await _read(context, "risk", f"/v1/risk-assessments/{segment(local)}")
    check_person(context.principal, str(body["service_user_id"]))
    return RiskAssessment.from_service(body)


async def _course(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    return Course.from_service(await _read(context, "training",
                                           f"/v1/courses/{segment(local)}"))


async def _course_run(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    return CourseRun.from_service(await _read(context, "training",
                                              f"/v1/runs/{segment(local)}"))


async def _enrolment(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    return Enrolment.from_service(await _read(context, "training",
                                              f"/v1/enrolments/{segment(local)}"))


async def _team(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    check_team(context.principal, local)
    return Team.from_service(await context.loaders.team.load(local))


async def _staff_member(context: GatewayContext, local: str,
                        selections: Sequence[Any]) -> Node:
    """As a team's staff list gives them: staff of the team (and partner systems)."""
    body = await _read(context, "workforce", f"/v1/staff/{segment(local)}")
    team = str(body["team_id"])
    check_team(context.principal, team)
    foundation: FoundationEnrolments | None = None
    if asks_for(selections, "trainingStatus"):
        try:
            foundation = await context.loaders.foundation_enrolments(team)
        except GatewayError as error:
            foundation = error
    return StaffMember.from_service(body, context.principal, foundation)


async def _service_user(context: GatewayContext, local: str, _: Sequence[Any]) -> Node:
    check_person(context.principal, local)
    return ServiceUser(local_id=strawberry.ID(local))


#: How each Node type is read back: the same checks and service calls as its own read path.
READERS: dict[str, Callable[[GatewayContext, str, Sequence[Any]], Awaitable[Node]]] = {
    "Goal": _goal, "CrisisPlan": _crisis_plan, "RiskAssessment": _risk_assessment,
    "Course": _course, "CourseRun": _course_run, "Enrolment": _enrolment, "Team": _team,
    "StaffMember": _staff_member, "ServiceUser": _service_user,
}


async def read_node(context: GatewayContext, id: str, selections: Sequence[Any]) -> Node:
    """The record ``id`` names, or NOT_FOUND (also when the caller may not read it)."""
    found = GlobalId.decode(id)
    try:
        return await READERS[found.type_name](context, found.local_id, selections)
    except GatewayError as error:
        if error.code in HIDDEN:
            raise not_found() from None
        raise


async def read_nodes(context: GatewayContext, ids: Sequence[str],
                     selections: Sequence[Any]) -> list[Node | GatewayError]:
    """Each record in the order asked, read in parallel; in place of one that cannot be
    read, its error (the list answers it as that item's null with an error)."""
    if len(ids) > MAX_NODES:
        raise GatewayError(ErrorCode.invalid, f"Ask for at most {MAX_NODES} ids at once.")
    distinct = list(dict.fromkeys(ids))
    answers = await asyncio.gather(*(read_node(context, i, selections) for i in distinct),
                                   return_exceptions=True)
    by_id: dict[str, Node | GatewayError] = {}
    for asked, answer in zip(distinct, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, GatewayError):
            raise answer
        by_id[asked] = answer
    return [by_id[i] for i in ids]
