"""``Idempotency-Key`` on a creating endpoint (``recovery.common.idempotency``), on both
backends: a retry answers what the first request did and creates nothing more, another body
under the same key is refused, keys are each caller's own, a race commits one write."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from kit_toy import MIGRATIONS_DIR, ToyNote
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.common.data import Writes
from recovery.common.db import create_engine
from recovery.common.idempotency import (
    KEPT_TABLE,
    Answer,
    IdempotentRequest,
    forget_old_keys,
    key_refusal,
)
from recovery.common.kit import ServiceKit
from recovery.common.migrations import upgrade_to_head
from recovery.common.problems import Problem
from recovery.common.testing.plugin import TokenFactory
from recovery.common.timeutil import utcnow

NOTE = ToyNote.__table__  # type: ignore[attr-defined]
BODY = {"service_user_id": "su-1", "team_id": "team-a", "size": 3}


def _staff(tokens: TokenFactory, sub: str = "staff-1", key: str | None = None
           ) -> dict[str, str]:
    headers = tokens.header(tokens.clinician(sub))
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _kit(client: httpx.AsyncClient) -> ServiceKit:
    kit: ServiceKit = client.app.state.kit  # type: ignore[attr-defined]
    return kit


async def _count(client: httpx.AsyncClient, table: object = NOTE) -> int:
    async with _kit(client).engine.connect() as connection:
        return int((await connection.execute(
            select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_a_retry_with_the_same_key_answers_the_first_answer_and_creates_nothing(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    first = await toy.post("/v1/notes", headers=_staff(tokens, key="note-1"), json=BODY)
    # The same JSON with other spacing and key order is the same request.
    again = await toy.post("/v1/notes", headers={**_staff(tokens, key="note-1"),
                                                 "Content-Type": "application/json"},
                           content=b'{"size": 3,  "team_id": "team-a", "service_user_id": "su-1"}')
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert (again.headers["etag"], again.headers["location"]) == (
        first.headers["etag"], first.headers["location"])
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(toy) == 1


async def test_the_same_key_with_another_body_is_refused_and_changes_nothing(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    first = await toy.post("/v1/notes", headers=_staff(tokens, key="note-2"), json=BODY)
    other = await toy.post("/v1/notes", headers=_staff(tokens, key="note-2"),
                           json={**BODY, "size": 4})
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert await _count(toy) == 1
    replay = await toy.post("/v1/notes", headers=_staff(tokens, key="note-2"), json=BODY)
    assert replay.content == first.content


async def test_keys_are_each_callers_own(toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    mine = await toy.post("/v1/notes", headers=_staff(tokens, "staff-1", "shared"), json=BODY)
    theirs = await toy.post("/v1/notes", headers=_staff(tokens, "staff-2", "shared"), json=BODY)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert await _count(toy) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
async def test_a_key_that_is_not_1_to_255_printable_ascii_characters_is_a_400(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory, key: str) -> None:
    headers = [*_staff(tokens).items(), ("Idempotency-Key", key.encode())]
    response = await toy_sqlite.post("/v1/notes", headers=headers, json=BODY)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-idempotency-key")
    assert await _count(toy_sqlite) == 0
    assert await _count(toy_sqlite, KEPT_TABLE) == 0


def test_the_longest_key_is_255_printable_characters() -> None:
    assert key_refusal("~" * 255) is None and key_refusal(" a-Z_0:9 ") is None
    assert key_refusal("~" * 256) is not None and key_refusal("\x7f") is not None


async def test_a_refused_request_keeps_nothing_so_a_corrected_retry_may_succeed(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    refused = await toy.post("/v1/notes", headers=_staff(tokens, key="note-3"),
                             json={**BODY, "team_id": "team-z"})
    assert refused.status_code == 404
    assert await _count(toy, KEPT_TABLE) == 0
    corrected = await toy.post("/v1/notes", headers=_staff(tokens, key="note-3"), json=BODY)
    assert corrected.status_code == 201
    assert "idempotent-replayed" not in corrected.headers
    assert await _count(toy) == 1


async def test_concurrent_copies_of_a_request_commit_one_note(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    answers = await asyncio.gather(*(
        toy.post("/v1/notes", headers=_staff(tokens, key="race"), json=BODY)
        for _ in range(4)))
    created = [answer for answer in answers if answer.status_code == 201]
    others = [answer for answer in answers if answer.status_code != 201]
    assert created and {answer.content for answer in created} == {created[0].content}
    for answer in others:
        assert answer.status_code == 409, answer.text
        assert answer.json()["type"].endswith("/idempotency-key-in-use")
    assert await _count(toy) == 1


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS_DIR, database_url)
    made = create_engine(database_url)
    try:
        yield made
    finally:
        await made.dispose()


async def test_a_copy_racing_an_uncommitted_first_write_loses_with_409_and_writes_nothing(
        engine: AsyncEngine) -> None:
    """The key's row is the transaction's first write: the copy waits for the first
    transaction (PostgreSQL on the key, SQLite on its write lock) and then fails on it."""
    writes = Writes(engine, lambda: None)
    once = IdempotentRequest("staff-1", "k-1", "f" * 64)
    answer = Answer(201, '{"id":"n-1"}', '"1"', "/v1/notes/n-1")
    note = {"id": "n-2", "service_user_id": "su-1", "team_id": "t", "size": 1, "version": 1,
            "created_at": utcnow()}

    async def copy() -> None:
        async with writes.transaction() as tx:
            await once.keep(tx, answer)
            await tx.run(NOTE.insert(), note)

    async with writes.transaction() as tx:
        await once.keep(tx, answer)
        racing = asyncio.create_task(copy())
        await asyncio.sleep(0)  # let the copy start; its outcome does not depend on when
    with pytest.raises(Problem) as refused:
        await racing
    assert refused.value.status == 409 and refused.value.kind == "idempotency-key-in-use"
    async with engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(NOTE))
                ).scalar_one() == 0
        assert (await connection.execute(select(KEPT_TABLE.c.body))).scalars().all() == [
            answer.body]


async def test_answers_older_than_the_kept_time_are_forgotten(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for key in ("old", "new"):
        assert (await toy.post("/v1/notes", headers=_staff(tokens, key=key),
                               json=BODY)).status_code == 201
    kit = _kit(toy)
    async with kit.engine.begin() as connection:
        await connection.execute(update(KEPT_TABLE).where(KEPT_TABLE.c.key == "old").values(
            created_at=utcnow() - timedelta(hours=kit.settings.idempotency_keep_hours + 1)))
    assert await forget_old_keys(kit) == 1
    async with kit.engine.connect() as connection:
        assert (await connection.execute(select(KEPT_TABLE.c.key))).scalars().all() == ["new"]
    # A forgotten key is free again: its next use creates a note.
    fresh = await toy.post("/v1/notes", headers=_staff(tokens, key="old"), json=BODY)
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert await _count(toy) == 3
