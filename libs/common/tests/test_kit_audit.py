"""The audit trail: every access decision recorded, allowed and denied, buffered and flushed
(also at shutdown), and exported as FHIR R4 AuditEvent to admins and audit systems only."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle
from kit_toy import MIGRATIONS_DIR, create_app, toy_settings
from sqlmodel import SQLModel, select

from recovery.common.audit import AuditEvent, AuditTrail, Outcome, audit_entry, audit_row
from recovery.common.auth import Principal
from recovery.common.data import Writes
from recovery.common.db import create_engine, session_factory
from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory, running_service


def _writes(engine: Any) -> Writes:
    """The kit's write path for ``engine``."""
    return Writes(engine, lambda: None)


async def _create_note(client: httpx.AsyncClient, tokens: TokenFactory,
                       service_user: str = "su-1", team: str = "team-a") -> str:
    staff = tokens.header(tokens.clinician("staff-1", teams=[team]))
    response = await client.post("/v1/notes", headers=staff, json={
        "service_user_id": service_user, "team_id": team, "size": 1})
    assert response.status_code == 201, response.text
    note_id: str = response.json()["id"]
    return note_id


def _admin(tokens: TokenFactory) -> dict[str, str]:
    return tokens.header(tokens.admin("admin-1"))


async def _entries(client: httpx.AsyncClient, tokens: TokenFactory,
                   **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit-events", headers=_admin(tokens), params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_allowed_and_denied_decisions_are_both_recorded(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    note_id = await _create_note(toy, tokens)
    own = tokens.header(tokens.service_user("su-1"))
    other = tokens.header(tokens.service_user("su-2"))
    assert (await toy.get(f"/v1/notes/{note_id}", headers=own)).status_code == 200
    assert (await toy.get(f"/v1/notes/{note_id}", headers=other)).status_code == 404

    entries = await _entries(toy, tokens, record_id=note_id)
    seen = [(e["actor"], e["action"], e["outcome"]) for e in entries]
    assert seen == [("staff-1", "create", "allowed"), ("su-1", "read", "allowed"),
                    ("su-2", "read", "denied")]
    denied = entries[-1]
    assert denied["service_user_id"] == "su-1" and denied["record_type"] == "Observation"
    assert denied["actor_roles"] == ["service_user"]
    assert denied["source_address"] and denied["request_id"]


async def test_the_audit_trail_can_be_filtered_by_person_actor_outcome_and_time(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    first = await _create_note(toy, tokens, service_user="su-1")
    await _create_note(toy, tokens, service_user="su-9")
    await toy.get(f"/v1/notes/{first}", headers=tokens.header(tokens.service_user("su-2")))

    assert {e["service_user_id"] for e in await _entries(toy, tokens, service_user_id="su-9")} \
        == {"su-9"}
    assert {e["actor"] for e in await _entries(toy, tokens, actor="su-2")} == {"su-2"}
    denied = await _entries(toy, tokens, outcome="denied")
    assert [e["actor"] for e in denied] == ["su-2"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await _entries(toy, tokens, since=future, record_type="Observation") == []
    assert len(await _entries(toy, tokens, until=future, record_type="Observation")) == 3


async def test_the_audit_trail_pages_with_a_cursor_without_gaps_or_repeats(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for _ in range(5):
        await _create_note(toy, tokens)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"record_type": "Observation", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await toy.get("/v1/audit-events", headers=_admin(tokens), params=params)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5


async def test_a_cursor_that_is_not_ours_is_a_400_problem(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    response = await toy_sqlite.get("/v1/audit-events", headers=_admin(tokens),
                                    params={"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("who", "status"), [
    ("clinician", 403), ("manager", 403), ("service_user", 403),
    ("system with system/*.rs", 403), ("admin", 200), ("system with system/AuditEvent.rs", 200),
])
async def test_only_admins_and_audit_systems_may_read_the_audit_trail(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory, who: str, status: int) -> None:
    token = {
        "clinician": tokens.clinician(), "manager": tokens.manager(),
        "service_user": tokens.service_user("su-1"), "admin": tokens.admin(),
        "system with system/*.rs": tokens.system(scope="system/*.rs"),
        "system with system/AuditEvent.rs": tokens.system(scope="system/AuditEvent.rs"),
    }[who]
    for path in ("/v1/audit-events", "/fhir/AuditEvent"):
        response = await toy_sqlite.get(path, headers=tokens.header(token))
        assert response.status_code == status, (path, response.text)
    assert (await toy_sqlite.get("/v1/audit-events")).status_code == 401


async def test_reading_the_audit_trail_is_itself_audited(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    await toy_sqlite.get("/v1/audit-events", headers=tokens.header(tokens.clinician("nosy")))
    entries = await _entries(toy_sqlite, tokens, record_type="AuditEvent")
    assert [(e["actor"], e["outcome"]) for e in entries] == [("nosy", "denied"),
                                                             ("admin-1", "allowed")]


async def test_the_audit_trail_exports_as_a_valid_fhir_r4_searchset_bundle(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    note_id = await _create_note(toy, tokens)
    await toy.get(f"/v1/notes/{note_id}", headers=tokens.header(tokens.service_user("su-2")))
    response = await toy.get("/fhir/AuditEvent", headers=_admin(tokens),
                             params={"patient": "Patient/su-1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset"
    resources: list[Any] = []  # fhir.resources types every field as optional
    for entry in bundle.entry or []:
        assert entry.resource is not None
        resources.append(FhirAuditEvent.model_validate(entry.resource.model_dump()))
    assert [r.action for r in resources] == ["R", "C"]  # newest first
    assert [r.outcome for r in resources] == ["4", "0"]
    denied = resources[0]
    assert denied.agent[0].who.identifier.value == "su-2"
    assert denied.agent[0].requestor is True
    # The toy's notes are no FHIR resource of the platform: named by identifier and display.
    assert {(e.what.identifier.value, e.what.display) for e in denied.entity
            if e.what.display} == {(note_id, "Observation")}
    assert {e.what.reference for e in denied.entity if e.what.reference} == {"Patient/su-1"}
    assert denied.source.site == "toy"
    assert denied.type.code == "rest"
    assert any(c.code == "read" for c in denied.subtype)
    assert denied.recorded.tzinfo is not None


async def test_fhir_search_filters_by_patient_agent_outcome_and_date(
        toy: httpx.AsyncClient, tokens: TokenFactory) -> None:
    note_id = await _create_note(toy, tokens, service_user="su-1")
    await _create_note(toy, tokens, service_user="su-5")
    await toy.get(f"/v1/notes/{note_id}", headers=tokens.header(tokens.service_user("su-2")))

    async def search(**params: Any) -> list[dict[str, Any]]:
        response = await toy.get("/fhir/AuditEvent", headers=_admin(tokens), params=params)
        assert response.status_code == 200, response.text
        return [entry["resource"] for entry in response.json()["entry"]]

    assert len(await search(patient="Patient/su-5")) == 1
    assert len(await search(patient="su-1")) == 2
    assert [r["agent"][0]["who"]["identifier"]["value"] for r in await search(outcome="4")] \
        == ["su-2"]
    today = datetime.now(UTC).date()
    assert len(await search(patient="su-1", date=today.isoformat())) == 2
    assert await search(patient="su-1", date=f"ge{today + timedelta(days=1)}") == []
    assert len(await search(patient="su-1", date=[f"ge{today}", f"lt{today + timedelta(1)}"])) \
        == 2
    bad = await toy.get("/fhir/AuditEvent", headers=_admin(tokens), params={"date": "soon"})
    assert bad.status_code == 400


async def test_fhir_search_links_to_the_next_page(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for _ in range(3):
        await _create_note(toy_sqlite, tokens)
    first = (await toy_sqlite.get("/fhir/AuditEvent", headers=_admin(tokens),
                                  params={"_count": 2, "patient": "su-1"})).json()
    assert len(first["entry"]) == 2
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = (await toy_sqlite.get(following, headers=_admin(tokens))).json()
    assert len(second["entry"]) == 1
    assert not any(link["relation"] == "next" for link in second["link"])
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert len(set(ids)) == 3


async def test_one_audit_event_can_be_read_by_id(
        toy_sqlite: httpx.AsyncClient, tokens: TokenFactory) -> None:
    await _create_note(toy_sqlite, tokens)
    entry_id = (await _entries(toy_sqlite, tokens, record_type="Observation"))[0]["id"]
    response = await toy_sqlite.get(f"/fhir/AuditEvent/{entry_id}", headers=_admin(tokens))
    assert FhirAuditEvent.model_validate(response.json()).id == entry_id
    missing = await toy_sqlite.get("/fhir/AuditEvent/nope", headers=_admin(tokens))
    assert missing.status_code == 404


# --- the buffer -----------------------------------------------------------------------------


async def _stored(database_url: str) -> list[AuditEvent]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.exec(select(AuditEvent))).all())
    finally:
        await engine.dispose()


async def test_entries_are_written_in_the_background_without_anyone_asking(
        tmp_path: Path, dev_issuer: DevIssuer, tokens: TokenFactory) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}"
    settings = toy_settings(url, dev_issuer, audit_flush_seconds=0.05)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        await _create_note(client, tokens)
        for _ in range(100):
            if await _stored(url):
                break
            await asyncio.sleep(0.05)
        assert [row.action for row in await _stored(url)] == ["create"]


async def test_entries_still_buffered_are_written_at_shutdown(
        database_url: str, dev_issuer: DevIssuer, tokens: TokenFactory) -> None:
    settings = toy_settings(database_url, dev_issuer, audit_flush_seconds=3600)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        note_id = await _create_note(client, tokens)
        await client.get(f"/v1/notes/{note_id}", headers=tokens.header(tokens.service_user("x")))
        assert client.app.state.kit.audit.pending == 2  # type: ignore[attr-defined]
        assert await _stored(database_url) == []
    rows = await _stored(database_url)
    assert sorted((r.action, r.outcome) for r in rows) == [("create", "allowed"),
                                                          ("read", "denied")]
    assert all(r.recorded_at.tzinfo is not None for r in rows)


async def test_an_entry_is_stored_exactly_as_it_was_recorded(database_url: str) -> None:
    """On SQLite the batch goes to the driver with each value converted as SQLAlchemy would;
    read back through the model, every field is the one recorded."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all,
                                  tables=[SQLModel.metadata.tables["audit_event"]])
    writes = _writes(engine)
    trail = AuditTrail(writes, flush_every=3600)
    principal = Principal(sub="staff-1", roles=frozenset({"clinician", "manager"}))
    recorded = [audit_row(principal, record_type="CrisisPlan", action="break-glass",
                          outcome=Outcome.allowed, record_id="p-1", service_user_id="su-1",
                          source_address="10.0.0.7", request_id="req-1", purpose="BTG"),
                audit_row(None, record_type="Goal", action="read", outcome=Outcome.denied)]
    for row in recorded:
        trail.record(row)
    await trail.flush()
    try:
        async with session_factory(engine)() as session:
            stored = {entry.id: entry.model_dump()
                      for entry in (await session.exec(select(AuditEvent))).all()}
    finally:
        await engine.dispose()
    assert stored == {row["id"]: row for row in recorded}


async def test_a_failed_flush_keeps_its_entries_for_the_next_one(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    writes = _writes(engine)
    trail = AuditTrail(writes, flush_every=3600)
    principal = Principal(sub="staff-1", roles=frozenset({"clinician"}))
    trail.record(audit_entry(principal, record_type="Goal", action="read",
                             outcome=Outcome.allowed, record_id="g-1", service_user_id="su-1"))
    await trail.flush()  # no table yet: the write fails
    assert trail.pending == 1
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all,
                                  tables=[SQLModel.metadata.tables["audit_event"]])
    await trail.flush()
    assert trail.pending == 0
    async with session_factory(engine)() as session:
        assert [r.record_id for r in (await session.exec(select(AuditEvent))).all()] == ["g-1"]
    await engine.dispose()


async def test_a_flush_returns_once_a_flush_already_writing_has_finished(
        tmp_path: Path) -> None:
    """An explicit flush (a test reading the trail, the app stopping) while the background
    flush is writing a batch waits for that batch, instead of finding the buffer empty."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all,
                                  tables=[SQLModel.metadata.tables["audit_event"]])
    trail = AuditTrail(_writes(engine), flush_every=3600)
    principal = Principal(sub="staff-1", roles=frozenset({"clinician"}))
    for number in range(200):
        trail.record(audit_entry(principal, record_type="Goal", action="read",
                                 outcome=Outcome.allowed, record_id=f"g-{number}",
                                 service_user_id="su-1"))
    writing = asyncio.create_task(trail.flush())  # the background flush, say
    await asyncio.sleep(0)  # it has taken the whole buffer and is writing it
    assert trail.pending == 0 and not writing.done()
    await trail.flush()
    assert writing.done()
    async with session_factory(engine)() as session:
        assert len((await session.exec(select(AuditEvent))).all()) == 200
    await engine.dispose()


async def test_stopping_while_a_batch_is_being_written_loses_none_of_it(
        tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all,
                                  tables=[SQLModel.metadata.tables["audit_event"]])
    trail = AuditTrail(_writes(engine), flush_every=3600,
                       batch_size=100)
    trail.start()
    principal = Principal(sub="staff-1", roles=frozenset({"clinician"}))
    for number in range(150):  # the hundredth wakes the background flush
        trail.record(audit_entry(principal, record_type="Goal", action="read",
                                 outcome=Outcome.allowed, record_id=f"g-{number}",
                                 service_user_id="su-1"))
    for _ in range(100):
        await asyncio.sleep(0)
        if trail.pending < 150:
            break
    assert trail.pending == 0  # the background flush has taken them and is writing them
    await trail.stop()
    async with session_factory(engine)() as session:
        assert len((await session.exec(select(AuditEvent))).all()) == 150
    await engine.dispose()


async def test_stopping_just_as_a_full_buffer_wakes_the_flush_still_stops(
        tmp_path: Path) -> None:
    """The batch that fills the buffer wakes the background flush; a stop before it has run
    met Python 3.11's ``wait_for``, which then returns instead of being cancelled, and the
    app's shutdown waited for ever (seen stopping a service under load)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all,
                                  tables=[SQLModel.metadata.tables["audit_event"]])
    writes = _writes(engine)
    trail = AuditTrail(writes, flush_every=0.05, batch_size=10)
    trail.start()
    for _ in range(3):  # the background flush and the wait inside it start
        await asyncio.sleep(0)
    principal = Principal(sub="staff-1", roles=frozenset({"clinician"}))
    for number in range(10):  # the tenth wakes it
        trail.record(audit_entry(principal, record_type="Goal", action="read",
                                 outcome=Outcome.allowed, record_id=f"g-{number}",
                                 service_user_id="su-1"))
    stopping = asyncio.create_task(trail.stop())
    done, _ = await asyncio.wait([stopping], timeout=5)
    assert stopping in done, "stopping the audit trail did not end"
    async with session_factory(engine)() as session:
        assert len((await session.exec(select(AuditEvent))).all()) == 10
    await engine.dispose()


def test_an_audit_purpose_is_a_code_never_free_text() -> None:
    principal = Principal(sub="staff-1")
    entry = audit_entry(principal, record_type="CarePlan", action="read",
                        outcome=Outcome.allowed, purpose="BTG")
    assert entry.purpose == "BTG"
    with pytest.raises(ValueError, match="code"):
        audit_entry(principal, record_type="CarePlan", action="read", outcome=Outcome.allowed,
                    purpose="she said she feels unsafe at home")
