"""The transactional outbox: an event row written in the same transaction as the change."""

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, String, event
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.db import EncodedJSON, StoredJSON, UTCDateTime
from recovery.common.events.envelope import CloudEvent, source_of

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


def outbox_row(event_type: str, subject: str,
               data: dict[str, Any]) -> tuple[CloudEvent, dict[str, Any]]:
    """The event and its outbox row's columns (``data``: ids, statuses and dates for routing
    and figures, never clinical free text)."""
    cloud_event = CloudEvent(source=source_of(event_type), type=event_type, subject=subject,
                             data=data)
    return cloud_event, {"event_id": cloud_event.id, "type": event_type, "subject": subject,
                         "occurred_at": cloud_event.time,
                         "envelope": EncodedJSON(cloud_event.model_dump_json()),
                         "published_at": None}


def record_event(session: AsyncSession, event_type: str, subject: str,
                 data: dict[str, Any]) -> CloudEvent:
    """Add an event to the session; it is published only if the transaction commits."""
    cloud_event, row = outbox_row(event_type, subject, data)
    session.add(OutboxEvent(**row))
    session.sync_session.info[_PENDING] = True
    return cloud_event


@event.listens_for(Session, "after_commit")
def _wake_relay_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        wake = session.info.get(WAKE_RELAY)
        if wake is not None:
            wake()


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
