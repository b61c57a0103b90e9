"""The REST API under ``/v1``: thin translations from HTTP to ``service`` calls."""

from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from recovery.common.deps import AccessDep, SessionDep, SettingsDep
from recovery.common.http import Cursor, IfMatch, Limit, json_response
from recovery.common.idempotency import Answer, IdempotencyKey
from recovery.common.pagination import Page, page_size
from recovery.common.problems import problem_responses
from recovery.workforce import service
from recovery.workforce.models import (
    AppraisalCreate,
    AppraisalPublic,
    BillingExport,
    CareContactCreate,
    CareContactPublic,
    ClimateResponseAccepted,
    ClimateResponseCreate,
    ClimateSurvey,
    LivedExperienceDeclaration,
    LivedExperiencePublic,
    PanelCreate,
    PanelPublic,
    PeerShare,
    Readiness,
    RecoveryLeadAssign,
    SkillMix,
    Staff,
    StaffCreate,
    StaffLeave,
    StaffMove,
    StaffPublic,
    StaffUpdate,
    SupervisionCreate,
    SupervisionPublic,
    TeamCreate,
    TeamPublic,
)

router = APIRouter(prefix="/v1", tags=["workforce"])

TeamId = Annotated[str, Path(min_length=1, max_length=64, description="The team's id")]
StaffId = Annotated[str, Path(min_length=1, max_length=64, description="The staff id")]
Months = Annotated[int, Query(ge=1, le=36, description="Months in the trend, ending with "
                                                       "the current one")]

READ = problem_responses(404)
CREATE = problem_responses(404, 409, 422)
CHANGE = problem_responses(404, 409, 412, 422, 428)


def staff_response(staff: Staff) -> Response:
    return json_response(service.staff_public(staff), version=staff.version)


# --- teams and staff ----------------------------------------------------------------------


@router.post("/teams", status_code=201, response_model=TeamPublic, responses=CREATE,
             tags=["teams"], summary="Set up a team (its managers and admins)")
async def create_team(data: TeamCreate, session: SessionDep, access: AccessDep,
                      once: IdempotencyKey) -> Response:
    team = await service.create_team(session, access, data, once)
    return service.team_answer(team).response()


@router.get("/teams/{team_id}", response_model=TeamPublic, responses=READ, tags=["teams"],
            summary="A team and its recovery lead")
async def read_team(team_id: TeamId, session: SessionDep, access: AccessDep) -> Response:
    team = await service.get_team(session, access, team_id)
    return json_response(TeamPublic.model_validate(team), version=team.version)


@router.put("/teams/{team_id}/recovery-lead", response_model=TeamPublic, responses=CHANGE,
            tags=["teams"], summary="Name the team's recovery lead (a member in post)")
async def assign_recovery_lead(team_id: TeamId, data: RecoveryLeadAssign, session: SessionDep,
                               access: AccessDep) -> Response:
    team = await service.assign_recovery_lead(session, access, team_id, data)
    return json_response(TeamPublic.model_validate(team), version=team.version)


@router.get("/teams/{team_id}/staff", response_model=Page[StaffPublic], responses=READ,
            tags=["staff"], summary="The team's staff, by id")
