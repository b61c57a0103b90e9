"""The transactional outbox: an event row written in the same transaction as the change."""

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, String, Table, event
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import EncodedJSON, StoredJSON, UTCDateTime, json_text
from recovery.common.events.envelope import source_of
from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow

#: Session.info key holding the callable that wakes the relay after a commit.
WAKE_RELAY = "recovery.wake_relay"
_PENDING = "recovery.outbox_pending"


class OutboxEvent(SQLModel, table=True):
    """An event waiting to be published (``published_at`` empty) or already published."""

    __tablename__ = "outbox_event"

    position: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True,
                                                                 autoincrement=True))
    event_id: str = Field(sa_column=Column(String(36), unique=True, nullable=False))
    type: str = Field(max_length=120)
    subject: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: The CloudEvent as published, written as the text it was encoded to (``EncodedJSON``).
    envelope: dict[str, Any] = Field(sa_column=Column(StoredJSON, nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                          index=True))


OUTBOX_TABLE: Table = OutboxEvent.__table__  # type: ignore[attr-defined]


def envelope_text(event_id: str, event_type: str, subject: str, time: datetime,
                  data: dict[str, Any]) -> EncodedJSON:
    """The CloudEvent as ``CloudEvent.model_dump_json`` writes it (the same fields, order and
    forms), encoded from a plain dict: building the model only to encode it cost each event
    as much again."""
    return EncodedJSON(json_text({
        "specversion": "1.0", "id": event_id, "source": source_of(event_type),
        "type": event_type, "subject": subject, "time": time,
        "datacontenttype": "application/json", "data": data}))


def outbox_row(event_type: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event's outbox row (``data``: ids, statuses and dates for routing and figures,
    never clinical free text)."""
    event_id, now = new_id(), utcnow()
    return {"event_id": event_id, "type": event_type, "subject": subject, "occurred_at": now,
            "envelope": envelope_text(event_id, event_type, subject, now, data),
            "published_at": None}


def record_event(session: AsyncSession, event_type: str, subject: str,
                 data: dict[str, Any]) -> str:
    """Add an event to the session; it is published only if the transaction commits. The
    event's id."""
    row = outbox_row(event_type, subject, data)
    session.add(OutboxEvent(**row))
    session.sync_session.info[_PENDING] = True
    event_id: str = row["event_id"]
    return event_id


@event.listens_for(Session, "after_commit")
def _wake_relay_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        wake = session.info.get(WAKE_RELAY)
        if wake is not None:
            wake()


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
