"""The baseline: a bare Starlette app that does each scenario's database work with asyncpg
directly (a pool, statements prepared once per connection), against the same migrated
schema, served with the services' server settings. No token, no rules, no events published:
what is left is the least any service could do for the same request on PostgreSQL.

It writes what the service's operation writes (see each service's service.py): a goal with
its first version, a signature with its plan's guarded update, a care contact with its
month's minutes; each with the audit entry and, where the service has one, the outbox row,
all in one transaction."""

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: The database the baseline works on, as an asyncpg DSN (postgresql://...).
DATABASE_ENV = "BENCH_DATABASE_URL"
#: The services' own pool: 10 connections and as many again on demand.
POOL_MIN, POOL_MAX = 10, 20
ACTOR = "bench-baseline"

READ_GOAL = "SELECT service_user_id, team_id, version, document::text FROM goal WHERE id = $1"
READ_ACTIVE_PLAN = ("SELECT team_id, id, active_document::text FROM crisis_plan "
                    "WHERE service_user_id = $1 AND status != 'entered-in-error'")
INSERT_GOAL = (
    "INSERT INTO goal (id, service_user_id, team_id, kind, life_area, chime_tags, description, "
    "why_it_matters, strengths, supporters, target_date, serves_goal_ids, steps, expressed_by, "
    "proposed_by, lifecycle_status, achievement_status, status_reason, created_at, updated_at, "
    "status_changed_at, accepted_at, last_reviewed_on, version, document) VALUES ($1, $2, $3, "
    "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, "
    "$23, $24, $25)")
INSERT_GOAL_VERSION = ("INSERT INTO goal_version (goal_id, version, recorded_at, recorded_by, "
                       "change, snapshot) VALUES ($1, $2, $3, $4, $5, $6)")
READ_PLAN_TO_SIGN = (
    "SELECT service_user_id, team_id, status, version, required_parties, active_version, "
    "review_on, not_individualised, revision, document::text FROM crisis_plan WHERE id = $1")
INSERT_SIGNATURE = ("INSERT INTO crisis_plan_signature (id, plan_id, version, signatory, party, "
                    "content_hash, signed_at, withdrawn_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8)")
SIGN_PLAN = ("UPDATE crisis_plan SET updated_at = $1, revision = revision + 1, document = $2 "
             "WHERE id = $3 AND revision = $4")
READ_DELIVERER = "SELECT team_id, role_type, start_date, end_date FROM staff WHERE id = $1"
INSERT_CONTACT = ("INSERT INTO care_contact (id, team_id, staff_id, service_user_id, occurred_on, "
                  "minutes, mode, by_peer, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, "
                  "$6, $7, $8, $9, $10)")
ADD_MINUTES = ("INSERT INTO care_minutes (team_id, month, by_peer, minutes, contacts) "
               "VALUES ($1, $2, $3, $4, 1) ON CONFLICT (team_id, month, by_peer) DO UPDATE SET "
               "minutes = care_minutes.minutes + excluded.minutes, "
               "contacts = care_minutes.contacts + 1")
INSERT_AUDIT = ("INSERT INTO audit_event (id, recorded_at, actor, actor_roles, record_type, "
                "record_id, service_user_id, action, outcome, source_address, request_id, "
                "purpose) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
INSERT_OUTBOX = ("INSERT INTO outbox_event (event_id, type, subject, occurred_at, envelope, "
                 "published_at) VALUES ($1, $2, $3, $4, $5, NULL)")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _stored(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type="application/json")


def _not_found() -> JSONResponse:
    return JSONResponse({"detail": "not found"}, status_code=404)


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def _audit(connection: asyncpg.Connection, now: datetime, record_type: str,
                 record_id: str | None, service_user_id: str | None, action: str) -> None:
    await connection.execute(INSERT_AUDIT, str(uuid.uuid4()), now, ACTOR, "clinician",
                             record_type, record_id, service_user_id, action, "allowed",
                             "127.0.0.1", uuid.uuid4().hex, None)


async def _event(connection: asyncpg.Connection, now: datetime, source: str, kind: str,
                 subject: str, data: dict[str, Any]) -> None:
    event_id = str(uuid.uuid4())
    envelope = {"specversion": "1.0", "id": event_id, "source": source, "type": kind,
                "subject": subject, "time": now.isoformat(), "datacontenttype":
                "application/json", "data": data}
    await connection.execute(INSERT_OUTBOX, event_id, kind, subject, now, _json(envelope))


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "baseline"})


async def read_goal(request: Request) -> Response:
    row = await _pool(request).fetchrow(READ_GOAL, request.path_params["goal_id"])
    return _not_found() if row is None else _stored(row[3])


async def read_active_plan(request: Request) -> Response:
    row = await _pool(request).fetchrow(READ_ACTIVE_PLAN, request.path_params["person"])
    return _not_found() if row is None or row[2] is None else _stored(row[2])


