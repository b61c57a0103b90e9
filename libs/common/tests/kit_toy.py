"""A toy service built with the kit, for the kit's own tests: versioned notes about service
users, guarded by the kit's identity, access and audit."""

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Response
from pydantic import BaseModel, Field
from sqlalchemy import Column
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from recovery.common.app import create_service_app
from recovery.common.auth import Verb, require_scope
from recovery.common.db import UTCDateTime
from recovery.common.deps import AccessDep, PrincipalDep, SessionDep
from recovery.common.dev_issuer import DevIssuer
from recovery.common.idempotency import Answer, IdempotencyKey, keep_answer
from recovery.common.problems import Problem, problem_responses
from recovery.common.settings import Settings
from recovery.common.testing.plugin import make_settings
from recovery.common.timeutil import utcnow
from recovery.common.versioning import etag, require_if_match, set_etag

SERVICE = "toy"
MIGRATIONS_DIR = Path(__file__).parent / "toy_migrations"
RESOURCE = "Observation"  # any FHIR type; scopes are checked against it


class ToyNote(SQLModel, table=True):
    __tablename__ = "toy_note"

    id: str = SQLField(default_factory=lambda: str(uuid.uuid4()), primary_key=True)
    service_user_id: str = SQLField(max_length=64)
    team_id: str = SQLField(max_length=64)
    size: int
    version: int = 1
    created_at: datetime = SQLField(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))


class NoteIn(BaseModel):
    service_user_id: str = Field(min_length=1, max_length=64)
    team_id: str = Field(min_length=1, max_length=64)
    size: int = Field(ge=0, le=1000)


class NoteChange(BaseModel):
    size: int = Field(ge=0, le=1000)


class NoteOut(BaseModel):
    id: str
    service_user_id: str
    team_id: str
    size: int
    version: int


class Caller(BaseModel):
    sub: str
    roles: list[str]
    teams: list[str]
    patient: str | None


router = APIRouter()


@router.get("/v1/whoami")
async def whoami(principal: PrincipalDep) -> Caller:
    return Caller(sub=principal.sub, roles=sorted(principal.roles), teams=sorted(principal.teams),
                  patient=principal.patient)


@router.post("/v1/notes", status_code=201, response_model=NoteOut,
             responses=problem_responses(404))
async def create_note(body: NoteIn, access: AccessDep, session: SessionDep,
                      once: IdempotencyKey) -> Response:
    require_scope(access.principal, RESOURCE, Verb.create)
    note = ToyNote(service_user_id=body.service_user_id, team_id=body.team_id, size=body.size)
    access.check(RESOURCE, Verb.create, record_type=RESOURCE, record_id=note.id,
                 service_user_id=note.service_user_id, team_id=note.team_id, action="create")
    answer = Answer(201, NoteOut.model_validate(note, from_attributes=True).model_dump_json(),
                    etag(note.version), location=f"/v1/notes/{note.id}")
    await keep_answer(once, session, answer)
    session.add(note)
    await session.commit()
    return answer.response()


async def _note(session: SessionDep, note_id: str) -> ToyNote:
    note = await session.get(ToyNote, note_id)
    if note is None:
        raise Problem(404, f"No {RESOURCE} with that id is available to you.", kind="not-found")
    return note


@router.get("/v1/notes/{note_id}")
async def read_note(note_id: str, access: AccessDep, session: SessionDep,
                    response: Response) -> NoteOut:
    require_scope(access.principal, RESOURCE, Verb.read)
    note = await _note(session, note_id)
    access.check(RESOURCE, Verb.read, record_type=RESOURCE, record_id=note.id,
                 service_user_id=note.service_user_id, team_id=note.team_id, action="read")
    set_etag(response, note.version)
    return NoteOut.model_validate(note, from_attributes=True)


@router.put("/v1/notes/{note_id}", responses=problem_responses(412, 428))
async def change_note(note_id: str, body: NoteChange, access: AccessDep, session: SessionDep,
                      response: Response,
                      if_match: Annotated[str | None, Header()] = None) -> NoteOut:
    require_scope(access.principal, RESOURCE, Verb.update)
    note = await _note(session, note_id)
    access.check(RESOURCE, Verb.update, record_type=RESOURCE, record_id=note.id,
                 service_user_id=note.service_user_id, team_id=note.team_id, action="update")
    require_if_match(if_match, note.version)
    note.size = body.size
    note.version += 1
    await session.commit()
    set_etag(response, note.version)
    return NoteOut.model_validate(note, from_attributes=True)


@router.get("/v1/teams/{team_id}/figures")
async def team_figures(team_id: str, access: AccessDep) -> dict[str, str]:
    access.check_aggregates(record_type="TeamFigures", team_id=team_id)
    return {"team_id": team_id}


@router.get("/v1/boom", include_in_schema=False)
async def boom() -> None:
    raise RuntimeError("Jane Doe disclosed thoughts of self-harm")  # must never be shown


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(settings=settings or Settings(service=SERVICE), title="Toy",
                              description="The kit's test service", routers=[router],
                              migrations_dir=MIGRATIONS_DIR)


def toy_settings(database_url: str, issuer: DevIssuer, **overrides: Any) -> Settings:
    """Test settings: this database, the test issuer's keys, events off."""
    return make_settings(SERVICE, database_url=database_url, jwks_file=issuer.jwks_path,
                         **overrides)
