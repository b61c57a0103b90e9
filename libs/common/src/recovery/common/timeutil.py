"""Timezone-aware UTC timestamps, the only kind the platform stores, and stored dates."""

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC, so say so."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_date(value: date | str) -> date:
    """A date column read on SQLite's driver directly comes back as ISO text; as a date."""
    return value if isinstance(value, date) else date.fromisoformat(value)
