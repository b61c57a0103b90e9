"""The ``Idempotency-Key`` of a creating mutation, forwarded to the service that creates the
record (which keeps the first answer; see ``recovery.common.idempotency``): the mutation's
``idempotencyKey`` argument, or else the request's header with the field's response name
appended, so each creating field of one document has a key of its own."""

from typing import Annotated, Any

import strawberry

from recovery.common.idempotency import HEADER, key_refusal
from recovery.gateway.errors import ErrorCode, GatewayError

IdempotencyKeyArgument = Annotated[str | None, strawberry.argument(
    description="Makes a retry safe: sent again with the same key and the same arguments, "
                "the mutation answers what it first did and creates nothing more (1-255 "
                "printable ASCII characters, yours alone, kept 24 hours). Without it, an "
                "`Idempotency-Key` header on the request is used, followed by `:` and this "
                "field's alias (or name).")]


def idempotency_key_for(info: strawberry.Info[Any, Any], argument: str | None) -> str | None:
    """The key to send for this mutation field, or None; INVALID when it is no key."""
    if argument is not None:
        key = argument
    else:
        request = info.context.request
        sent = request.headers.get(HEADER) if request is not None else None
        if sent is None:
            return None
        key = f"{sent}:{info.path.key}"
    refusal = key_refusal(key)
    if refusal is not None:
        raise GatewayError(ErrorCode.invalid, refusal)
    return key
