"""Fast seeding straight into a service's own PostgreSQL tables, through SQLAlchemy's asyncpg
dialect and the tables as the migrations left them: records cloned from one the service made
through its API, outbox rows built with the kit's own envelope, and the records a large
workforce team reads."""

import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Column, MetaData, Table, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from recovery.common.events.envelope import CloudEvent

RELAY_EVENT_TYPE = "recovery.goals.bench.relayed"


@asynccontextmanager
async def database(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a service's database for one piece of seeding; its connections belong to
    the event loop that opened them, so each piece has its own."""
    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def tables(engine: AsyncEngine, *names: str) -> dict[str, Table]:
    """The named tables as the service's migrations made them."""
    metadata = MetaData()
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: metadata.reflect(sync, only=list(names)))
    return {name: metadata.tables[name] for name in names}


#: Kit tables and bookkeeping that a record's own rows never live in.
_NOT_RECORD_TABLES = {"alembic_version", "outbox_event", "audit_event"}


def _is_text(column: Column[Any]) -> bool:
    try:
        return column.type.python_type is str
    except NotImplementedError:
        return False


async def clone_record(url: str, template_id: str, service_users: list[str]) -> list[str]:
    """Clone the record ``template_id`` (every row that is it or names it by id: a plan and its
    versions), once per person of ``service_users``; returns the clones' ids.

    Each clone gets a fresh id, named wherever the template's was (its JSON documents too),
    and its person; other text keys get fresh UUIDs, everything else is copied."""
    new_ids = [str(uuid.uuid4()) for _ in service_users]
    async with database(url) as engine:
        metadata = MetaData()
        async with engine.connect() as connection:
            await connection.run_sync(metadata.reflect)
            template: dict[Table, list[dict[str, Any]]] = {}
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if _is_text(c)]
                if table.name in _NOT_RECORD_TABLES or not columns:
                    continue
                found = (await connection.execute(select(table).where(
                    or_(*(column == template_id for column in columns))))).mappings().all()
                if found:
                    template[table] = [dict(row) for row in found]
        person = next(row["service_user_id"] for rows in template.values() for row in rows
                      if "service_user_id" in row)
        async with engine.begin() as connection:
            for table, rows in template.items():
                keys = {c.name for c in table.primary_key.columns}
                clones = [_clone_row(row, {template_id: new_id, person: new_person}, keys)
                          for new_id, new_person in zip(new_ids, service_users, strict=True)
                          for row in rows]
                for start in range(0, len(clones), 5_000):
                    await connection.execute(insert(table), clones[start:start + 5_000])
    return new_ids


def _clone_row(row: dict[str, Any], renames: dict[str, str], keys: set[str]) -> dict[str, Any]:
    clone: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, str) and value in renames:
            clone[name] = renames[value]
        elif name in keys and isinstance(value, str):
            clone[name] = str(uuid.uuid4())
        elif isinstance(value, dict | list):
            # Documents and snapshots name the record and its person too.
            encoded = json.dumps(value)
            for old, new in renames.items():
                encoded = encoded.replace(old, new)
            clone[name] = json.loads(encoded)
        else:
            clone[name] = value
    return clone


async def write_outbox_events(engine: AsyncEngine, count: int) -> None:
    """Commit ``count`` outbox rows in one transaction, as if as many changes had happened."""
    outbox = (await tables(engine, "outbox_event"))["outbox_event"]
    now = datetime.now(UTC)
    rows = []
    for number in range(count):
        event = CloudEvent(source="goals", type=RELAY_EVENT_TYPE, subject=str(uuid.uuid4()),
                           data={"sequence": number})
        rows.append({"event_id": event.id, "type": event.type, "subject": event.subject,
                     "occurred_at": now, "envelope": event.model_dump(mode="json"),
                     "published_at": None})
    async with engine.begin() as connection:
        await connection.execute(insert(outbox), rows)


async def unpublished_events(engine: AsyncEngine) -> int:
    outbox = (await tables(engine, "outbox_event"))["outbox_event"]
    async with engine.connect() as connection:
        return int((await connection.execute(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )).scalar_one())


