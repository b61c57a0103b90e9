"""What the workforce service does: plain functions over a session and the caller's access."""

import csv
import io
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Executable,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import Outcome
from recovery.common.auth import Principal, Role, Verb, can_reach_record, require_scope
from recovery.common.data import Reads
from recovery.common.deps import RecordAccess
from recovery.common.events import record_event
from recovery.common.idempotency import Answer, IdempotentRequest, keep_answer
from recovery.common.ids import new_id
from recovery.common.pagination import Page, decode_cursor, decode_date_cursor, encode_cursor
from recovery.common.problems import Problem
from recovery.common.rules import refuse
from recovery.common.timeutil import as_date, utcnow
from recovery.common.versioning import require_if_match
from recovery.workforce import rules
from recovery.workforce.events import StaffEvent, staff_event_data
from recovery.workforce.models import (
    CLIMATE_ITEMS,
    Appraisal,
    AppraisalCreate,
    AppraisalPublic,
    BillingExport,
    BillingLine,
    CareContact,
    CareContactCreate,
    CareContactPublic,
    CareMinutes,
    ClimateResponse,
    ClimateResponseCreate,
    ClimateSurvey,
    FactorPublic,
    LivedExperience,
    LivedExperienceDeclaration,
    LivedExperiencePublic,
    MonthShare,
    PanelCreate,
    PanelMemberKind,
    PanelPublic,
    PeerShare,
    Readiness,
    RecoveryLeadAssign,
    RecruitmentPanel,
    SkillMix,
    Staff,
    StaffCreate,
    StaffLeave,
    StaffMove,
    StaffPublic,
    StaffUpdate,
    SupervisionCreate,
    SupervisionPublic,
    SupervisionSession,
    Team,
    TeamCreate,
    TeamPublic,
    TrainingRecord,
)
from recovery.workforce.options import WorkforceOptions

#: SMART resource types the workforce records answer to.
TEAM, STAFF, CONTACT = "CareTeam", "Practitioner", "Encounter"
MANAGING_ROLES = frozenset({Role.manager, Role.admin})


def not_found(what: str) -> Problem:
    return Problem(404, f"No {what} with that id is available to you.", kind="not-found")


def forbidden(detail: str) -> Problem:
    return Problem(403, detail, kind="forbidden")


# --- access -------------------------------------------------------------------------------


def in_team(principal: Principal, resource: str, verb: Verb, team_id: str) -> bool:
    """Staff of the team (or a partner system) with a scope for this verb on this type."""
    return can_reach_record(principal, resource, verb, service_user_id="", team_id=team_id)


def manages(principal: Principal, resource: str, verb: Verb, team_id: str) -> bool:
    """Managers and admins of the team, or a partner system allowed the verb."""
    if not in_team(principal, resource, verb, team_id):
        return False
    return principal.is_system or bool(principal.roles & MANAGING_ROLES)


def decide(access: RecordAccess, allowed: bool, *, record_type: str, record_id: str | None,
           action: str) -> bool:
    access.audit(record_type=record_type, record_id=record_id, service_user_id=None,
                 action=action, outcome=Outcome.allowed if allowed else Outcome.denied)
    return allowed


def today() -> date:
    return utcnow().date()


def options_of(access: RecordAccess) -> WorkforceOptions:
    options: WorkforceOptions = access.kit.extras["workforce"]
    return options


async def _commit(session: AsyncSession, conflict: str) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Problem(409, conflict, kind="conflict") from exc


# --- teams --------------------------------------------------------------------------------


def team_answer(team: Team) -> Answer:
    """What setting up the team answers: the team, its ETag and address."""
    return Answer.of(TeamPublic.model_validate(team), version=team.version,
                     location=f"/v1/teams/{team.id}")


async def create_team(session: AsyncSession, access: RecordAccess, data: TeamCreate,
                      once: IdempotentRequest | None = None) -> Team:
    """A manager or admin of the team (as their token names it) sets it up."""
    require_scope(access.principal, TEAM, Verb.create)
    if not decide(access, manages(access.principal, TEAM, Verb.create, data.id),
                  record_type="Team", record_id=data.id, action="create"):
        raise forbidden("Teams are set up by managers and admins of that team.")
    if await session.get(Team, data.id) is not None:
        raise Problem(409, "A team with that id exists already.", kind="conflict")
    team = Team(id=data.id, name=data.name)
    await keep_answer(once, session, team_answer(team))
    session.add(team)
    await _commit(session, "A team with that id exists already.")
    return team


async def get_team(session: AsyncSession, access: RecordAccess, team_id: str, *,
                   verb: Verb = Verb.read, action: str = "read") -> Team:
    require_scope(access.principal, TEAM, verb)
    team = await session.get(Team, team_id)
    allowed = team is not None and in_team(access.principal, TEAM, verb, team_id)
    if not decide(access, allowed, record_type="Team", record_id=team_id, action=action):
        raise not_found("team")
    assert team is not None
    return team


