"""Checks every service's tests run on its creating endpoints: a request sent twice under one
``Idempotency-Key`` is answered the same twice, and the service's outbox shows what it
announced."""

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from recovery.common.events.outbox import OUTBOX_TABLE
from recovery.common.kit import ServiceKit


async def sent_twice(client: httpx.AsyncClient, path: str, *, headers: dict[str, str],
                     json: Any) -> httpx.Response:
    """POST the same request twice under one new key; the second answer must be the first
    replayed (status, body, ETag, Location). The first answer."""
    keyed = {**headers, "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await client.post(path, json=json, headers=keyed)
    again = await client.post(path, json=json, headers=keyed)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    for header in ("etag", "location"):
        assert again.headers.get(header) == first.headers.get(header), header
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    return first


async def events_about(client: httpx.AsyncClient, subject: str) -> list[str]:
    """Types of the events the service recorded about ``subject``, published or not."""
    kit: ServiceKit = client.app.state.kit  # type: ignore[attr-defined]
    async with kit.engine.connect() as connection:
        rows = await connection.execute(
            select(OUTBOX_TABLE.c.type).where(OUTBOX_TABLE.c.subject == subject)
            .order_by(OUTBOX_TABLE.c.position))
        return [row[0] for row in rows]


async def assert_the_key_is_documented(client: httpx.AsyncClient, *paths: str) -> None:
    """The service's OpenAPI offers ``Idempotency-Key`` on the POST of each path."""
    openapi = (await client.get("/openapi.json")).json()
    for path in paths:
        parameters = openapi["paths"][path]["post"].get("parameters", [])
        assert any(parameter["name"] == "Idempotency-Key" and parameter["in"] == "header"
                   for parameter in parameters), path


async def rows_with(client: httpx.AsyncClient, column: Any, value: Any) -> int:
    """How many rows of ``column``'s table hold ``value`` there, in the service's database."""
    kit: ServiceKit = client.app.state.kit  # type: ignore[attr-defined]
    async with kit.engine.connect() as connection:
        return int((await connection.execute(
            select(func.count()).select_from(column.table).where(column == value))
        ).scalar_one())