async def list_staff(team_id: TeamId, session: SessionDep, access: AccessDep,
                     settings: SettingsDep, include_left: bool = False, cursor: Cursor = None,
                     limit: Limit = None) -> Response:
    page = await service.list_staff(
        session, access, team_id, include_left=include_left, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(page)


@router.post("/staff", status_code=201, response_model=StaffPublic, responses=CREATE,
             tags=["staff"], summary="Add a member of staff to a team (publishes staff joined)")
async def create_staff(data: StaffCreate, session: SessionDep, access: AccessDep,
                       once: IdempotencyKey) -> Response:
    staff = await service.create_staff(session, access, data, once)
    return service.staff_answer(staff).response()


@router.get("/staff/{staff_id}", response_model=StaffPublic, responses=READ, tags=["staff"],
            summary="A member of staff (the person, or staff of their team)")
async def read_staff(staff_id: StaffId, session: SessionDep, access: AccessDep) -> Response:
    return staff_response(await service.get_staff(session, access, staff_id))


@router.patch("/staff/{staff_id}", response_model=StaffPublic, responses=CHANGE,
              tags=["staff"], summary="Change the name or FTE (If-Match; managers and admins)")
async def update_staff(staff_id: StaffId, data: StaffUpdate, session: SessionDep,
                       access: AccessDep, if_match: IfMatch = None) -> Response:
    return staff_response(await service.update_staff(session, access, staff_id, if_match,
                                                     data))


@router.post("/staff/{staff_id}/move", response_model=StaffPublic, responses=CHANGE,
             tags=["staff"], summary="Move to another team (If-Match; publishes staff moved)")
async def move_staff(staff_id: StaffId, data: StaffMove, session: SessionDep,
                     access: AccessDep, if_match: IfMatch = None) -> Response:
    return staff_response(await service.move_staff(session, access, staff_id, if_match, data))


@router.post("/staff/{staff_id}/leave", response_model=StaffPublic, responses=CHANGE,
             tags=["staff"], summary="Record the last day in post (If-Match; staff left)")
async def leave_staff(staff_id: StaffId, data: StaffLeave, session: SessionDep,
                      access: AccessDep, if_match: IfMatch = None) -> Response:
    return staff_response(await service.leave_staff(session, access, staff_id, if_match, data))


@router.put("/staff/{staff_id}/lived-experience", response_model=LivedExperiencePublic,
            responses=READ, tags=["staff"],
            summary="The person's own, voluntary declaration of lived experience")
async def declare_lived_experience(staff_id: StaffId, data: LivedExperienceDeclaration,
                                   session: SessionDep, access: AccessDep) -> Response:
    return json_response(await service.declare_lived_experience(session, access, staff_id,
                                                                data))


@router.get("/staff/{staff_id}/lived-experience", response_model=LivedExperiencePublic,
            responses=READ, tags=["staff"],
            summary="Read a declaration (the person themselves, or an admin of their team)")
async def read_lived_experience(staff_id: StaffId, session: SessionDep,
                                access: AccessDep) -> Response:
    return json_response(await service.read_lived_experience(session, access, staff_id))


# --- care delivered -----------------------------------------------------------------------


@router.post("/care-contacts", status_code=201, response_model=CareContactPublic,
             responses=CREATE, tags=["care"], summary="Log care delivered by a team member")
async def log_contact(data: CareContactCreate, access: AccessDep,
                      once: IdempotencyKey) -> Response:
    return Answer.of(await service.log_contact(access, data, once)).response()


@router.get("/teams/{team_id}/peer-share", response_model=PeerShare, tags=["figures"],
            summary="Peer specialists' share of the team's care, by month, against the target")
async def team_peer_share(team_id: TeamId, access: AccessDep, months: Months = 12) -> Response:
    return json_response(await service.peer_share(access, team_id, months=months, until=None))


@router.get("/peer-share", response_model=PeerShare, tags=["figures"],
            summary="Peer specialists' share of the organisation's care, by month")
async def organisation_peer_share(access: AccessDep, months: Months = 12) -> Response:
    return json_response(await service.peer_share(access, None, months=months, until=None))


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"


@router.get("/teams/{team_id}/peer-support-billing", response_model=BillingExport,
            tags=["figures"], responses={
                200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                      "description": "The export as JSON, or as CSV with format=csv "
                                     "(or, without format, Accept: text/csv)"},
                **problem_responses(422)},
            summary="Billable peer support (HCPCS H0038, 15-minute units, group with HQ)")
