"""The audit trail: every access decision on a clinical record, allowed or denied.

Entries go through a small buffer flushed in the background (every 200 ms by default or at
500 entries, and on shutdown) so a request does not pay for an extra write; a failed flush
keeps its entries for the next one. A batch is one transaction of the kit's write path
(``kit.writes``). Rows hold ids, codes and addresses, never clinical text.
"""

import asyncio
import contextlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import Column, Table
from sqlmodel import Field, SQLModel

from recovery.common.auth import Principal
from recovery.common.data import Writes
from recovery.common.db import UTCDateTime
from recovery.common.ids import new_id
from recovery.common.timeutil import utcnow

log = structlog.get_logger(__name__)

#: A purpose of use is a code (HL7 v3 ActReason such as ``TREAT`` or ``BTG``), never a sentence:
#: a free-text reason may be clinical, and the audit trail holds nothing clinical.
PURPOSE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


class Outcome(StrEnum):
    allowed = "allowed"
    denied = "denied"


class AuditEvent(SQLModel, table=True):
    """Who did what to which record, when, from where, and whether it was allowed."""

    __tablename__ = "audit_event"

    id: str = Field(default_factory=new_id, primary_key=True)
    recorded_at: datetime = Field(default_factory=utcnow,
                                  sa_column=Column(UTCDateTime(), index=True, nullable=False))
    actor: str = Field(max_length=200)
    actor_roles: str = Field(default="", max_length=200)
    record_type: str = Field(max_length=60)
    record_id: str | None = Field(default=None, max_length=64, index=True)
    service_user_id: str | None = Field(default=None, max_length=64, index=True)
    action: str = Field(max_length=30)
    outcome: str = Field(max_length=10)
    source_address: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=500)


AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
INSERT_AUDIT = AUDIT_TABLE.insert()


def audit_entry(
    principal: Principal | None,
    *,
    record_type: str,
    action: str,
    outcome: Outcome,
    record_id: str | None = None,
    service_user_id: str | None = None,
    source_address: str | None = None,
    request_id: str | None = None,
    purpose: str | None = None,
) -> AuditEvent:
    """One audit row; ``purpose`` must be a code, refused (ValueError) if it is free text."""
    if purpose is not None and not PURPOSE_CODE.fullmatch(purpose):
        raise ValueError("an audit purpose is a code such as 'BTG', not free text")
    return AuditEvent(
        actor=principal.sub if principal else "anonymous",
        actor_roles=" ".join(sorted(principal.roles)) if principal else "",
        record_type=record_type,
        record_id=record_id,
        service_user_id=service_user_id,
        action=action,
        outcome=outcome.value,
        source_address=source_address,
        request_id=request_id,
        purpose=purpose,
    )


def audit_row(
    principal: Principal | None,
    *,
    record_type: str,
    action: str,
    outcome: Outcome,
    record_id: str | None = None,
    service_user_id: str | None = None,
    source_address: str | None = None,
    request_id: str | None = None,
    purpose: str | None = None,
) -> dict[str, Any]:
    """``audit_entry`` as the plain row the trail inserts: what requests record, because
    building a model instance per decision cost more than the rest of the audit path."""
    if purpose is not None and not PURPOSE_CODE.fullmatch(purpose):
        raise ValueError("an audit purpose is a code such as 'BTG', not free text")
    return {
        "id": new_id(),
        "recorded_at": utcnow(),
        "actor": principal.sub if principal else "anonymous",
        "actor_roles": principal_roles(principal),
        "record_type": record_type,
        "record_id": record_id,
        "service_user_id": service_user_id,
        "action": action,
        "outcome": outcome.value,
        "source_address": source_address,
        "request_id": request_id,
        "purpose": purpose,
    }


def principal_roles(principal: Principal | None) -> str:
    return " ".join(sorted(principal.roles)) if principal else ""


class AuditTrail:
    """Buffers audit entries of reads and writes them in batches."""

    def __init__(self, writes: Writes, *, flush_every: float = 0.2,
                 batch_size: int = 500) -> None:
        self._writes = writes
        self._buffer: list[AuditEvent | dict[str, Any]] = []
        self._flush_every = flush_every
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        # One flush at a time, so a flush returns only once everything recorded before it
        # is written, including a batch the background flush was still writing.
        self._flushing = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Entries recorded but not yet written."""
        return len(self._buffer)

    def record(self, entry: AuditEvent | dict[str, Any]) -> None:
        """Keep an entry (from ``audit_entry`` or ``audit_row``) for the next flush."""
        self._buffer.append(entry)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write every entry recorded so far."""
        async with self._flushing:
            await self._write_buffer()

    async def _write_buffer(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        rows = [entry if isinstance(entry, dict) else entry.model_dump() for entry in batch]
        try:
            async with self._writes.transaction() as tx:
                await tx.run_many(INSERT_AUDIT, rows)
        except Exception as exc:
            # Put them back so the next flush retries; an audit entry is never dropped silently.
            self._buffer[:0] = batch
            log.error("audit_flush_failed", error_type=type(exc).__name__,
                      pending=len(self._buffer))

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_every)
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self) -> None:
        """Let the background flush finish what it is writing and end, then write what is
        left. It is asked, not cancelled: cancelled half-way, a batch would be lost, and
        Python 3.11's ``wait_for`` swallows a cancellation that meets a wake-up, after which
        the loop would go on for ever."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()
