"""FHIR R4 Practitioner, PractitionerRole and CareTeam from our staff and teams, and the
``/fhir`` read and metadata routes. Lived experience is never part of any of them."""

import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Request, Response
from sqlmodel import col, select

from recovery.common import fhir
from recovery.common.auth import Verb
from recovery.common.deps import AccessDep, SessionDep
from recovery.common.fhir import BASE, TEAM_SYSTEM
from recovery.common.problems import problem_responses
from recovery.common.settings import Settings
from recovery.workforce import service
from recovery.workforce.models import RoleType, Staff, StaffPublic, Team

NUCC = "http://nucc.org/provider-taxonomy"
ROLE_TYPE_SYSTEM = f"{BASE}/CodeSystem/workforce-role-type"
PROFESSION_SYSTEM = f"{BASE}/CodeSystem/profession"
GRADE_SYSTEM = f"{BASE}/CodeSystem/grade"
STAFF_SYSTEM = f"{BASE}/staff"
#: NUCC Health Care Provider Taxonomy: Peer Specialist.
PEER_SPECIALIST_NUCC = "175T00000X"


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return fhir.concept(system, code, display)


def _period(staff: StaffPublic) -> dict[str, str]:
    period = {"start": staff.start_date.isoformat()}
    if staff.end_date:
        period["end"] = staff.end_date.isoformat()
    return period


def meta(version: int | str, updated_at: datetime) -> dict[str, str]:
    return {"versionId": str(version), "lastUpdated": fhir.instant(updated_at)}


def practitioner_resource(staff: StaffPublic, changed: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": staff.id,
        "meta": meta(staff.version, changed),
        "identifier": [{"system": STAFF_SYSTEM, "value": staff.id}],
        "active": staff.in_post,
        "name": [{"text": staff.display_name}],
    }


def practitioner_role_resource(staff: StaffPublic, changed: datetime) -> dict[str, Any]:
    codes = [_concept(ROLE_TYPE_SYSTEM, staff.role_type.value),
             _concept(PROFESSION_SYSTEM, staff.profession.value)]
    if staff.role_type is RoleType.peer_specialist:
        codes.insert(0, _concept(NUCC, PEER_SPECIALIST_NUCC, "Peer Specialist"))
    return {
        "resourceType": "PractitionerRole",
        "id": staff.id,
        "meta": meta(staff.version, changed),
        "active": staff.in_post,
        "period": _period(staff),
        "practitioner": {"reference": f"Practitioner/{staff.id}"},
        "code": codes,
        "specialty": [_concept(GRADE_SYSTEM, staff.grade)],
        "extension": [{"url": f"{BASE}/StructureDefinition/team",
                       "valueIdentifier": {"system": TEAM_SYSTEM, "value": staff.team_id}},
                      {"url": f"{BASE}/StructureDefinition/fte",
                       "valueDecimal": staff.fte}],
    }


def care_team_resource(team: Team, members: list[tuple[StaffPublic, datetime]]
                       ) -> dict[str, Any]:
    """The team with its members in post. Its version says what a client holds: the team's
    own version, then a digest of its members' versions (staff joining, leaving or changing
    are changes of the CareTeam too, though not of the team record)."""
    roster = ",".join(f"{m.id}:{m.version}" for m, _ in members)
    digest = hashlib.sha256(roster.encode()).hexdigest()[:12]
    changed = max([team.updated_at, *(when for _, when in members)])
    return {
        "resourceType": "CareTeam",
        "id": team.id,
        "meta": meta(f"{team.version}.{digest}", changed),
        "identifier": [{"system": TEAM_SYSTEM, "value": team.id}],
        "status": "active",
        "name": team.name,
        "participant": [{
            "role": [_concept(ROLE_TYPE_SYSTEM, member.role_type.value)],
            "member": {"reference": f"PractitionerRole/{member.id}"},
        } for member, _ in members],
    }


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: reads of staff, their roles and teams."""
    return [{"type": kind, "versioning": "versioned", "interaction": [{"code": "read"}]}
            for kind in ("Practitioner", "PractitionerRole", "CareTeam")]


router = fhir.fhir_router("workforce", capability_statement)
_READ = {**fhir.FHIR_OK, **problem_responses(404)}
ResourceId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/Practitioner/{staff_id}", response_model=None, responses=_READ,
            summary="Read a Practitioner")
async def read_practitioner(request: Request, staff_id: ResourceId, session: SessionDep,
                            access: AccessDep) -> Response:
    staff = await service.get_staff(session, access, staff_id)
    return fhir.read_response(request, practitioner_resource(service.staff_public(staff),
                                                             staff.updated_at))


@router.get("/PractitionerRole/{staff_id}", response_model=None, responses=_READ,
            summary="Read a PractitionerRole (peer specialists coded NUCC 175T00000X)")
async def read_practitioner_role(request: Request, staff_id: ResourceId, session: SessionDep,
                                 access: AccessDep) -> Response:
    staff = await service.get_staff(session, access, staff_id)
    return fhir.read_response(request, practitioner_role_resource(service.staff_public(staff),
                                                                  staff.updated_at))


@router.get("/CareTeam/{team_id}", response_model=None, responses=_READ,
            summary="Read a CareTeam with its members in post")
async def read_care_team(request: Request, team_id: ResourceId, session: SessionDep,
                         access: AccessDep) -> Response:
    team = await service.get_team(session, access, team_id, verb=Verb.read)
    on = service.today()
    rows = (await session.exec(select(Staff).where(col(Staff.team_id) == team.id)
                               .order_by(col(Staff.id)).limit(1000))).all()
    members = [(service.staff_public(row, on), row.updated_at) for row in rows]
    return fhir.read_response(request, care_team_resource(
        team, [(m, when) for m, when in members if m.in_post]))
