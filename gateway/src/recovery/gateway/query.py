"""The entry points front-ends start from."""

from typing import Annotated, Any

import strawberry

from recovery.gateway.access import check_person, check_team
from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.refetch import MAX_NODES, read_node, read_nodes
from recovery.gateway.types.arguments import After, First, record_id
from recovery.gateway.types.connection import Connection, service_list
from recovery.gateway.types.course import Course
from recovery.gateway.types.enums import Role
from recovery.gateway.types.me import Me
from recovery.gateway.types.node import Node, local_id
from recovery.gateway.types.service_user import ServiceUser
from recovery.gateway.types.team import Team

#: The most service users one ``serviceUsers`` asks for (a services' batch read's size).
MAX_PEOPLE = 100
ServiceUserIds = Annotated[list[strawberry.ID], strawberry.argument(
    description="The service users, by their global `id`s or the EHR's patient ids (at "
                "most 100).")]
NodeId = Annotated[strawberry.ID, strawberry.argument(
    description="A record's global `id`, as this API gave it.")]
NodeIds = Annotated[list[strawberry.ID], strawberry.argument(
    description=f"Records' global `id`s, as this API gave them (at most {MAX_NODES}).")]


@strawberry.type(description="Reads across the platform.")
class Query:
    @strawberry.field(description="The signed-in person.")
    def me(self, info: strawberry.Info[GatewayContext, None]) -> Me:
        principal = info.context.principal
        person = principal.own_person()
        return Me(sub=strawberry.ID(principal.sub),
                  roles=[Role(role) for role in sorted(principal.roles)],
                  team_ids=[strawberry.ID(t) for t in sorted(principal.teams)],
                  person_id=strawberry.ID(person) if person else None)

    @strawberry.field(description="A service user's records, as far as the caller may read "
                                  "them. A service user may ask only for themselves.")
    def service_user(self, info: strawberry.Info[GatewayContext, None],
                     id: Annotated[strawberry.ID, record_id("service user")]
                     ) -> ServiceUser | None:
        person = local_id(id, "ServiceUser")
        check_person(info.context.principal, person)
        return ServiceUser(local_id=strawberry.ID(person))

    @strawberry.field(description="Several service users' records at once, in the order "
                                  "asked (a caseload, as the EHR lists it): up to 100 ids, "
                                  "each under the same rules as `serviceUser`. Their lists "
                                  "and plans are read in one batch per service.")
    def service_users(self, info: strawberry.Info[GatewayContext, None],
                      ids: ServiceUserIds) -> list[ServiceUser] | None:
        if len(ids) > MAX_PEOPLE:
            raise GatewayError(ErrorCode.invalid,
                               f"Ask for at most {MAX_PEOPLE} service users at once.")
        people = [local_id(person, "ServiceUser") for person in ids]
        for person in people:
            check_person(info.context.principal, person)
        return [ServiceUser(local_id=strawberry.ID(person)) for person in dict.fromkeys(people)]

    @strawberry.field(description="A team: staff with their training, skill mix, peer share, "
                                  "training coverage and readiness (staff of the team).")
    async def team(self, info: strawberry.Info[GatewayContext, None],
                   id: Annotated[strawberry.ID, record_id("team")]) -> Team | None:
        team = local_id(id, "Team")
        check_team(info.context.principal, team)
        return Team.from_service(await info.context.loaders.team.load(team))

    @strawberry.field(description="The Recovery Education Centre's prospectus.")
    async def prospectus(self, info: strawberry.Info[GatewayContext, None],
                         first: First = None, after: After = None
                         ) -> Connection[Course] | None:
        return await service_list(info.context, "training", "/v1/courses",
                                  Course.from_service, first, after)

    @strawberry.field(description="One course of the prospectus.")
    async def course(self, info: strawberry.Info[GatewayContext, None],
                     id: Annotated[strawberry.ID, record_id("course")]) -> Course | None:
        course = local_id(id, "Course")
        body = (await info.context.call("training", "GET", f"/v1/courses/{course}")).body
        return Course.from_service(body)

    @strawberry.field(description="Any record by its global `id` (Relay's refetch). A record "
                                  "you may not read answers as one that does not exist: "
                                  "null, with NOT_FOUND.")
    async def node(self, info: strawberry.Info[GatewayContext, None],
                   id: NodeId) -> Node | None:
        return await read_node(info.context, str(id), info.selected_fields)

    @strawberry.field(description="Several records by their global `id`s, in the order "
                                  f"asked (at most {MAX_NODES}); each one you may not read, "
                                  "or that does not exist, is null with NOT_FOUND.")
    async def nodes(self, info: strawberry.Info[GatewayContext, None],
                    ids: NodeIds) -> list[Node | None]:
        found: list[Any] = await read_nodes(info.context, [str(i) for i in ids],
                                            info.selected_fields)
        return found
