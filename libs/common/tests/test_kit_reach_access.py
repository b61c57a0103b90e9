"""Lists, batch reads and new records through the kit's reach, on the toy service and both
backends: each list and each person's batch decision is audited, a caller reads only what their
token reaches, and a record about a person outside their reach is refused (403) and audited."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from kit_toy import MIGRATIONS_DIR, RESOURCE, NoteIn, ToyNote, toy_settings
from kit_toy import router as toy_router
from pydantic import BaseModel
from sqlmodel import col, select

from recovery.common.app import create_service_app
from recovery.common.deps import AccessDep, SessionDep
from recovery.common.dev_issuer import DevIssuer
from recovery.common.reach import (
    batch_condition,
    batch_result_json,
    list_condition,
    require_create_access,
)
from recovery.common.settings import Settings
from recovery.common.testing.plugin import TokenFactory, running_service


class People(BaseModel):
    service_user_ids: list[str]


router = APIRouter()


@router.post("/v1/notes:batch-read")
async def batch_read(body: People, access: AccessDep, session: SessionDep) -> Response:
    condition = batch_condition(access, RESOURCE, RESOURCE, body.service_user_ids,
                                person_column=col(ToyNote.service_user_id),
                                team_column=col(ToyNote.team_id))
    found: dict[str, list[str]] = {p: [] for p in body.service_user_ids}
    if condition is not None:
        notes = (await session.exec(select(ToyNote).where(condition)
                                    .order_by(col(ToyNote.id)))).all()
        for note in notes:
            found[note.service_user_id].append(json.dumps(note.team_id))
    return Response(batch_result_json(found, set(), "notes"), media_type="application/json")


@router.get("/v1/notes")
async def list_notes(access: AccessDep, session: SessionDep, service_user_id: str | None = None,
                     team_id: str | None = None) -> list[str]:
    condition = list_condition(access, RESOURCE, record_type=RESOURCE,
                               person_column=col(ToyNote.service_user_id),
                               team_column=col(ToyNote.team_id),
                               service_user_id=service_user_id, team_id=team_id, what="notes")
    query = select(ToyNote)
    if service_user_id is not None:
        query = query.where(col(ToyNote.service_user_id) == service_user_id)
    if team_id is not None:
        query = query.where(col(ToyNote.team_id) == team_id)
    if condition is not None:
        query = query.where(condition)
    notes = (await session.exec(query.order_by(col(ToyNote.team_id)))).all()
    return [f"{note.service_user_id}@{note.team_id}" for note in notes]


@router.post("/v1/checked-notes", status_code=201)
async def create_checked_note(body: NoteIn, access: AccessDep, session: SessionDep) -> None:
    note = ToyNote(service_user_id=body.service_user_id, team_id=body.team_id, size=body.size)
    require_create_access(access, RESOURCE, record_type=RESOURCE, record_id=note.id,
                          service_user_id=note.service_user_id, team_id=note.team_id,
                          what="notes")
    session.add(note)
    await session.commit()


def create_app(settings: Settings) -> FastAPI:
    return create_service_app(settings=settings, title="Toy", description="Reach",
                              routers=[toy_router, router], migrations_dir=MIGRATIONS_DIR)


@pytest.fixture
async def client(database_url: str, dev_issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(create_app, toy_settings(database_url, dev_issuer),
                               MIGRATIONS_DIR) as running:
        yield running


async def _note(client: httpx.AsyncClient, tokens: TokenFactory, person: str,
                team: str) -> None:
    staff = tokens.header(tokens.clinician("staff-9", teams=[team]))
    answer = await client.post("/v1/notes", headers=staff, json={
        "service_user_id": person, "team_id": team, "size": 1})
    assert answer.status_code == 201, answer.text


async def _audit(client: httpx.AsyncClient, tokens: TokenFactory,
                 action: str) -> list[tuple[str, str | None, str]]:
    answer = await client.get("/v1/audit-events", headers=tokens.header(tokens.admin()))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return [(e["actor"], e["service_user_id"], e["outcome"]) for e in items
            if e["action"] == action]


async def test_a_batch_read_keeps_each_person_to_the_callers_teams_and_audits_each(
        client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    await _note(client, tokens, "su-1", "team-a")
    await _note(client, tokens, "su-1", "team-b")
    await _note(client, tokens, "su-2", "team-b")
    staff = tokens.header(tokens.clinician("staff-1", teams=["team-a"]))
    answer = await client.post("/v1/notes:batch-read", headers=staff,
                               json={"service_user_ids": ["su-1", "su-2"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"results": [
        {"service_user_id": "su-1", "notes": ["team-a"], "truncated": False,
         "next_cursor": None},
        {"service_user_id": "su-2", "notes": [], "truncated": False, "next_cursor": None}]}
    # Staff reach everyone in their teams: allowed, and kept to those teams by the query.
    assert await _audit(client, tokens, "batch-read") == [
        ("staff-1", "su-1", "allowed"), ("staff-1", "su-2", "allowed")]


async def test_a_service_user_batch_reads_all_of_their_own_records_and_is_denied_anyone_elses(
        client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    await _note(client, tokens, "su-1", "team-a")
    await _note(client, tokens, "su-1", "team-b")
    await _note(client, tokens, "su-2", "team-a")
    own = tokens.header(tokens.service_user("su-1"))
    answer = await client.post("/v1/notes:batch-read", headers=own,
                               json={"service_user_ids": ["su-1", "su-2"]})
    results = {r["service_user_id"]: sorted(r["notes"]) for r in answer.json()["results"]}
    assert results == {"su-1": ["team-a", "team-b"], "su-2": []}
    assert await _audit(client, tokens, "batch-read") == [("su-1", "su-1", "allowed"),
                                                          ("su-1", "su-2", "denied")]


async def test_a_record_about_a_person_outside_the_callers_teams_is_refused_and_audited(
        client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    staff = tokens.header(tokens.clinician("staff-1", teams=["team-a"]))
    body = {"service_user_id": "su-1", "size": 1}
    refused = await client.post("/v1/checked-notes", headers=staff,
                                json={**body, "team_id": "team-b"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You may not write notes for this person or team."
    made = await client.post("/v1/checked-notes", headers=staff,
                             json={**body, "team_id": "team-a"})
    assert made.status_code == 201, made.text
    assert await _audit(client, tokens, "create") == [("staff-1", "su-1", "denied"),
                                                      ("staff-1", "su-1", "allowed")]


async def test_a_list_by_person_keeps_staff_to_their_teams_and_the_person_to_their_own(
        client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    await _note(client, tokens, "su-1", "team-a")
    await _note(client, tokens, "su-1", "team-b")
    await _note(client, tokens, "su-2", "team-a")

    async def listed(token: str, **params: str) -> httpx.Response:
        return await client.get("/v1/notes", params=params, headers=tokens.header(token))

    staff, own = tokens.clinician("staff-1", teams=["team-a"]), tokens.service_user("su-1")
    assert (await listed(staff, service_user_id="su-1")).json() == ["su-1@team-a"]
    assert (await listed(own, service_user_id="su-1")).json() == ["su-1@team-a", "su-1@team-b"]
    assert (await listed(tokens.system(), service_user_id="su-1")).json() == [
        "su-1@team-a", "su-1@team-b"]
    # Nobody else's records: another person's are refused, another team's list is empty.
    refused = await listed(own, service_user_id="su-2")
    assert refused.status_code == 404
    assert refused.json()["detail"] == "No notes of that person or team are available to you."
    assert (await listed(tokens.clinician("staff-2", teams=["team-c"]),
                         service_user_id="su-1")).json() == []
    assert (await listed(own)).json() == ["su-1@team-a", "su-1@team-b"]
    searches = [row for row in await _audit(client, tokens, "search") if row[0] != "admin-1"]
    assert searches == [  # (the auditor's own search of the trail left out)
        ("staff-1", "su-1", "allowed"), ("su-1", "su-1", "allowed"),
        ("partner-1", "su-1", "allowed"), ("su-1", "su-2", "denied"),
        ("staff-2", "su-1", "allowed"), ("su-1", None, "allowed")]
