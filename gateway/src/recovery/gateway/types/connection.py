"""Relay-style cursor connections, paged by the services' own keyset cursors: a page is one
call asking the service for `first` items after its cursor, so an item inserted between two
pages never shifts the next one."""

import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NamedTuple, TypeVar

import strawberry

from recovery.gateway.context import GatewayContext
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.upstream import PAGE_SIZE

T = TypeVar("T")
R = TypeVar("R")
#: The most items one page of a connection holds.
MAX_FIRST = 200
#: Longest service cursor a connection's cursor may carry (the services' own limit).
SERVICE_CURSOR_LENGTH = 500

#: One page of a service's list: its cursor (None for the start) and a page size in, the
#: page's JSON (``items`` and ``next_cursor``) out.
FetchPage = Callable[[str | None, int], Awaitable[dict[str, Any]]]
#: How many items the whole list holds.
CountItems = Callable[[], Awaitable[int]]


@strawberry.type(description="Where a page of a connection stands.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="Items come before this page.")
    start_cursor: str | None = strawberry.field(description="The cursor of the first item.")
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last item; pass it as `after` for the next page.")


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position just after this item; pass "
                                               "it as `after` to go on from here.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items (Relay cursor connection, forward only).")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    count: strawberry.Private[CountItems]

    @strawberry.field(description="How many items there are in all. When the list is longer "
                                  "than this page, counting reads it through from the "
                                  "service: ask for it only where you show it.")
    async def total_count(self) -> int:
        return await self.count()


@functools.lru_cache(maxsize=256)
def _json_text(cursor: str | None) -> str:
    return json.dumps(cursor)


class Position(NamedTuple):
    """Just after the ``skip``-th item following the service's ``cursor`` (None: the
    list's start). The service cursor is a keyset one, so a position stays put when items
    are added elsewhere in the list."""

    cursor: str | None
    skip: int

    def encode(self) -> str:
        # The JSON array ``[cursor, skip]``; a page's items share one service cursor, whose
        # JSON text is made once (a page of 200 edges encodes 200 cursors).
        raw = f"[{_json_text(self.cursor)},{self.skip}]".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Position":
        try:
            cursor, skip = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not (cursor is None or (isinstance(cursor, str)
                                       and 0 < len(cursor) <= SERVICE_CURSOR_LENGTH)):
                raise ValueError("cursor")
            if not isinstance(skip, int) or isinstance(skip, bool) or not 0 <= skip <= PAGE_SIZE:
                raise ValueError("skip")
            return cls(cursor, skip)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise GatewayError(ErrorCode.invalid,
                               "The cursor is not one this API gave.") from exc


class ListPage(NamedTuple):
    """Items of one connection page with the position after each, and whether more follow."""

    items: list[tuple[Position, dict[str, Any]]]
    has_next: bool


def page_size(first: int | None) -> int:
    size = MAX_FIRST if first is None else first
    if not 0 <= size <= MAX_FIRST:
        raise GatewayError(ErrorCode.invalid, f"`first` must be between 0 and {MAX_FIRST}.")
    return size


async def read_page(fetch: FetchPage, first: int | None, after: str | None) -> ListPage:
    """``first`` items after ``after``: one call asking the service for that many from its
    cursor; a second only when an edge's cursor (not the end cursor) starts a page that
    runs past the service's largest page."""
    size = page_size(first)
    cursor, skip = Position.decode(after) if after else Position(None, 0)
    items: list[tuple[Position, dict[str, Any]]] = []
    while True:
        body = await fetch(cursor, min(skip + max(size - len(items), 1), PAGE_SIZE))
        rows: list[dict[str, Any]] = body["items"]
        following: str | None = body.get("next_cursor")
        for number, row in enumerate(rows[skip:], start=skip + 1):
            if len(items) == size:
                return ListPage(items, has_next=True)
            items.append((Position(cursor, number), row))
        if following is None:
            return ListPage(items, has_next=False)
        if items and len(rows) > skip:
            # The page ended on this item: go on from the service's own next cursor.
            items[-1] = (Position(following, 0), items[-1][1])
        cursor, skip = following, max(0, skip - len(rows))
        if len(items) == size:
            return ListPage(items, has_next=True)


async def paged(fetch: FetchPage, node: Callable[[dict[str, Any]], T], first: int | None,
                after: str | None, count: CountItems) -> Connection[T]:
    """The connection page ``first``/``after`` names; ``count`` is only asked when the page
    does not hold the whole list."""
    page = await read_page(fetch, first, after)
    edges = [Edge(cursor=position.encode(), node=node(row)) for position, row in page.items]
    whole = after is None and not page.has_next

    async def total() -> int:
        return len(edges) if whole else await count()

    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next, has_previous_page=after is not None,
                           start_cursor=edges[0].cursor if edges else None,
                           end_cursor=edges[-1].cursor if edges else None),
        count=total,
    )


def with_nodes(page: Connection[R], node: Callable[[R], T]) -> Connection[T]:
    """The same page with each node made into another."""
    return Connection(edges=[Edge(cursor=e.cursor, node=node(e.node)) for e in page.edges],
                      page_info=page.page_info, count=page.count)


async def service_list(context: GatewayContext, service: str, path: str,
                       node: Callable[[dict[str, Any]], T], first: int | None,
                       after: str | None, params: dict[str, Any] | None = None,
                       count: CountItems | None = None) -> Connection[T]:
    """A page of one of the service's lists, read with the caller's own token; by default
    the total is counted by reading the list through."""
    async def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
        query = {**(params or {}), "limit": limit}
        if cursor:
            query["cursor"] = cursor
        body: dict[str, Any] = (await context.call(service, "GET", path, params=query)).body
        return body

    async def every_item() -> int:
        return len(await context.every_item(service, path, params))

    return await paged(fetch, node, first, after, count or every_item)


async def first_page(load: Callable[[int], Awaitable[tuple[list[dict[str, Any]], str | None]]],
                     node: Callable[[dict[str, Any]], T], first: int | None,
                     count: CountItems) -> Connection[T]:
    """The first page of one of many lists read in one batch (``load`` asks a DataLoader for
    ``first`` items and the service's cursor after them): the same edges, cursors and
    ``pageInfo`` as a page read alone, so paging on goes through the list's own cursor."""
    items, following = await load(page_size(first))

    async def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
        return {"items": items, "next_cursor": following}

    return await paged(fetch, node, first, None, count)
