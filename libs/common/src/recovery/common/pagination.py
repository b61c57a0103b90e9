"""Cursor (keyset) pagination with a capped page size."""

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from recovery.common.problems import Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(sort_value: datetime | str | int, record_id: str) -> str:
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = json.dumps([value, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    """The (sort value, id) a cursor points after; 400 when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, record_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(record_id, str):
            raise ValueError("id")
        return value, record_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(400, "The cursor is not valid; use next_cursor from a previous page.",
                      kind="invalid-cursor") from exc


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    value, record_id = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(str(value)), record_id
    except ValueError as exc:
        raise Problem(400, "The cursor is not valid; use next_cursor from a previous page.",
                      kind="invalid-cursor") from exc


def page_size(requested: int | None, default: int, maximum: int) -> int:
    if requested is None:
        return default
    return max(1, min(requested, maximum))