async def assign_recovery_lead(session: AsyncSession, access: RecordAccess, team_id: str,
                               data: RecoveryLeadAssign) -> Team:
    """Name the team's recovery lead: a member of the team in post."""
    team = await get_team(session, access, team_id, verb=Verb.update, action="assign-lead")
    if not manages(access.principal, TEAM, Verb.update, team_id):
        raise forbidden("The recovery lead is named by the team's managers and admins.")
    staff = await session.get(Staff, data.staff_id)
    if staff is None or staff.team_id != team_id or (
            staff.end_date is not None and staff.end_date < today()):
        raise refuse(rules.Refusal(422, "not-in-team", "The recovery lead must be a member of "
                                                       "the team who has not left.", "staff_id"))
    team.recovery_lead_staff_id = staff.id
    team.version += 1
    team.updated_at = utcnow()
    session.add(team)
    await session.commit()
    return team


# --- staff --------------------------------------------------------------------------------


def staff_public(staff: Staff, on: date | None = None) -> StaffPublic:
    return StaffPublic(
        id=staff.id, team_id=staff.team_id, display_name=staff.display_name,
        profession=staff.profession, grade=staff.grade, role_type=staff.role_type,
        fte=staff.fte, start_date=staff.start_date, end_date=staff.end_date,
        in_post=rules.in_post(staff.start_date, staff.end_date, on or today()),
        version=staff.version)


async def _known_team(session: AsyncSession, team_id: str, field: str) -> None:
    if await session.get(Team, team_id) is None:
        raise refuse(rules.Refusal(422, "unknown-team", "There is no team with that id; "
                                                        "set it up first.", field))


def staff_answer(staff: Staff) -> Answer:
    """What adding the member of staff answers: them, their ETag and address."""
    return Answer.of(staff_public(staff), version=staff.version,
                     location=f"/v1/staff/{staff.id}")


async def create_staff(session: AsyncSession, access: RecordAccess, data: StaffCreate,
                       once: IdempotentRequest | None = None) -> Staff:
    """A manager or admin adds a member of staff to their team; training hears of it."""
    require_scope(access.principal, STAFF, Verb.create)
    staff_id = data.id or new_id()
    if not decide(access, manages(access.principal, STAFF, Verb.create, data.team_id),
                  record_type="Staff", record_id=staff_id, action="create"):
        raise forbidden("Staff are added by managers and admins of their team.")
    await _known_team(session, data.team_id, "team_id")
    if await session.get(Staff, staff_id) is not None:
        raise Problem(409, "A member of staff with that id exists already.", kind="conflict")
    staff = Staff(id=staff_id, team_id=data.team_id, display_name=data.display_name,
                  profession=data.profession.value, grade=data.grade,
                  role_type=data.role_type.value, fte=data.fte, start_date=data.start_date)
    await keep_answer(once, session, staff_answer(staff))
    session.add(staff)
    record_event(session, StaffEvent.joined.value, staff.id,
                 staff_event_data(staff, effective_date=data.start_date))
    await _commit(session, "A member of staff with that id exists already.")
    return staff


def _reaches_staff(principal: Principal, verb: Verb, staff: Staff) -> bool:
    """The person themselves, or staff of their team."""
    return principal.sub == staff.id or in_team(principal, STAFF, verb, staff.team_id)


async def get_staff(session: AsyncSession, access: RecordAccess, staff_id: str, *,
                    verb: Verb = Verb.read, action: str = "read") -> Staff:
    require_scope(access.principal, STAFF, verb)
    staff = await session.get(Staff, staff_id)
    allowed = staff is not None and (
        _reaches_staff(access.principal, verb, staff) if verb is Verb.read
        else in_team(access.principal, STAFF, verb, staff.team_id))
    if not decide(access, allowed, record_type="Staff", record_id=staff_id, action=action):
        raise not_found("member of staff")
    assert staff is not None
    return staff


async def list_staff(session: AsyncSession, access: RecordAccess, team_id: str, *,
                     include_left: bool, cursor: str | None, limit: int) -> Page[StaffPublic]:
    """The team's staff by id, for its members."""
    require_scope(access.principal, STAFF, Verb.search)
    if not decide(access, in_team(access.principal, STAFF, Verb.search, team_id),
                  record_type="Staff", record_id=None, action="search"):
        raise Problem(404, "No staff of that team are available to you.", kind="not-found")
    query = select(Staff).where(col(Staff.team_id) == team_id)
    if not include_left:
        query = query.where(or_(col(Staff.end_date).is_(None), col(Staff.end_date) >= today()))
    if cursor:
        _, after = decode_cursor(cursor)
        query = query.where(col(Staff.id) > after)
    rows = (await session.exec(query.order_by(col(Staff.id)).limit(limit + 1))).all()
    on = today()
    items = [staff_public(staff, on) for staff in rows[:limit]]
    next_cursor = encode_cursor(0, rows[limit - 1].id) if len(rows) > limit else None
    return Page[StaffPublic](items=items, next_cursor=next_cursor)


