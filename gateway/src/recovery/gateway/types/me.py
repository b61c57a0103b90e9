"""Me: the signed-in person, as their token says, with what they may reach."""

import strawberry

from recovery.gateway.context import GatewayContext
from recovery.gateway.types.arguments import After, First
from recovery.gateway.types.connection import Connection, service_list
from recovery.gateway.types.enums import Role
from recovery.gateway.types.records import Enrolment
from recovery.gateway.types.service_user import ServiceUser
from recovery.gateway.types.team import Team


@strawberry.type(description="The signed-in person. A service user finds their own records "
                             "under `serviceUser`; staff find their teams.")
class Me:
    sub: strawberry.ID = strawberry.field(description="Their id at the identity provider.")
    roles: list[Role] = strawberry.field(description="Their roles.")
    team_ids: list[strawberry.ID] = strawberry.field(description="The teams their token "
                                                                 "names.")
    person_id: strawberry.ID | None = strawberry.field(
        description="The service user they are, or act for.")

    @strawberry.field(description="Their own goals, crisis plan and risk co-assessments.")
    def service_user(self) -> ServiceUser | None:
        return ServiceUser(local_id=self.person_id) if self.person_id else None

    @strawberry.field(description="Their courses: enrolments, places and completions, "
                                  "oldest first.")
    async def enrolments(self, info: strawberry.Info[GatewayContext, None],
                         first: First = None, after: After = None
                         ) -> Connection[Enrolment] | None:
        learner = str(self.person_id or self.sub)
        return await service_list(info.context, "training", "/v1/enrolments",
                                  Enrolment.from_service, first, after,
                                  {"learner_id": learner})

    @strawberry.field(description="Their teams (staff).")
    async def teams(self, info: strawberry.Info[GatewayContext, None]) -> list[Team | None]:
        loaded = await info.context.loaders.team.load_many([str(t) for t in self.team_ids])
        return [Team.from_service(t) if isinstance(t, dict) else None for t in loaded]
