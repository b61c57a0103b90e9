"""Relay-style cursor connections over lists the services return."""

import base64
from collections.abc import Sequence
from typing import Generic, TypeVar

import strawberry

from recovery.gateway.errors import ErrorCode, GatewayError

T = TypeVar("T")
#: The most items one page of a connection holds.
MAX_FIRST = 200


@strawberry.type(description="Where a page of a connection stands.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="Items come before this page.")
    start_cursor: str | None = strawberry.field(description="The cursor of the first item.")
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last item; pass it as `after` for the next page.")


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items (Relay cursor connection).")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    total_count: int = strawberry.field(description="How many items there are in all.")


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "o":
            raise ValueError(kind)
        return int(value)
    except ValueError as exc:
        raise GatewayError(ErrorCode.invalid, "The cursor is not one this API gave.") from exc


def connection(items: Sequence[T], first: int | None, after: str | None) -> Connection[T]:
    """One page of ``items`` after the ``after`` cursor."""
    size = MAX_FIRST if first is None else first
    if not 0 <= size <= MAX_FIRST:
        raise GatewayError(ErrorCode.invalid, f"`first` must be between 0 and {MAX_FIRST}.")
    start = _offset(after) + 1 if after else 0
    page = items[start:start + size]
    edges = [Edge(cursor=_cursor(start + i), node=item) for i, item in enumerate(page)]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=start + len(page) < len(items),
                           has_previous_page=start > 0,
                           start_cursor=edges[0].cursor if edges else None,
                           end_cursor=edges[-1].cursor if edges else None),
        total_count=len(items),
    )