async def _staff_for_change(session: AsyncSession, access: RecordAccess, staff_id: str,
                            if_match: str | None, action: str) -> Staff:
    staff = await get_staff(session, access, staff_id, verb=Verb.update, action=action)
    if not manages(access.principal, STAFF, Verb.update, staff.team_id):
        raise forbidden("Changes, moves and leaving are recorded by the team's managers and "
                        "admins.")
    require_if_match(if_match, staff.version)
    return staff


async def _commit_staff(session: AsyncSession, staff: Staff) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:  # pragma: no cover - a race on the outbox row
        await session.rollback()
        raise Problem(412, "The record changed meanwhile; read it again.",
                      kind="version-conflict") from exc


async def update_staff(session: AsyncSession, access: RecordAccess, staff_id: str,
                       if_match: str | None, data: StaffUpdate) -> Staff:
    """Change the name or hours (FTE) a member of staff is known by; skill-mix follows."""
    fields = data.model_dump(exclude_unset=True)
    if not fields:
        raise refuse(rules.Refusal(422, "nothing-to-change", "Send display_name or fte."))
    staff = await _staff_for_change(session, access, staff_id, if_match, "update")
    for name, value in fields.items():
        setattr(staff, name, value)
    staff.version += 1
    staff.updated_at = utcnow()
    session.add(staff)
    await _commit_staff(session, staff)
    return staff


async def move_staff(session: AsyncSession, access: RecordAccess, staff_id: str,
                     if_match: str | None, data: StaffMove) -> Staff:
    """Move a member of staff to another team; both teams' figures follow at once."""
    staff = await _staff_for_change(session, access, staff_id, if_match, "move")
    if not decide(access, manages(access.principal, STAFF, Verb.update, data.team_id),
                  record_type="Team", record_id=data.team_id, action="move-into"):
        raise forbidden("Moving someone into a team needs a manager or admin of that team.")
    refusal = rules.move_refusal(current_team=staff.team_id, new_team=data.team_id,
                                 start_date=staff.start_date, end_date=staff.end_date,
                                 effective_date=data.effective_date)
    if refusal is not None:
        raise refuse(refusal)
    await _known_team(session, data.team_id, "team_id")
    previous = staff.team_id
    staff.team_id = data.team_id
    staff.version += 1
    staff.updated_at = utcnow()
    session.add(staff)
    await _clear_lead(session, previous, staff.id)
    record_event(session, StaffEvent.moved.value, staff.id,
                 staff_event_data(staff, effective_date=data.effective_date,
                                  previous_team_id=previous))
    await _commit_staff(session, staff)
    return staff


async def leave_staff(session: AsyncSession, access: RecordAccess, staff_id: str,
                      if_match: str | None, data: StaffLeave) -> Staff:
    """Record the last day in post; the person stays on record."""
    staff = await _staff_for_change(session, access, staff_id, if_match, "leave")
    refusal = rules.leave_refusal(start_date=staff.start_date, end_date=staff.end_date,
                                  leaving_on=data.end_date)
    if refusal is not None:
        raise refuse(refusal)
    staff.end_date = data.end_date
    staff.version += 1
    staff.updated_at = utcnow()
    session.add(staff)
    await _clear_lead(session, staff.team_id, staff.id)
    record_event(session, StaffEvent.left.value, staff.id,
                 staff_event_data(staff, effective_date=data.end_date))
    await _commit_staff(session, staff)
    return staff


async def _clear_lead(session: AsyncSession, team_id: str, staff_id: str) -> None:
    """A recovery lead who leaves the team leaves the post empty, for someone to fill."""
    team = await session.get(Team, team_id)
    if team is not None and team.recovery_lead_staff_id == staff_id:
        team.recovery_lead_staff_id = None
        team.version += 1
        team.updated_at = utcnow()
        session.add(team)


# --- lived experience: private to the person and admins -----------------------------------


async def declare_lived_experience(session: AsyncSession, access: RecordAccess, staff_id: str,
                                   data: LivedExperienceDeclaration) -> LivedExperiencePublic:
    """Only the person declares (or withdraws) it: it is voluntary."""
    require_scope(access.principal, STAFF, Verb.update)
    staff = await session.get(Staff, staff_id)
    allowed = staff is not None and access.principal.sub == staff.id
    if not decide(access, allowed, record_type="LivedExperience", record_id=staff_id,
                  action="declare"):
        raise not_found("member of staff")
    row = await session.get(LivedExperience, staff_id)
    if row is None:
        row = LivedExperience(staff_id=staff_id, declared=data.declared)
    row.declared, row.declared_at = data.declared, utcnow()
    session.add(row)
    await session.commit()
    return LivedExperiencePublic(staff_id=staff_id, declared=row.declared,
                                 declared_at=row.declared_at)


