"""Fast seeding straight into the service's own tables: goals cloned from one that the
service created through its API, and outbox rows built with the kit's own envelope."""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, MetaData, Table, create_engine, func, insert, select

from recovery.common.events.envelope import CloudEvent
from recovery.common.events.outbox import OutboxEvent
from recovery.common.timeutil import utcnow

# Kit tables and bookkeeping that a goal's rows never live in.
_NOT_GOAL_TABLES = {"alembic_version", "outbox_event", "audit_event"}
RELAY_EVENT_TYPE = "recovery.goals.bench.relayed"


def sync_engine(async_url: str) -> Engine:
    """A plain synchronous engine on the same SQLite file the service uses."""
    if not async_url.startswith("sqlite+aiosqlite:///"):
        raise ValueError("the benchmark seeds its own SQLite database only")
    return create_engine(async_url.replace("sqlite+aiosqlite:", "sqlite:", 1))


def _python_type(column: Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _rows_of(engine: Engine, goal_id: str) -> dict[Table, list[dict[str, Any]]]:
    """Every row in the service's tables that is the goal or hangs off it."""
    metadata = MetaData()
    metadata.reflect(engine)
    found: dict[Table, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in _NOT_GOAL_TABLES or table.name.startswith("processed_"):
                continue
            text_columns = [c for c in table.columns if _python_type(c) is str]
            if not text_columns:
                continue
            condition = text_columns[0] == goal_id
            for column in text_columns[1:]:
                condition = condition | (column == goal_id)
            rows = [dict(row._mapping) for row in connection.execute(
                select(table).where(condition))]
            if rows:
                found[table] = rows
    return found


class GoalSeeder:
    """Clones one goal the service created, with every row that hangs off it (versions,
    steps...), into as many goals as a scenario needs."""

    def __init__(self, engine: Engine, template_id: str) -> None:
        self.engine = engine
        self.template_id = template_id
        self.template = _rows_of(engine, template_id)
        owners = [table for table, rows in self.template.items()
                  if [rows[0].get(c.name) for c in table.primary_key.columns] == [template_id]]
        if len(owners) != 1:
            raise RuntimeError(f"cannot tell which table holds goal {template_id}: {owners}")
        self.goal_table = owners[0]

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(self.goal_table)).scalar_one())

    def fill_to(self, total: int, *, service_users: int = 5_000) -> int:
        """Clone the template until the goal table holds ``total`` goals; returns clones made."""
        missing = max(0, total - self.count())
        self.clone(missing, service_users=service_users)
        return missing

    def clone(self, copies: int, *, service_users: int = 5_000, chunk: int = 5_000) -> None:
        """Insert ``copies`` clones, fresh ids each.

        Integer keys are left to the database, other primary keys get new UUIDs, timestamps
        step back a millisecond per clone so keyset order is realistic, and the clones spread
        over ``service_users`` people.
        """
        made = 0
        with self.engine.begin() as connection:
            while made < copies:
                batch = range(made, min(copies, made + chunk))
                # One new id per clone, shared by all its rows across tables.
                new_ids = [str(uuid.uuid4()) for _ in batch]
                for table, rows in self.template.items():
                    keys = {c.name for c in table.primary_key.columns}
                    # Only a lone integer key is the database's to number; an integer in a
                    # composite key (a version number) is data.
                    integer_keys = {c.name for c in table.primary_key.columns
                                    if _python_type(c) is int and len(keys) == 1}
                    clones = []
                    for number, new_goal in zip(batch, new_ids, strict=True):
                        step_back = timedelta(milliseconds=number + 1)
                        person = f"su-bench-{number % service_users:05d}"
                        clones += [_clone_row(row, self.template_id, new_goal, keys,
                                              integer_keys, step_back, person) for row in rows]
                    connection.execute(insert(table), clones)
                made = batch.stop


def _clone_row(row: dict[str, Any], template_id: str, new_goal: str, keys: set[str],
               integer_keys: set[str], step_back: timedelta, service_user: str
               ) -> dict[str, Any]:
    clone: dict[str, Any] = {}
    for name, value in row.items():
        if name in integer_keys:
            continue
        if value == template_id:
            clone[name] = new_goal
        elif name in keys and isinstance(value, str):
            clone[name] = str(uuid.uuid4())
        elif isinstance(value, datetime):
            clone[name] = value - step_back
        elif name == "service_user_id":
            clone[name] = service_user
        elif isinstance(value, dict | list):
            # Snapshots and references inside JSON name the goal too.
            clone[name] = json.loads(json.dumps(value).replace(template_id, new_goal))
        else:
            clone[name] = value
    return clone


def write_outbox_events(engine: Engine, count: int) -> None:
    """Commit ``count`` outbox rows in one transaction, as if as many changes had happened."""
    now = utcnow()
    rows = []
    for number in range(count):
        event = CloudEvent(source="goals", type=RELAY_EVENT_TYPE, subject=str(uuid.uuid4()),
                           data={"sequence": number})
        rows.append({"event_id": event.id, "type": event.type, "subject": event.subject,
                     "occurred_at": now, "envelope": event.model_dump(mode="json"),
                     "published_at": None})
    with engine.begin() as connection:
        connection.execute(insert(OutboxEvent.__table__), rows)  # type: ignore[attr-defined]


def unpublished_events(engine: Engine) -> int:
    table = OutboxEvent.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(table).where(table.c.published_at.is_(None))
        ).scalar_one())