#: Workforce's tables a team's readiness and peer share read.
WORKFORCE_TABLES = ("care_contact", "care_minutes", "supervision_session", "climate_response",
                    "training_record", "recruitment_panel", "appraisal", "team")


async def seed_workforce_team(url: str, team: str, staff_ids: list[str], contacts_count: int,
                              *, peer_every: int, contact_days: int) -> None:
    """Care contacts and the records readiness reads (supervision, climate, training facts,
    panels, appraisals, a lead) for a team made through the API; the monthly minutes are
    summed from the contacts exactly as the service keeps them."""
    rng = random.Random(4)
    today = date.today()
    now = datetime.now(UTC)

    def day_within(days: int) -> date:
        return today - timedelta(days=rng.randrange(days))

    contacts = []
    for _ in range(contacts_count):
        staff_id = rng.choice(staff_ids)
        contacts.append({
            "id": str(uuid.uuid4()), "team_id": team, "staff_id": staff_id,
            "service_user_id": f"su-{rng.randrange(5000):05d}",
            "occurred_on": day_within(contact_days), "minutes": rng.choice((15, 30, 45, 60)),
            "mode": "group" if rng.random() < 0.2 else "individual",
            "by_peer": int(staff_id.rsplit("-", 1)[1]) % peer_every == 0,
            "recorded_by": "bench", "recorded_at": now})
    records: dict[str, list[dict[str, Any]]] = {
        "care_contact": contacts,
        "supervision_session": [
            {"id": str(uuid.uuid4()), "staff_id": staff_id, "team_id": team,
             "supervisor_id": staff_ids[0], "held_on": day_within(80),
             "recovery_focused": rng.random() < 0.8, "peer_supervision": False,
             "quality": rng.randrange(2, 6), "recorded_by": "bench", "recorded_at": now}
            for staff_id in staff_ids[1:]],
        "climate_response": [
            {"id": str(uuid.uuid4()), "team_id": team, "responded_on": today,
             "answers": [4, 4, 3, 4, 5], "score": 4.0} for _ in range(40)],
        # Training's facts as its events leave them: most of the team has completed the
        # foundation course, some rated it; the lead (staff_ids[1]) among them.
        "training_record": [
            {"enrolment_id": str(uuid.uuid4()), "staff_id": staff_id, "course_id": "foundation",
             "foundation": True, "completed_on": day_within(300), "completed_version": 2,
             "rating": float(rng.randrange(3, 6)) if n % 2 else None,
             "rating_version": 3 if n % 2 else 0, "updated_at": now}
            for n, staff_id in enumerate(staff_ids) if n % 5],
        "recruitment_panel": [
            {"id": str(uuid.uuid4()), "team_id": team, "role_type": "peer_specialist",
             "held_on": day_within(300), "members": ["staff", "service_user"],
             "lived_experience_members": 1, "recorded_by": "bench", "recorded_at": now}
            for _ in range(12)],
        "appraisal": [
            {"id": str(uuid.uuid4()), "staff_id": staff_id, "team_id": team,
             "held_on": day_within(300), "service_user_feedback_included": rng.random() < 0.6,
             "recovery_objectives_set": True, "recorded_by": "bench", "recorded_at": now}
            for staff_id in staff_ids],
    }
    async with database(url) as engine:
        found = await tables(engine, *WORKFORCE_TABLES)
        async with engine.begin() as connection:
            for name, rows in records.items():
                await connection.execute(insert(found[name]), rows)
            minutes = found["care_minutes"]
            await connection.execute(minutes.delete().where(minutes.c.team_id == team))
            await connection.execute(text(
                "INSERT INTO care_minutes (team_id, month, by_peer, minutes, contacts) "
                "SELECT team_id, to_char(occurred_on, 'YYYY-MM'), by_peer, sum(minutes), "
                "count(*) FROM care_contact WHERE team_id = :team GROUP BY 1, 2, 3"),
                {"team": team})
            await connection.execute(update(found["team"]).where(found["team"].c.id == team)
                                     .values(recovery_lead_staff_id=staff_ids[1]))