async def read_lived_experience(session: AsyncSession, access: RecordAccess,
                                staff_id: str) -> LivedExperiencePublic:
    """The person themselves, or an admin of their team; nobody else learns it exists."""
    principal = access.principal
    require_scope(principal, STAFF, Verb.read)
    staff = await session.get(Staff, staff_id)
    allowed = staff is not None and (
        principal.sub == staff.id
        or (Role.admin in principal.roles and in_team(principal, STAFF, Verb.read,
                                                       staff.team_id)))
    if not decide(access, allowed, record_type="LivedExperience", record_id=staff_id,
                  action="read"):
        raise not_found("member of staff")
    row = await session.get(LivedExperience, staff_id)
    return LivedExperiencePublic(staff_id=staff_id, declared=row.declared if row else None,
                                 declared_at=row.declared_at if row else None)


# --- care contacts and peer share ---------------------------------------------------------


#: The deliverer of a care contact: what logging needs, read once per request.
CONTACT_STAFF = (select(col(Staff.team_id), col(Staff.role_type),
                                col(Staff.start_date), col(Staff.end_date))
                         .where(col(Staff.id) == bindparam("staff_id")))


def _add_minutes(insert: Any) -> Any:
    """Add a contact's minutes to its team's month (one row per team, month and peer or not),
    built once per dialect with parameters, not per contact."""
    table: Any = CareMinutes.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(
        team_id=bindparam("team_id"), month=bindparam("month"), by_peer=bindparam("by_peer"),
        minutes=bindparam("minutes"), contacts=1)
    return statement.on_conflict_do_update(
        index_elements=["team_id", "month", "by_peer"],
        set_={"minutes": table.c.minutes + statement.excluded.minutes,
              "contacts": table.c.contacts + 1})


INSERT_CONTACT = CareContact.__table__.insert()  # type: ignore[attr-defined]
ADD_MINUTES = {"postgresql": _add_minutes(pg_insert),
               "sqlite": _add_minutes(sqlite_insert)}


async def log_contact(access: RecordAccess, data: CareContactCreate,
                      once: IdempotentRequest | None = None) -> CareContactPublic:
    """Log care delivered by a member of the caller's team; the team's monthly minutes move
    in the same transaction."""
    principal = access.principal
    require_scope(principal, CONTACT, Verb.create)
    # The deliverer is read in the contact's own transaction: on SQLite the writer's
    # connection still holds the pages the read needs (the read-only one loses its cache at
    # every write), and no staff change can come between the check and the write.
    async with access.kit.writes.transaction() as tx:
        rows = await tx.all(CONTACT_STAFF, {"staff_id": data.staff_id})
        found = rows[0] if rows else None
        if not decide(access, found is not None and in_team(principal, CONTACT, Verb.create,
                                                           found[0]),
                      record_type="CareContact", record_id=None, action="create"):
            raise not_found("member of staff")
        assert found is not None
        team_id, role_type, start, end = found
        refusal = rules.contact_refusal(start_date=as_date(start),
                                        end_date=as_date(end) if end else None,
                                        occurred_on=data.occurred_on, today=today())
        if refusal is not None:
            raise refuse(refusal)
        contact = {"id": new_id(), "team_id": team_id, "staff_id": data.staff_id,
                   "service_user_id": data.service_user_id, "occurred_on": data.occurred_on,
                   "minutes": data.minutes, "mode": data.mode.value,
                   "by_peer": rules.is_peer(role_type), "recorded_by": principal.sub,
                   "recorded_at": utcnow()}
        logged = CareContactPublic.model_validate(contact)
        await keep_answer(once, tx, Answer.of(logged))
        await tx.run(INSERT_CONTACT, contact)
        await tx.run(ADD_MINUTES[tx.dialect],
                     {**contact, "month": rules.month_of(contact["occurred_on"])})
    return logged


def _monthly_minutes(*, of_team: bool) -> Executable:
    """Minutes per month and peer or not: a range of the (team, month, by_peer) key."""
    query = (select(col(CareMinutes.month), cast(col(CareMinutes.by_peer), Integer),
                    func.sum(col(CareMinutes.minutes)))
             .where(col(CareMinutes.month) >= bindparam("first", type_=String()),
                    col(CareMinutes.month) <= bindparam("last", type_=String()))
             .group_by(col(CareMinutes.month), col(CareMinutes.by_peer)))
    if of_team:
        query = query.where(col(CareMinutes.team_id) == bindparam("team_id", type_=String()))
    return query


TEAM_MINUTES, ALL_MINUTES = _monthly_minutes(of_team=True), _monthly_minutes(of_team=False)


async def peer_share(access: RecordAccess, team_id: str | None, *,
                     months: int, until: date | None) -> PeerShare:
    """Peer specialists' share of care minutes, per month and over the window."""
    require_scope(access.principal, CONTACT, Verb.search)
    access.check_aggregates(record_type="PeerShare", team_id=team_id)
    window = rules.months_ending(until or today(), months)
    params = {"first": window[0], "last": window[-1], "team_id": team_id}
    rows = await access.kit.reads.all(TEAM_MINUTES if team_id else ALL_MINUTES, params)
    target = options_of(access).peer_share_target
    figures = rules.peer_share(((m, bool(p), int(s or 0)) for m, p, s in rows), window, target)
    return PeerShare(
        team_id=team_id, months=months, first_month=window[0], last_month=window[-1],
        target=target, peer_minutes=figures.peer_minutes, total_minutes=figures.total_minutes,
        share=figures.share, meets_target=figures.meets_target,
        trend=[MonthShare(month=m, peer_minutes=p, total_minutes=t, share=rules.share(p, t))
               for m, p, t in figures.trend])


