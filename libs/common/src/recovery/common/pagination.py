"""Cursor (keyset) pagination with a capped page size."""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from recovery.common.problems import Problem

T = TypeVar("T")
R = TypeVar("R")
SortValue = datetime | str | int


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


def invalid_cursor() -> Problem:
    return Problem(400, "The cursor is not valid; use next_cursor from a previous page.",
                   kind="invalid-cursor")


def encode_cursor(sort_value: SortValue, record_id: str) -> str:
    """An opaque cursor pointing just after the row with this sort value and id."""
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = json.dumps([value, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    """The (sort value, id) a cursor points after; 400 when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise ValueError("shape")
        value, record_id = decoded
        if not isinstance(record_id, str):
            raise ValueError("id")
        return value, record_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor whose sort value is a timestamp (aware, as it was encoded)."""
    value, record_id = decode_cursor(cursor)
    try:
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, record_id
    except ValueError as exc:
        raise invalid_cursor() from exc


def decode_date_cursor(cursor: str) -> tuple[date, str]:
    """A cursor whose sort value is a day (records kept most recent day first)."""
    value, record_id = decode_cursor(cursor)
    try:
        return date.fromisoformat(str(value)), record_id
    except ValueError as exc:
        raise invalid_cursor() from exc


def decode_version_cursor(cursor: str) -> int:
    """A cursor into a record's versions: the version number it points after."""
    value, _ = decode_cursor(cursor)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid_cursor()
    return value


def page_size(requested: int | None, default: int, maximum: int) -> int:
    """The page size to use: the default when none is asked for, never above the cap."""
    if requested is None:
        return default
    return max(1, min(requested, maximum))


def keyset_page(rows: Sequence[R], limit: int,
                key: Callable[[R], tuple[SortValue, str]]) -> tuple[list[R], str | None]:
    """Split rows fetched with ``LIMIT limit + 1`` into the page and the next cursor."""
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    return page, encode_cursor(*key(page[-1]))
