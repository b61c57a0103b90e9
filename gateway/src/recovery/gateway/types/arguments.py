"""The arguments many fields share, with the descriptions front-end developers read."""

from typing import Annotated

import strawberry

First = Annotated[int | None, strawberry.argument(
    description="How many items this page holds, 0 to 200 (200 when left out).")]
After = Annotated[str | None, strawberry.argument(
    description="Start after this cursor: the `endCursor` of the page before.")]
ServiceUserId = Annotated[strawberry.ID, strawberry.argument(
    description="The service user, by the EHR's patient id.")]
TeamId = Annotated[strawberry.ID, strawberry.argument(description="The team's id.")]
IfMatch = Annotated[int, strawberry.argument(
    description="The `version` you read; a newer one answers StaleVersion.")]
ContentHash = Annotated[str, strawberry.argument(
    description="The `contentHash` of the version you read: your signature is bound to "
                "exactly that content.")]


def record_id(what: str) -> object:
    """The argument naming one record: ``id: Annotated[strawberry.ID, record_id("goal")]``."""
    return strawberry.argument(description=f"The {what}'s global `id`, or its `localId`.")
