"""``Idempotency-Key`` on creating endpoints (the IETF draft "The Idempotency-Key HTTP Header
Field"): a retried request gets the first answer again, with no second record and no second
event, on any replica.

The answer is kept in the service's own database in the same transaction as the record it
created, keyed by (caller, key); the key's row is the transaction's first write, so when two
copies of a request race only one commits and the other gets a retryable 409. A refused
request (4xx) keeps nothing: its transaction rolls back with the key's row.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, Text, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.data import Transaction
from recovery.common.db import UTCDateTime, json_text
from recovery.common.deps import AccessDep
from recovery.common.http import encoded_json_response
from recovery.common.kit import ServiceKit
from recovery.common.problems import Problem
from recovery.common.timeutil import utcnow
from recovery.common.versioning import etag

__all__ = ["Answer", "IdempotencyKey", "IdempotentRequest", "KeptAnswer", "Replayed",
           "forget_old_keys", "install_replay_handler", "keep_answer"]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
SUBJECT_MAX_LENGTH = 255


class KeptAnswer(SQLModel, table=True):
    """The first answer to a caller's request under one idempotency key."""

    __tablename__ = "idempotency_key"

    subject: str = Field(sa_column=Column(String(SUBJECT_MAX_LENGTH), primary_key=True))
    key: str = Field(sa_column=Column(String(KEY_MAX_LENGTH), primary_key=True))
    #: What was asked (method, path, body), hashed: the same key with another request is 422.
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    status: int = Field(sa_column=Column(Integer, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    etag: str | None = Field(default=None, sa_column=Column(String(200)))
    location: str | None = Field(default=None, sa_column=Column(String(500)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


KEPT_TABLE = KeptAnswer.__table__  # type: ignore[attr-defined]
INSERT_KEPT = KEPT_TABLE.insert()
READ_KEPT = (select(KEPT_TABLE.c.fingerprint, KEPT_TABLE.c.status, KEPT_TABLE.c.body,
                    KEPT_TABLE.c.etag, KEPT_TABLE.c.location)
             .where(KEPT_TABLE.c.subject == bindparam("subject"),
                    KEPT_TABLE.c.key == bindparam("key")))
FORGET_OLD = delete(KEPT_TABLE).where(KEPT_TABLE.c.created_at < bindparam("before"))


@dataclass(frozen=True)
class Answer:
    """A created record's response as the route sends it: status, JSON body, ETag, Location."""

    status: int
    body: str
    etag: str | None = None
    location: str | None = None

    @classmethod
    def of(cls, body: BaseModel | dict[str, Any] | str, *, status: int = 201,
           version: int | None = None, location: str | None = None) -> "Answer":
        """The answer with ``body`` (a model, a stored document, or JSON text) as its JSON."""
        text = (body if isinstance(body, str) else body.model_dump_json()
                if isinstance(body, BaseModel) else json_text(body))
        return cls(status, text, etag(version) if version is not None else None, location)

    def response(self, *, replayed: bool = False) -> Response:
        response = encoded_json_response(self.body, status_code=self.status,
                                         location=self.location)
        if self.etag is not None:
            response.headers["ETag"] = self.etag
        if replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return response


class Replayed(Exception):  # noqa: N818 (it is an answer, not an error)
    """Raised by the dependency to answer a retry with the kept answer
    (``install_replay_handler``)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("replayed")
        self.answer = answer


async def _on_replayed(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replayed)
    return exc.answer.response(replayed=True)


def install_replay_handler(app: FastAPI) -> None:
    app.add_exception_handler(Replayed, _on_replayed)


def key_refusal(key: str) -> str | None:
    """Why ``key`` is not an idempotency key (1-255 printable ASCII characters), or None."""
    if not 1 <= len(key) <= KEY_MAX_LENGTH:
        return f"An {HEADER} is 1 to {KEY_MAX_LENGTH} characters long."
    if not all(" " <= character <= "~" for character in key):
        return f"An {HEADER} is printable ASCII."
    return None


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """The request's identity for its key: the same JSON with other spacing or key order is
    the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256(f"{method} {path}?{query}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


@dataclass(frozen=True)
class IdempotentRequest:
    """A creating request sent with an ``Idempotency-Key`` that has no answer yet."""

    subject: str
    key: str
    fingerprint: str

    async def keep(self, on: Transaction | AsyncSession, answer: Answer) -> None:
        """Keep ``answer`` in the write's own transaction, as its first write; a copy of this
        request that committed first makes it a 409 (retry it to get the answer)."""
        connection = on.connection if isinstance(on, Transaction) else await on.connection()
        try:
            await connection.execute(INSERT_KEPT, {
                "subject": self.subject, "key": self.key, "fingerprint": self.fingerprint,
                "status": answer.status, "body": answer.body, "etag": answer.etag,
                "location": answer.location, "created_at": utcnow()})
        except IntegrityError as exc:
            raise Problem(409, "A request with this Idempotency-Key is being answered; "
                          "send it again to get its answer.", kind="idempotency-key-in-use",
                          headers={"Retry-After": "1"}) from exc


async def keep_answer(once: "IdempotentRequest | None", on: Transaction | AsyncSession,
                      answer: Answer) -> None:
    """``once.keep`` when the request came with a key."""
    if once is not None:
        await once.keep(on, answer)


async def idempotent_request(
        request: Request, access: AccessDep,
        key: Annotated[str | None, Header(
            alias=HEADER,
            description="Makes a retry safe: the same request with the same key (1-255 "
                        "printable ASCII characters, yours alone, kept 24 hours) answers "
                        "what the first did, with `Idempotent-Replayed: true`, and creates "
                        "nothing more; with another body, 422.")] = None,
) -> IdempotentRequest | None:
    """The request's key, checked; a request already answered is answered again
    (``Replayed``), and the same key with another request is refused with 422."""
    if key is None:
        return None
    refusal = key_refusal(key)
    if refusal is not None:
        raise Problem(400, refusal, kind="invalid-idempotency-key")
    subject = access.principal.sub[:SUBJECT_MAX_LENGTH]
    asked = fingerprint(request.method, request.url.path, request.url.query,
                        await request.body())
    rows = await access.kit.reads.all(READ_KEPT, {"subject": subject, "key": key})
    if rows:
        kept_fingerprint, status, body, etag, location = rows[0]
        if kept_fingerprint != asked:
            raise Problem(422, "This Idempotency-Key was used for another request; use a new "
                          "key for a new request.", kind="idempotency-key-reused")
        raise Replayed(Answer(status, body, etag, location))
    return IdempotentRequest(subject, key, asked)


#: A creating route's ``Idempotency-Key``: None without one; a retry never reaches the route.
IdempotencyKey = Annotated[IdempotentRequest | None, Depends(idempotent_request)]


async def forget_old_keys(kit: ServiceKit) -> int:
    """Drop answers kept longer than the settings say; how many went."""
    before = utcnow() - timedelta(hours=kit.settings.idempotency_keep_hours)
    async with kit.writes.transaction() as tx:
        return await tx.run(FORGET_OLD, {"before": before})
