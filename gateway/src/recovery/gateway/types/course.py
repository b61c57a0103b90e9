"""Course and CourseRun: the Recovery Education Centre's prospectus (the training service)."""

from datetime import date
from typing import Any

import strawberry

from recovery.gateway.context import GatewayContext
from recovery.gateway.types.arguments import After, First
from recovery.gateway.types.connection import Connection, first_page, service_list
from recovery.gateway.types.enums import Audience
from recovery.gateway.types.node import Node
from recovery.gateway.types.values import to_date
from recovery.gateway.upstream import segment


@strawberry.type(description="One run of a course, co-delivered by an educator with lived "
                             "experience and one other.")
class CourseRun(Node):
    course_id: strawberry.ID = strawberry.field(description="The course it runs.")
    starts_on: date = strawberry.field(description="First day.")
    ends_on: date = strawberry.field(description="Last day.")
    place: str | None = strawberry.field(description="Where it meets, if in person.")
    online: bool = strawberry.field(description="Held online.")
    capacity: int = strawberry.field(description="Places in all.")
    places_taken: int = strawberry.field(description="Places taken.")
    waiting: int = strawberry.field(description="People on the waiting list.")
    facilitator_ids: list[strawberry.ID] = strawberry.field(description="Its educators.")

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "CourseRun":
        return cls(
            local_id=strawberry.ID(data["id"]), course_id=strawberry.ID(data["course_id"]),
            starts_on=to_date(data["starts_on"]),  # type: ignore[arg-type]
            ends_on=to_date(data["ends_on"]),  # type: ignore[arg-type]
            place=data.get("place"), online=bool(data.get("online")),
            capacity=int(data["capacity"]), places_taken=int(data.get("places_taken") or 0),
            waiting=int(data.get("waiting") or 0),
            facilitator_ids=[strawberry.ID(i) for i in data.get("facilitator_ids") or []],
        )


@strawberry.type(description="A course of the prospectus: co-produced, open to staff, "
                             "service users and carers.")
class Course(Node):
    title: str = strawberry.field(description="Its title.")
    summary: str = strawberry.field(description="What it is about.")
    learning_outcomes: list[str] = strawberry.field(description="What learners take away.")
    audience: list[Audience] = strawberry.field(description="Who it is for.")
    co_produced_with: list[str] = strawberry.field(description="Who made it together.")
    foundation: bool = strawberry.field(description="The foundation course on recovery "
                                                    "principles.")
    required_for_all_staff: bool = strawberry.field(description="Every member of staff takes "
                                                                "it.")

    @strawberry.field(description="The course's runs, in the order they were scheduled.")
    async def runs(self, info: strawberry.Info[GatewayContext, None], first: First = None,
                   after: After = None) -> Connection[CourseRun]:
        path = f"/v1/courses/{segment(self.local_id)}/runs"
        if after is None and first != 0:
            # Under the prospectus: every course's first runs in one call.
            async def every_run() -> int:
                return len(await info.context.every_item("training", path))

            return await first_page(
                lambda size: info.context.loaders.first_runs.load((str(self.local_id), size)),
                CourseRun.from_service, first, every_run)
        return await service_list(info.context, "training", path, CourseRun.from_service,
                                  first, after)

    @classmethod
    def from_service(cls, data: dict[str, Any]) -> "Course":
        return cls(
            local_id=strawberry.ID(data["id"]), title=data["title"], summary=data["summary"],
            learning_outcomes=list(data.get("learning_outcomes") or []),
            audience=list(data.get("audience") or []),
            co_produced_with=list(data.get("co_produced_with") or []),
            foundation=bool(data.get("foundation")),
            required_for_all_staff=bool(data.get("required_for_all_staff")),
        )