async def billing_export(session: AsyncSession, access: RecordAccess, team_id: str, *,
                         date_from: date, date_to: date) -> BillingExport:
    """Billable peer support (H0038) of a team, per person, day and mode."""
    require_scope(access.principal, CONTACT, Verb.search)
    access.check_aggregates(record_type="PeerSupportBilling", team_id=team_id,
                            action="export")
    if date_to < date_from or (date_to - date_from).days > 366:
        raise refuse(rules.Refusal(422, "bad-period", "Give a period of at most a year, "
                                                      "`from` on or before `to`.", "to"))
    options = options_of(access)
    rows = (await session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types at most four columns
            col(CareContact.service_user_id), col(CareContact.occurred_on),
            col(CareContact.mode), func.sum(col(CareContact.minutes)), func.count())
        .where(col(CareContact.team_id) == team_id, col(CareContact.by_peer).is_(True),
               col(CareContact.occurred_on) >= date_from, col(CareContact.occurred_on) <= date_to)
        .group_by(col(CareContact.service_user_id), col(CareContact.occurred_on),
                  col(CareContact.mode)))).all()
    days = rules.billable_days(
        ((person, day, mode, int(minutes), int(count)) for person, day, mode, minutes, count
         in rows),
        unit_minutes=options.billing_unit_minutes, rounding=options.billing_rounding,
        daily_cap=options.billing_daily_cap_units)
    lines = [BillingLine(service_user_id=d.service_user_id, service_date=d.service_date,
                         hcpcs=options.billing_hcpcs,
                         modifier=options.billing_group_modifier if d.mode == "group" else None,
                         minutes=d.minutes, units=d.units, capped=d.capped, contacts=d.contacts)
             for d in days if d.units > 0]
    return BillingExport(team_id=team_id, date_from=date_from, date_to=date_to,
                         hcpcs=options.billing_hcpcs, unit_minutes=options.billing_unit_minutes,
                         rounding=options.billing_rounding.value,
                         daily_cap_units=options.billing_daily_cap_units, lines=lines,
                         total_units=sum(line.units for line in lines))


CSV_COLUMNS = ("service_user_id", "service_date", "hcpcs", "modifier", "units", "minutes",
               "contacts", "capped")


