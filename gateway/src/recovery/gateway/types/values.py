"""Reading the services' JSON values into Python ones."""

from datetime import date, datetime
from typing import Any


def to_date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def to_datetime(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