async def create_goal(request: Request) -> Response:
    body = json.loads(await request.body())
    now = datetime.now(UTC)
    goal_id = str(uuid.uuid4())
    document = {"id": goal_id, "service_user_id": body["service_user_id"],
                "team_id": body["team_id"], "kind": "life", "description": body["description"],
                "life_area": None, "chime_tags": [], "why_it_matters": None, "strengths": [],
                "supporters": [], "target_date": None, "serves_goal_ids": [], "steps": [],
                "expressed_by": "staff", "proposed_by": ACTOR, "lifecycle_status": "proposed",
                "achievement_status": None, "status_reason": None,
                "created_at": now.isoformat(), "updated_at": now.isoformat(),
                "status_changed_at": now.isoformat(), "accepted_at": None,
                "last_reviewed_on": None, "version": 1}
    stored = _json(document)
    async with _pool(request).acquire() as connection, connection.transaction():
        await connection.execute(
            INSERT_GOAL, goal_id, body["service_user_id"], body["team_id"], "life", None, "[]",
            body["description"], None, "[]", "[]", None, "[]", "[]", "staff", ACTOR, "proposed",
            None, None, now, now, now, None, None, 1, stored)
        await connection.execute(INSERT_GOAL_VERSION, goal_id, 1, now, ACTOR, "proposed", stored)
        await _audit(connection, now, "Goal", goal_id, body["service_user_id"], "create")
        await _event(connection, now, "goals", "recovery.goals.goal.proposed", goal_id, {
            "goal_id": goal_id, "service_user_id": body["service_user_id"],
            "team_id": body["team_id"], "kind": "life", "lifecycle_status": "proposed",
            "version": 1, "changed_by": ACTOR, "occurred_at": now.isoformat()})
    return _stored(stored, 201)


class LostRaceError(Exception):
    """Another signature changed the plan between this one's read and its update."""


async def _sign_once(connection: asyncpg.Connection, plan_id: str,
                     body: dict[str, Any]) -> Response:
    async with connection.transaction():
        row = await connection.fetchrow(READ_PLAN_TO_SIGN, plan_id)
        if row is None:
            return _not_found()
        service_user_id, team_id, status, version, revision = row[0], row[1], row[2], row[3], row[8]
        now = datetime.now(UTC)
        party = body.get("party", "care_coordinator")
        signature = {"id": str(uuid.uuid4()), "signatory": ACTOR, "party": party,
                     "version": version, "content_hash": body["content_hash"],
                     "signed_at": now.isoformat(), "withdrawn_at": None}
        await connection.execute(INSERT_SIGNATURE, signature["id"], plan_id, version, ACTOR,
                                 party, body["content_hash"], now, None)
        document = json.loads(row[9])
        document["signatures"].append(signature)
        document["updated_at"] = signature["signed_at"]
        stored = _json(document)
        if await connection.execute(SIGN_PLAN, now, stored, plan_id, revision) == "UPDATE 0":
            raise LostRaceError
        await _audit(connection, now, "CrisisPlan", plan_id, service_user_id, "sign")
        await _event(connection, now, "crisis-plans", "recovery.crisis-plans.version.signed",
                     plan_id, {"plan_id": plan_id, "service_user_id": service_user_id,
                               "team_id": team_id, "status": status, "version": version,
                               "changed_by": ACTOR, "occurred_at": now.isoformat(),
                               "content_hash": body["content_hash"], "party": party})
        return _stored(stored, 201)


async def sign_plan(request: Request) -> Response:
    plan_id = request.path_params["plan_id"]
    body = json.loads(await request.body())
    async with _pool(request).acquire() as connection:
        # The service retries a signature that lost a race for the plan's row; so does this.
        for _ in range(10):
            try:
                return await _sign_once(connection, plan_id, body)
            except LostRaceError:
                continue
    return JSONResponse({"detail": "the plan kept changing"}, status_code=409)


async def log_contact(request: Request) -> Response:
    body = json.loads(await request.body())
    now = datetime.now(UTC)
    occurred_on = date.fromisoformat(body["occurred_on"])
    async with _pool(request).acquire() as connection, connection.transaction():
        staff = await connection.fetchrow(READ_DELIVERER, body["staff_id"])
        if staff is None:
            return _not_found()
        contact_id = str(uuid.uuid4())
        by_peer = staff[1] == "peer_specialist"
        await connection.execute(INSERT_CONTACT, contact_id, staff[0], body["staff_id"],
                                 body["service_user_id"], occurred_on, body["minutes"],
                                 body["mode"], by_peer, ACTOR, now)
        await connection.execute(ADD_MINUTES, staff[0], occurred_on.isoformat()[:7], by_peer,
                                 body["minutes"])
        await _audit(connection, now, "CareContact", None, None, "create")
    return JSONResponse({"id": contact_id, "team_id": staff[0], "staff_id": body["staff_id"],
                         "service_user_id": body["service_user_id"],
                         "occurred_on": body["occurred_on"], "minutes": body["minutes"],
                         "mode": body["mode"], "by_peer": by_peer, "recorded_by": ACTOR,
                         "recorded_at": now.isoformat()}, status_code=201)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ[DATABASE_ENV], min_size=POOL_MIN,
                                               max_size=POOL_MAX)
    try:
        yield
    finally:
        await app.state.pool.close()


def create_app() -> Starlette:
    """The baseline's routes have the services' paths, so a scenario's requests serve both."""
    return Starlette(lifespan=lifespan, routes=[
        Route("/healthz", healthz),
        Route("/v1/goals/{goal_id}", read_goal),
        Route("/v1/goals", create_goal, methods=["POST"]),
        Route("/v1/people/{person}/crisis-plan", read_active_plan),
        Route("/v1/crisis-plans/{plan_id}/signatures", sign_plan, methods=["POST"]),
        Route("/v1/care-contacts", log_contact, methods=["POST"]),
    ])