async def peer_support_billing(
    team_id: TeamId, session: SessionDep, access: AccessDep,
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
    format: ExportFormat | None = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    export = await service.billing_export(session, access, team_id, date_from=date_from,
                                          date_to=date_to)
    # An explicit format wins; otherwise a client that asks for CSV first gets CSV.
    wants_csv = (format is ExportFormat.csv if format is not None
                 else (accept or "").lstrip().lower().startswith("text/csv"))
    if wants_csv:
        name = f"peer-support-{team_id}-{date_from}-{date_to}.csv"
        return Response(service.billing_csv(export), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return json_response(export)


@router.get("/teams/{team_id}/skill-mix", response_model=SkillMix, tags=["figures"],
            summary="FTE by profession and role type; peer to professional ratio")
async def skill_mix(team_id: TeamId, access: AccessDep) -> Response:
    return json_response(await service.skill_mix(access, team_id))


@router.get("/teams/{team_id}/readiness", response_model=Readiness, tags=["figures"],
            summary="Implementation readiness: four factors, limited by the weakest")
async def readiness(team_id: TeamId, access: AccessDep) -> Response:
    return json_response(await service.readiness(access, team_id))


# --- culture in management processes ------------------------------------------------------


@router.post("/supervision-sessions", status_code=201, response_model=SupervisionPublic,
             responses=CREATE, tags=["culture"], summary="Record a supervision session")
async def record_supervision(data: SupervisionCreate, session: SessionDep,
                             access: AccessDep, once: IdempotencyKey) -> Response:
    row = await service.record_supervision(session, access, data, once)
    return service.supervision_answer(row).response()


@router.get("/staff/{staff_id}/supervision-sessions", response_model=Page[SupervisionPublic],
            responses=READ, tags=["culture"],
            summary="A person's supervision (the person, or their team's managers)")
async def list_supervision(staff_id: StaffId, session: SessionDep, access: AccessDep,
                           settings: SettingsDep, cursor: Cursor = None,
                           limit: Limit = None) -> Response:
    page = await service.list_supervision(
        session, access, staff_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(Page[SupervisionPublic](
        items=[SupervisionPublic.model_validate(row) for row in page.items],
        next_cursor=page.next_cursor))


@router.post("/appraisals", status_code=201, response_model=AppraisalPublic, responses=CREATE,
             tags=["culture"], summary="Record an appraisal (managers and admins)")
async def record_appraisal(data: AppraisalCreate, session: SessionDep, access: AccessDep,
                           once: IdempotencyKey) -> Response:
    row = await service.record_appraisal(session, access, data, once)
    return service.appraisal_answer(row).response()


@router.get("/staff/{staff_id}/appraisals", response_model=Page[AppraisalPublic],
            responses=READ, tags=["culture"],
            summary="A person's appraisals (the person, or their team's managers)")
async def list_appraisals(staff_id: StaffId, session: SessionDep, access: AccessDep,
                          settings: SettingsDep, cursor: Cursor = None,
                          limit: Limit = None) -> Response:
    page = await service.list_appraisals(
        session, access, staff_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(Page[AppraisalPublic](
        items=[AppraisalPublic.model_validate(row) for row in page.items],
        next_cursor=page.next_cursor))


@router.post("/recruitment-panels", status_code=201, response_model=PanelPublic,
             responses=CREATE, tags=["culture"],
             summary="Record a recruitment panel and who sat on it")
async def record_panel(data: PanelCreate, session: SessionDep, access: AccessDep,
                       once: IdempotencyKey) -> Response:
    row = await service.record_panel(session, access, data, once)
    return service.panel_answer(row).response()


@router.get("/teams/{team_id}/recruitment-panels", response_model=Page[PanelPublic],
            responses=READ, tags=["culture"], summary="The team's recruitment panels")
async def list_panels(team_id: TeamId, session: SessionDep, access: AccessDep,
                      settings: SettingsDep, cursor: Cursor = None,
                      limit: Limit = None) -> Response:
    page = await service.list_panels(
        session, access, team_id, cursor=cursor,
        limit=page_size(limit, settings.page_size_default, settings.page_size_max))
    return json_response(Page[PanelPublic](
        items=[PanelPublic.model_validate(row) for row in page.items],
        next_cursor=page.next_cursor))


@router.get("/climate-survey", response_model=ClimateSurvey, tags=["culture"],
            summary="The items of the short team climate survey")
async def climate_survey(access: AccessDep) -> Response:
    return json_response(service.climate_survey(access))


@router.post("/teams/{team_id}/climate-survey-responses", status_code=201,
             response_model=ClimateResponseAccepted, responses=CREATE, tags=["culture"],
             summary="Answer the climate survey for your team (anonymous)")
async def answer_climate_survey(team_id: TeamId, data: ClimateResponseCreate,
                                session: SessionDep, access: AccessDep) -> Response:
    row = await service.record_climate_response(session, access, team_id, data)
    return json_response(ClimateResponseAccepted(id=row.id, team_id=row.team_id,
                                                 responded_on=row.responded_on),
                         status_code=201)