def billing_csv(export: BillingExport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in export.lines:
        writer.writerow([line.service_user_id, line.service_date.isoformat(), line.hcpcs,
                         line.modifier or "", line.units, line.minutes, line.contacts,
                         "true" if line.capped else "false"])
    return out.getvalue()


# --- skill-mix ----------------------------------------------------------------------------


def _in_post_now(on: date) -> ColumnElement[bool]:
    return and_(col(Staff.start_date) <= on,
                or_(col(Staff.end_date).is_(None), col(Staff.end_date) >= on))


def _on_roster(on: date) -> ColumnElement[bool]:
    """Appointed and not yet gone: readiness counts starters whose first day is ahead, since
    the foundation course is required of them too (they are enrolled when they join)."""
    return or_(col(Staff.end_date).is_(None), col(Staff.end_date) >= on)


async def skill_mix(access: RecordAccess, team_id: str) -> SkillMix:
    require_scope(access.principal, STAFF, Verb.search)
    access.check_aggregates(record_type="SkillMix", team_id=team_id)
    on = today()
    rows = await access.kit.reads.all(
        select(col(Staff.profession), col(Staff.role_type), func.sum(col(Staff.fte)),
               func.count())
        .where(col(Staff.team_id) == team_id, _in_post_now(on))
        .group_by(col(Staff.profession), col(Staff.role_type)))
    mix = rules.skill_mix((p, r, float(f or 0), int(c)) for p, r, f, c in rows)
    return SkillMix(team_id=team_id, as_of=on, staff_in_post=mix.staff_in_post,
                    fte_total=mix.fte_total, fte_by_profession=mix.fte_by_profession,
                    fte_by_role_type=mix.fte_by_role_type, peer_fte=mix.peer_fte,
                    professional_fte=mix.professional_fte,
                    peer_to_professional_ratio=mix.ratio)


# --- supervision, appraisals, panels, climate ---------------------------------------------


async def _supervisable(session: AsyncSession, access: RecordAccess, staff_id: str,
                        action: str) -> Staff:
    require_scope(access.principal, STAFF, Verb.create)
    staff = await session.get(Staff, staff_id)
    if not decide(access, staff is not None and in_team(access.principal, STAFF, Verb.create,
                                                       staff.team_id),
                  record_type="Staff", record_id=staff_id, action=action):
        raise not_found("member of staff")
    assert staff is not None
    return staff


def supervision_answer(row: SupervisionSession) -> Answer:
    """What recording the session answers."""
    return Answer.of(SupervisionPublic.model_validate(row))


async def record_supervision(session: AsyncSession, access: RecordAccess,
                             data: SupervisionCreate,
                             once: IdempotentRequest | None = None) -> SupervisionSession:
    staff = await _supervisable(session, access, data.staff_id, "record-supervision")
    refusal = rules.supervision_refusal(staff_id=staff.id, supervisor_id=data.supervisor_id,
                                        held_on=data.held_on, today=today())
    if refusal is not None:
        raise refuse(refusal)
    row = SupervisionSession(staff_id=staff.id, team_id=staff.team_id,
                             supervisor_id=data.supervisor_id, held_on=data.held_on,
                             recovery_focused=data.recovery_focused,
                             peer_supervision=data.peer_supervision, quality=data.quality,
                             recorded_by=access.principal.sub)
    await keep_answer(once, session, supervision_answer(row))
    session.add(row)
    await session.commit()
    return row


def appraisal_answer(row: Appraisal) -> Answer:
    """What recording the appraisal answers."""
    return Answer.of(AppraisalPublic.model_validate(row))


async def record_appraisal(session: AsyncSession, access: RecordAccess, data: AppraisalCreate,
                           once: IdempotentRequest | None = None) -> Appraisal:
    staff = await _supervisable(session, access, data.staff_id, "record-appraisal")
    if not manages(access.principal, STAFF, Verb.create, staff.team_id):
        raise forbidden("Appraisals are recorded by the team's managers and admins.")
    if data.held_on > today():
        raise refuse(rules.Refusal(422, "in-future", "An appraisal is recorded once it has "
                                                     "happened.", "held_on"))
    row = Appraisal(staff_id=staff.id, team_id=staff.team_id, held_on=data.held_on,
                    service_user_feedback_included=data.service_user_feedback_included,
                    recovery_objectives_set=data.recovery_objectives_set,
                    recorded_by=access.principal.sub)
    await keep_answer(once, session, appraisal_answer(row))
    session.add(row)
    await session.commit()
    return row


async def _own_or_managed(session: AsyncSession, access: RecordAccess, staff_id: str,
                          record_type: str) -> Staff:
    """Supervision and appraisals: the person themselves, or their team's managers."""
    require_scope(access.principal, STAFF, Verb.search)
    staff = await session.get(Staff, staff_id)
    allowed = staff is not None and (
        access.principal.sub == staff.id
        or manages(access.principal, STAFF, Verb.search, staff.team_id))
    if not decide(access, allowed, record_type=record_type, record_id=staff_id,
                  action="search"):
        raise not_found("member of staff")
    assert staff is not None
    return staff


async def list_supervision(session: AsyncSession, access: RecordAccess, staff_id: str, *,
                           cursor: str | None, limit: int) -> Page[SupervisionSession]:
    await _own_or_managed(session, access, staff_id, "Supervision")
    query = select(SupervisionSession).where(col(SupervisionSession.staff_id) == staff_id)
    page: Page[SupervisionSession] = await _dated_page(session, query, SupervisionSession,
                                                       cursor, limit)
    return page


async def list_appraisals(session: AsyncSession, access: RecordAccess, staff_id: str, *,
                          cursor: str | None, limit: int) -> Page[Appraisal]:
    await _own_or_managed(session, access, staff_id, "Appraisal")
    query = select(Appraisal).where(col(Appraisal.staff_id) == staff_id)
    page: Page[Appraisal] = await _dated_page(session, query, Appraisal, cursor, limit)
    return page


async def _dated_page(session: AsyncSession, query: Any, model: Any, cursor: str | None,
                      limit: int) -> Any:
    """Most recent first by (held_on, id)."""
    if cursor:
        after_day, after_id = decode_date_cursor(cursor)
        query = query.where(tuple_(col(model.held_on), col(model.id))
                            < tuple_(literal(after_day), literal(after_id)))
    rows = (await session.exec(query.order_by(col(model.held_on).desc(), col(model.id).desc())
                               .limit(limit + 1))).all()
    last = rows[limit - 1] if len(rows) > limit else None
    return Page[Any](items=list(rows[:limit]),
                     next_cursor=encode_cursor(last.held_on.isoformat(), last.id)
                     if last else None)


LIVED_EXPERIENCE_MEMBERS = frozenset({PanelMemberKind.service_user,
                                      PanelMemberKind.peer_specialist})


def panel_answer(row: RecruitmentPanel) -> Answer:
    """What recording the panel answers."""
    return Answer.of(PanelPublic.model_validate(row))


async def record_panel(session: AsyncSession, access: RecordAccess, data: PanelCreate,
                       once: IdempotentRequest | None = None) -> RecruitmentPanel:
    require_scope(access.principal, TEAM, Verb.create)
    if not decide(access, manages(access.principal, TEAM, Verb.create, data.team_id),
                  record_type="RecruitmentPanel", record_id=None, action="create"):
        raise forbidden("Recruitment panels are recorded by the team's managers and admins.")
    await _known_team(session, data.team_id, "team_id")
    row = RecruitmentPanel(team_id=data.team_id, role_type=data.role_type.value,
                           held_on=data.held_on, members=[m.value for m in data.members],
                           lived_experience_members=sum(
                               1 for m in data.members if m in LIVED_EXPERIENCE_MEMBERS),
                           recorded_by=access.principal.sub)
    await keep_answer(once, session, panel_answer(row))
    session.add(row)
    await session.commit()
    return row


async def list_panels(session: AsyncSession, access: RecordAccess, team_id: str, *,
                      cursor: str | None, limit: int) -> Page[RecruitmentPanel]:
    require_scope(access.principal, TEAM, Verb.search)
    if not decide(access, in_team(access.principal, TEAM, Verb.search, team_id),
                  record_type="RecruitmentPanel", record_id=None, action="search"):
        raise Problem(404, "No panels of that team are available to you.", kind="not-found")
    query = select(RecruitmentPanel).where(col(RecruitmentPanel.team_id) == team_id)
    page: Page[RecruitmentPanel] = await _dated_page(session, query, RecruitmentPanel,
                                                     cursor, limit)
    return page


def climate_survey(access: RecordAccess) -> ClimateSurvey:
    require_scope(access.principal, TEAM, Verb.read)
    return ClimateSurvey(items=list(CLIMATE_ITEMS),
                         scale="1 strongly disagree to 5 strongly agree")


async def record_climate_response(session: AsyncSession, access: RecordAccess, team_id: str,
                                  data: ClimateResponseCreate) -> ClimateResponse:
    """One anonymous answer from a member of the team: who answered is not stored."""
    await get_team(session, access, team_id, verb=Verb.create, action="climate-response")
    if data.responded_on > today():
        raise refuse(rules.Refusal(422, "in-future", "A response is dated today or before.",
                                   "responded_on"))
    row = ClimateResponse(team_id=team_id, responded_on=data.responded_on,
                          answers=list(data.answers),
                          score=round(sum(data.answers) / len(CLIMATE_ITEMS), 4))
    session.add(row)
    await session.commit()
    return row


# --- readiness ----------------------------------------------------------------------------


async def readiness(access: RecordAccess, team_id: str) -> Readiness:
    """The four factors from their records; the team is as ready as its weakest factor.
    Each is one aggregate read over the team's staff (indexed), never its contacts."""
    require_scope(access.principal, TEAM, Verb.read)
    access.check_aggregates(record_type="Readiness", team_id=team_id)
    options = options_of(access)
    reads = access.kit.reads
    statements = _readiness_statements(access.kit.settings.database_url)
    on = today()
    in_post, supervision = await _supervision_factor(reads, statements, team_id, on,
                                                     options.supervision_window_days)
    training = await _one(reads, statements.training,
                          {"team_id": team_id, "on": statements.day(on)})
    factors = [
        _training_factor(in_post, training),
        supervision,
        await _leadership_factor(reads, team_id, on),
        await _culture_factor(reads, statements, team_id, on, options.climate_window_days),
    ]
    weakest = rules.weakest_factor(factors)
    return Readiness(team_id=team_id, as_of=on, score=weakest.score, level=weakest.level,
                     weakest_factor=weakest.name,
                     factors=[FactorPublic(name=f.name, score=f.score, level=f.level,
                                           explanation=f.explanation, records=dict(f.records))
                              for f in factors])


def _completed_foundation(staff_id: Any) -> ColumnElement[bool]:
    """The member of staff has completed the foundation course (an indexed lookup)."""
    return exists().where(col(TrainingRecord.staff_id) == staff_id,
                          col(TrainingRecord.foundation).is_(True),
                          col(TrainingRecord.completed_on).is_not(None))


class ReadinessStatements:
    """The readiness reads, built once per database kind. SQLite stores dates as ISO text, so
    there they are bound as text and the in-loop reader runs them on the driver directly;
    PostgreSQL binds real dates."""

    def __init__(self, *, dates_as_text: bool) -> None:
        self.dates_as_text = dates_as_text
        day_type: Any = String() if dates_as_text else Date()

        def day(name: str) -> Any:
            return bindparam(name, type_=day_type)

        team = col(Staff.team_id) == bindparam("team_id", type_=String())
        roster = or_(col(Staff.end_date).is_(None), col(Staff.end_date) >= day("on"))
        # One pass over the staff in post's training records (through the staff index) for
        # completions and ratings; the staff in post are counted with supervision.
        completed = and_(col(TrainingRecord.foundation).is_(True),
                         col(TrainingRecord.completed_on).is_not(None))
        self.training = (
            select(func.count(func.distinct(case((completed, col(TrainingRecord.staff_id)),
                                                 else_=None))),
                   func.count(col(TrainingRecord.rating)),
                   cast(func.avg(col(TrainingRecord.rating)), Float()))
            .select_from(Staff)
            .join(TrainingRecord, col(TrainingRecord.staff_id) == col(Staff.id))
            .where(team, roster))
        recent = and_(col(SupervisionSession.staff_id) == col(Staff.id),
                      col(SupervisionSession.held_on) >= day("since"))
        self.supervision = (
            select(  # type: ignore[call-overload]  # sqlmodel types at most four columns
                func.count(func.distinct(col(Staff.id))),
                func.count(col(SupervisionSession.id)),
                func.coalesce(func.sum(cast(col(SupervisionSession.recovery_focused),
                                            Integer)), 0),
                cast(func.avg(col(SupervisionSession.quality)), Float()),
                func.count(func.distinct(col(SupervisionSession.staff_id))))
            .select_from(Staff).outerjoin(SupervisionSession, recent).where(team, roster))
        self.culture = (
            select(func.count(), cast(func.avg(col(ClimateResponse.score)), Float()))
            .where(col(ClimateResponse.team_id) == bindparam("team_id", type_=String()),
                   col(ClimateResponse.responded_on) >= day("since")))
        with_lived_experience = case((col(RecruitmentPanel.lived_experience_members) > 0, 1),
                                     else_=0)
        self.panels = (
            select(func.count(), func.coalesce(func.sum(with_lived_experience), 0))
            .where(col(RecruitmentPanel.team_id) == bindparam("team_id", type_=String()),
                   col(RecruitmentPanel.held_on) >= day("since")))
        with_feedback = cast(col(Appraisal.service_user_feedback_included), Integer)
        self.appraisals = (
            select(func.count(), func.coalesce(func.sum(with_feedback), 0))
            .where(col(Appraisal.team_id) == bindparam("team_id", type_=String()),
                   col(Appraisal.held_on) >= day("since")))

    def day(self, value: date) -> date | str:
        return value.isoformat() if self.dates_as_text else value


_READINESS: dict[bool, ReadinessStatements] = {}


def _readiness_statements(database_url: str) -> ReadinessStatements:
    as_text = database_url.startswith("sqlite")
    if as_text not in _READINESS:
        _READINESS[as_text] = ReadinessStatements(dates_as_text=as_text)
    return _READINESS[as_text]


async def _one(reads: Reads, statement: Executable, params: dict[str, Any]) -> Any:
    rows = await reads.all(statement, params)
    return rows[0]


def _training_factor(in_post: int, row: Any) -> rules.Factor:
    trained, ratings, mean = row
    return rules.training_factor(staff_in_post=in_post, completed_foundation=int(trained),
                                 ratings=int(ratings),
                                 mean_rating=float(mean) if mean is not None else None)


async def _supervision_factor(reads: Reads, statements: ReadinessStatements, team_id: str,
                              on: date, window_days: int) -> tuple[int, rules.Factor]:
    """The staff in post (counted here for the training factor too) and the factor."""
    since = on - timedelta(days=window_days)
    in_post, sessions, focused, mean, supervised = await _one(
        reads, statements.supervision,
        {"team_id": team_id, "on": statements.day(on), "since": statements.day(since)})
    return int(in_post), rules.supervision_factor(
        staff_in_post=int(in_post), supervised=int(supervised), sessions=int(sessions),
        recovery_focused=int(focused), mean_quality=float(mean) if mean is not None else None,
        window_days=window_days)


#: The team's recovery lead, whether they are still in the team and not gone, and trained.
LEAD = (
    select(col(Team.recovery_lead_staff_id), col(Staff.team_id), col(Staff.end_date),
           _completed_foundation(col(Staff.id)))
    .select_from(Team)
    .outerjoin(Staff, col(Staff.id) == col(Team.recovery_lead_staff_id))
    .where(col(Team.id) == bindparam("team_id")))


async def _leadership_factor(reads: Reads, team_id: str, on: date) -> rules.Factor:
    rows = await reads.all(LEAD, {"team_id": team_id})
    lead_id, lead_team, end, trained = rows[0] if rows else (None, None, None, False)
    lead_in_post = lead_id is not None and lead_team == team_id and (
        end is None or as_date(end) >= on)
    return rules.leadership_factor(lead_staff_id=lead_id, lead_in_post=lead_in_post,
                                   lead_trained=bool(trained) and lead_team is not None)


async def _culture_factor(reads: Reads, statements: ReadinessStatements, team_id: str,
                          on: date, window_days: int) -> rules.Factor:
    since = on - timedelta(days=window_days)
    params = {"team_id": team_id, "since": statements.day(since)}
    responses, mean = await _one(reads, statements.culture, params)
    panels, panels_with = await _one(reads, statements.panels, params)
    appraisals, appraisals_with = await _one(reads, statements.appraisals, params)
    return rules.culture_factor(
        responses=int(responses), mean_score=float(mean) if mean is not None else None,
        window_days=window_days, processes={
            "recruitment_panels": int(panels),
            "panels_with_service_user_or_peer_members": int(panels_with),
            "appraisals": int(appraisals),
            "appraisals_with_service_user_feedback": int(appraisals_with)})
