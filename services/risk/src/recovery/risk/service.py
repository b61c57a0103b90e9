"""What the risk service does: plain functions over the kit's sessions and the caller's access.

Every write runs in its own short transaction and is guarded twice: the new version's key
(assessment, version) and the record's ``revision`` (SQLAlchemy's version counter). A write
that loses a race is tried again from a fresh read, where ``If-Match`` decides: a stale
version gets 412, while two signatures racing on the same version both count.
"""

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    String,
    Text,
    and_,
    bindparam,
    cast,
    distinct,
    false,
    func,
    literal,
    or_,
    tuple_,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common import cosign, fhir
from recovery.common.audit import Outcome
from recovery.common.auth import Principal, Verb, can_reach_record, require_scope
from recovery.common.db import UTCDateTime
from recovery.common.deps import RecordAccess
from recovery.common.events import record_event
from recovery.common.idempotency import Answer, IdempotentRequest, keep_answer
from recovery.common.ids import new_id
from recovery.common.kit import ServiceKit
from recovery.common.pagination import (
    Page,
    decode_time_cursor,
    decode_version_cursor,
    encode_cursor,
)
from recovery.common.problems import Problem
from recovery.common.reach import (
    batch_condition,
    batch_result_json,
    list_condition,
    require_create_access,
)
from recovery.common.rules import (
    EnteredInError,
    closed_refusal,
    entered_in_error_refusal,
    refuse,
)
from recovery.common.rules import actor_for as person_record_actor
from recovery.common.timeutil import utcnow
from recovery.common.versioning import require_if_match, retry_lost_races
from recovery.risk import rules
from recovery.risk.events import RiskEvent, assessment_event_data, decision_event_data
from recovery.risk.models import (
    AreaView,
    AssessmentContent,
    AssessmentCreate,
    AssessmentPublic,
    AssessmentStatus,
    AssessmentUpdate,
    BatchRead,
    Party,
    PositiveRiskDecision,
    PositiveRiskDecisionCreate,
    ReviewDue,
    ReviewDueList,
    RiskAssessment,
    RiskAssessmentVersion,
    RiskSignature,
    SignatureCreate,
    SignaturePublic,
    VersionPublic,
    VersionStatus,
)

RESOURCE = "RiskAssessment"
RECORD = "RiskAssessment"
DOCUMENT = cast(col(RiskAssessment.document), Text)
READ_ONE = (
    select(col(RiskAssessment.service_user_id), col(RiskAssessment.team_id),
           col(RiskAssessment.version), DOCUMENT)
    .where(col(RiskAssessment.id) == bindparam("assessment_id")))
T = TypeVar("T")
#: Marked entered-in-error: kept and readable by id, left out of lists, reviews and batches.
IN_ERROR = AssessmentStatus.entered_in_error.value


def actor_for(principal: Principal, service_user_id: str) -> rules.Actor:
    """The person, a clinician (the other signing party), other staff, or a partner system."""
    return person_record_actor(principal, service_user_id, clinicians_apart=True)


def _as_cosign(row: RiskSignature) -> cosign.Signature:
    return cosign.Signature(signatory=row.signatory, party=row.party, version=row.version,
                            content_hash=row.content_hash, signed_at=row.signed_at,
                            withdrawn_at=row.withdrawn_at)


def content_of(assessment: RiskAssessment) -> AssessmentContent:
    return AssessmentContent.model_validate(assessment.document["content"])


def hash_of(content: AssessmentContent) -> str:
    return cosign.content_hash(content.model_dump(mode="json"))


def build_document(assessment: RiskAssessment, content: AssessmentContent,
                   signatures: Sequence[RiskSignature]) -> dict[str, Any]:
    """The record as callers see it, written with every change and handed out as stored."""
    on_latest = [s for s in signatures if s.version == assessment.version]
    missing = cosign.missing_parties([_as_cosign(s) for s in on_latest],
                                     version=assessment.version,
                                     version_hash=assessment.content_hash,
                                     required=rules.REQUIRED_PARTIES)
    version_status = (rules.agreed_status(content.areas)
                      if assessment.active_version == assessment.version
                      else VersionStatus.draft)
    public = AssessmentPublic(
        id=assessment.id, service_user_id=assessment.service_user_id,
        team_id=assessment.team_id, status=AssessmentStatus(assessment.status),
        entered_in_error_reason=assessment.entered_in_error_reason,
        version=assessment.version, version_status=version_status,
        content_hash=assessment.content_hash, content=content,
        signatures=[SignaturePublic.model_validate(s) for s in on_latest],
        missing_parties=sorted(Party(p) for p in missing),
        active_version=assessment.active_version,
        differences=rules.differences(content.areas), review_date=assessment.review_date,
        created_by=assessment.created_by, created_at=assessment.created_at,
        updated_at=assessment.updated_at)
    return public.model_dump(mode="json")


# --- reading ------------------------------------------------------------------------------


def _unknown(access: RecordAccess, assessment_id: str, action: str) -> Problem:
    access.audit(record_type=RECORD, record_id=assessment_id[:64], service_user_id=None,
                 action=action, outcome=Outcome.denied)
    return Problem(404, "No RiskAssessment with that id is available to you.", kind="not-found")


async def get_assessment(session: AsyncSession, access: RecordAccess, assessment_id: str, *,
                         verb: Verb = Verb.read, action: str = "read") -> RiskAssessment:
    """One co-assessment the caller may reach (one primary-key query), audited; 404 if not."""
    require_scope(access.principal, RESOURCE, verb)
    found = (await session.get(RiskAssessment, assessment_id)
             if len(assessment_id) <= 36 else None)
    if found is None:
        raise _unknown(access, assessment_id, action)
    access.check(RESOURCE, verb, record_type=RECORD, record_id=found.id,
                 service_user_id=found.service_user_id, team_id=found.team_id, action=action)
    return found


async def read_document(access: RecordAccess, assessment_id: str) -> tuple[int, str]:
    """The version and stored JSON of one co-assessment the caller may reach."""
    require_scope(access.principal, RESOURCE, Verb.read)
    rows = (await access.kit.reads.all(READ_ONE, {"assessment_id": assessment_id})
            if len(assessment_id) <= 36 else [])
    if not rows:
        raise _unknown(access, assessment_id, "read")
    service_user_id, team_id, version, document = rows[0]
    access.check(RESOURCE, Verb.read, record_type=RECORD, record_id=assessment_id,
                 service_user_id=service_user_id, team_id=team_id, action="read")
    return version, document


async def _signatures(session: AsyncSession, assessment_id: str,
                      version: int | None = None) -> list[RiskSignature]:
    query = select(RiskSignature).where(col(RiskSignature.assessment_id) == assessment_id)
    if version is not None:
        query = query.where(col(RiskSignature.version) == version)
    return list((await session.exec(query.order_by(col(RiskSignature.signed_at)))).all())


async def _versions_between(session: AsyncSession, assessment: RiskAssessment, low: int,
                            high: int) -> list[VersionPublic]:
    """The versions ``low`` to ``high`` with their signatures, oldest first."""
    rows = (await session.exec(
        select(RiskAssessmentVersion).where(
            col(RiskAssessmentVersion.assessment_id) == assessment.id,
            col(RiskAssessmentVersion.version) >= low, col(RiskAssessmentVersion.version) <= high)
        .order_by(col(RiskAssessmentVersion.version)))).all()
    signed = (await session.exec(
        select(RiskSignature).where(col(RiskSignature.assessment_id) == assessment.id,
                                    col(RiskSignature.version) >= low,
                                    col(RiskSignature.version) <= high)
        .order_by(col(RiskSignature.signed_at)))).all()
    by_version: dict[int, list[RiskSignature]] = {}
    for signature in signed:
        by_version.setdefault(signature.version, []).append(signature)
    versions = []
    for row in rows:
        content = AssessmentContent.model_validate(row.content)
        signatures = by_version.get(row.version, [])
        agreed = cosign.is_agreed([_as_cosign(s) for s in signatures], version=row.version,
                                  version_hash=row.content_hash,
                                  required=rules.REQUIRED_PARTIES)
        versions.append(VersionPublic(
            assessment_id=assessment.id, version=row.version,
            status=rules.agreed_status(content.areas) if agreed else VersionStatus.draft,
            content_hash=row.content_hash, content=content,
            signatures=[SignaturePublic.model_validate(s) for s in signatures],
            recorded_by=row.recorded_by, recorded_at=row.recorded_at, change=row.change))
    return versions


async def _version_public(session: AsyncSession, assessment: RiskAssessment,
                          version: int) -> VersionPublic:
    found = await _versions_between(session, assessment, version, version)
    if not found:
        raise Problem(404, "The co-assessment has no such version.", kind="not-found")
    return found[0]


async def read_version(access: RecordAccess, assessment_id: str, version: int) -> VersionPublic:
    async with access.kit.sessions() as session:
        assessment = await get_assessment(session, access, assessment_id,
                                          action="read-version")
        return await _version_public(session, assessment, version)


async def read_active(access: RecordAccess, assessment_id: str) -> VersionPublic:
    """The agreed version in force: what both sides signed, while a new draft is made."""
    async with access.kit.sessions() as session:
        assessment = await get_assessment(session, access, assessment_id, action="read-active")
        if assessment.active_version is None:
            raise Problem(404, "No agreed version of this co-assessment is in force.",
                          kind="no-agreed-version")
        return await _version_public(session, assessment, assessment.active_version)


async def list_versions(access: RecordAccess, assessment_id: str, *, cursor: str | None,
                        limit: int) -> Page[VersionPublic]:
    """Every version, oldest first, each with its signatures."""
    async with access.kit.sessions() as session:
        assessment = await get_assessment(session, access, assessment_id,
                                          action="read-history")
        after = decode_version_cursor(cursor) if cursor else 0
        last = min(assessment.version, after + limit)
        items = await _versions_between(session, assessment, after + 1, last)
        next_cursor = encode_cursor(last, assessment.id) if last < assessment.version else None
        return Page[VersionPublic](items=items, next_cursor=next_cursor)


@dataclass(frozen=True)
class AssessmentVersions:
    """A co-assessment as it stands and some of its versions, newest first; ``replaced_at``
    says when each one but the newest was replaced by the next."""

    assessment: AssessmentPublic
    versions: list[VersionPublic]
    replaced_at: dict[int, datetime]


async def read_versions(access: RecordAccess, assessment_id: str, *, newest: int | None,
                        count: int, action: str) -> AssessmentVersions:
    """Up to ``count`` versions, from ``newest`` (the latest when None) down, each with when
    the next one replaced it (a FHIR vread or history)."""
    async with access.kit.sessions() as session:
        assessment = await get_assessment(session, access, assessment_id, action=action)
        top = assessment.version if newest is None else min(newest, assessment.version)
        low = max(1, top - count + 1)
        # One version more than asked: when it was written is when the last one was replaced.
        versions = await _versions_between(session, assessment, low, top + 1) if count else []
    return AssessmentVersions(
        assessment=AssessmentPublic.model_validate(assessment.document),
        versions=[v for v in reversed(versions) if v.version <= top],
        replaced_at={v.version - 1: v.recorded_at for v in versions})


async def signed_versions(access: RecordAccess, assessment_id: str) -> int:
    """How many versions have a standing signature (its Provenance)."""
    async with access.kit.sessions() as session:
        assessment = await get_assessment(session, access, assessment_id,
                                          action="read-history")
        return (await session.exec(
            select(func.count(distinct(col(RiskSignature.version)))).where(
                col(RiskSignature.assessment_id) == assessment.id,
                col(RiskSignature.withdrawn_at).is_(None)))).one()


# --- writing ------------------------------------------------------------------------------


async def _retrying(kit: ServiceKit, attempt: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run a write in a fresh session, again from a fresh read when it lost a race."""
    return await retry_lost_races(
        kit.sessions, attempt, kind="busy",
        detail="The co-assessment is being changed by others right now; try again.")


def _new_version(session: AsyncSession, assessment: RiskAssessment,
                 content: AssessmentContent, *, actor: rules.Actor, change: str,
                 now: datetime) -> None:
    assessment.content_hash = hash_of(content)
    assessment.review_date = content.review_date
    assessment.updated_at = now
    session.add(RiskAssessmentVersion(
        assessment_id=assessment.id, version=assessment.version,
        content=content.model_dump(mode="json"), content_hash=assessment.content_hash,
        recorded_by=actor.sub, recorded_at=now, change=change))


def _event(session: AsyncSession, assessment: RiskAssessment, event: RiskEvent,
           content: AssessmentContent, actor: rules.Actor, *, party: str | None = None) -> None:
    record_event(session, event.value, assessment.id, assessment_event_data(
        assessment, changed_by=actor.sub, occurred_at=assessment.updated_at,
        areas=[a.area.value for a in content.areas],
        differing_areas=[a.value for a in rules.differences(content.areas)], party=party))


def created_answer(assessment: RiskAssessment) -> Answer:
    """What starting the co-assessment answers: its document, ETag and address."""
    return Answer.of(assessment.document, version=assessment.version,
                     location=f"/v1/risk-assessments/{assessment.id}")


async def create_assessment(access: RecordAccess, data: AssessmentCreate,
                            once: IdempotentRequest | None = None) -> RiskAssessment:
    """A clinician and the person start a co-assessment; it is a draft until both sign."""
    principal = access.principal
    assessment_id = new_id()
    require_create_access(access, RESOURCE, record_type=RECORD, record_id=assessment_id,
                          service_user_id=data.service_user_id, team_id=data.team_id,
                          what="risk co-assessments")
    actor = actor_for(principal, data.service_user_id)
    refusal = rules.create_refusal(actor)
    if refusal is None and actor.kind is rules.ActorKind.person:
        refusal = rules.edit_refusal(actor, [(None, area) for area in data.areas])
    if refusal is not None:
        raise refuse(refusal)
    content = AssessmentContent(areas=data.areas, safety_plan=data.safety_plan,
                                review_date=data.review_date)
    now = utcnow()
    async with access.kit.sessions() as session:
        assessment = RiskAssessment(
            id=assessment_id, service_user_id=data.service_user_id, team_id=data.team_id,
            status=AssessmentStatus.draft.value, version=1, content_hash="",
            created_by=actor.sub, created_at=now, updated_at=now)
        _new_version(session, assessment, content, actor=actor, change="drafted", now=now)
        assessment.document = build_document(assessment, content, [])
        await keep_answer(once, session, created_answer(assessment))
        session.add(assessment)
        _event(session, assessment, RiskEvent.drafted, content, actor)
        await session.commit()
    return assessment


async def _for_change(session: AsyncSession, access: RecordAccess, assessment_id: str,
                      if_match: str | None, action: str) -> RiskAssessment:
    assessment = await get_assessment(session, access, assessment_id, verb=Verb.update,
                                      action=action)
    require_if_match(if_match, assessment.version)
    closed = closed_refusal(assessment.status, rules.RECORD_NAME)
    if closed is not None:
        raise refuse(closed)
    return assessment


def _changed_areas(before: Sequence[AreaView], after: Sequence[AreaView]
                   ) -> list[tuple[AreaView | None, AreaView | None]]:
    old = {(a.area, a.area_name): a for a in before}
    new = {(a.area, a.area_name): a for a in after}
    return [(old.get(key), new.get(key)) for key in old.keys() | new.keys()
            if old.get(key) != new.get(key)]


async def _draft(access: RecordAccess, assessment_id: str, if_match: str | None,
                 action: str, change: Callable[[rules.Actor, AssessmentContent],
                                               AssessmentContent],
                 after: Callable[[AsyncSession, RiskAssessment, rules.Actor,
                                  AssessmentContent], None] | None = None
                 ) -> RiskAssessment:
    """Make a new draft version from the latest one; the agreement in force stays."""

    async def attempt(session: AsyncSession) -> RiskAssessment:
        assessment = await _for_change(session, access, assessment_id, if_match, action)
        actor = actor_for(access.principal, assessment.service_user_id)
        before = content_of(assessment)
        content = change(actor, before)
        if content == before:
            return assessment
        now = utcnow()
        assessment.version += 1
        _new_version(session, assessment, content, actor=actor, change=action, now=now)
        assessment.document = build_document(assessment, content, [])
        session.add(assessment)
        _event(session, assessment, RiskEvent.drafted, content, actor)
        if after is not None:
            after(session, assessment, actor, content)
        await session.commit()
        return assessment

    return await _retrying(access.kit, attempt)


async def update_assessment(access: RecordAccess, assessment_id: str, if_match: str | None,
                            update: AssessmentUpdate) -> RiskAssessment:
    """Change what the co-assessment says: a new draft version, to be signed again."""
    fields = update.model_dump(exclude_unset=True)

    def change(actor: rules.Actor, before: AssessmentContent) -> AssessmentContent:
        areas = update.areas if "areas" in fields and update.areas is not None else before.areas
        refusal = rules.edit_refusal(actor, _changed_areas(before.areas, areas))
        if refusal is not None:
            raise refuse(refusal)
        return before.model_copy(update={
            "areas": areas,
            "safety_plan": update.safety_plan if "safety_plan" in fields
            else before.safety_plan,
            "review_date": update.review_date if "review_date" in fields
            else before.review_date})

    return await _draft(access, assessment_id, if_match, "edited", change)


async def add_decision(access: RecordAccess, assessment_id: str, if_match: str | None,
                       data: PositiveRiskDecisionCreate) -> tuple[RiskAssessment, str]:
    """Record a positive risk-taking decision for a goal of the person (a new draft)."""
    decision_id = new_id()

    def change(actor: rules.Actor, before: AssessmentContent) -> AssessmentContent:
        refusal = rules.decision_refusal(actor)
        if refusal is not None:
            raise refuse(refusal)
        if len(before.positive_risk_decisions) >= 50:
            raise Problem(422, "A co-assessment holds at most 50 decisions.",
                          kind="too-many-decisions")
        decision = PositiveRiskDecision(**data.model_dump(), id=decision_id,
                                        recorded_by=actor.sub, recorded_at=utcnow())
        return before.model_copy(update={
            "positive_risk_decisions": [*before.positive_risk_decisions, decision]})

    def announce(session: AsyncSession, assessment: RiskAssessment, actor: rules.Actor,
                 content: AssessmentContent) -> None:
        record_event(session, RiskEvent.decision_recorded.value, assessment.id,
                     decision_event_data(assessment, decision_id=decision_id,
                                         goal_id=data.goal_id,
                                         review_date=data.review_date.isoformat(),
                                         changed_by=actor.sub,
                                         occurred_at=assessment.updated_at))

    assessment = await _draft(access, assessment_id, if_match, "decision-recorded", change,
                              announce)
    return assessment, decision_id


async def sign_version(access: RecordAccess, assessment_id: str, if_match: str | None,
                       data: SignatureCreate) -> RiskAssessment:
    """A party signs the latest version by its hash; when both have, it is agreed and becomes
    the version in force."""
    now = utcnow()

    async def attempt(session: AsyncSession) -> RiskAssessment:
        assessment = await _for_change(session, access, assessment_id, if_match, "sign")
        actor = actor_for(access.principal, assessment.service_user_id)
        content = content_of(assessment)
        rows = await _signatures(session, assessment.id, assessment.version)
        standing = [_as_cosign(s) for s in rows]
        refusal = rules.sign_refusal(actor, areas=content.areas,
                                     latest_version=assessment.version,
                                     version=assessment.version,
                                     latest_hash=assessment.content_hash,
                                     signed_hash=data.content_hash, signatures=standing)
        if refusal is not None:
            raise refuse(refusal)
        party = rules.party_of(actor)
        assert isinstance(party, Party)
        signature = cosign.sign(signatory=actor.sub, party=party.value,
                                version=assessment.version,
                                version_hash=assessment.content_hash, signed_at=now)
        row = RiskSignature(assessment_id=assessment.id, version=signature.version,
                            signatory=signature.signatory, party=signature.party,
                            content_hash=signature.content_hash, signed_at=signature.signed_at)
        session.add(row)
        assessment.updated_at = now
        event = RiskEvent.signed
        if cosign.is_agreed([*standing, signature], version=assessment.version,
                            version_hash=assessment.content_hash,
                            required=rules.REQUIRED_PARTIES):
            status = rules.agreed_status(content.areas)
            assessment.active_version = assessment.version
            assessment.status = status.value
            event = (RiskEvent.agreed if status is VersionStatus.agreed
                     else RiskEvent.agreed_with_differences)
        assessment.document = build_document(assessment, content, [*rows, row])
        session.add(assessment)
        _event(session, assessment, event, content, actor, party=party.value)
        await session.commit()
        return assessment

    return await _retrying(access.kit, attempt)


async def withdraw_agreement(access: RecordAccess, assessment_id: str,
                             if_match: str | None) -> RiskAssessment:
    """The person withdraws their agreement: the agreed version is no longer in force."""
    now = utcnow()

    async def attempt(session: AsyncSession) -> RiskAssessment:
        assessment = await _for_change(session, access, assessment_id, if_match, "withdraw")
        actor = actor_for(access.principal, assessment.service_user_id)
        refusal = rules.withdraw_refusal(actor, assessment.active_version)
        if refusal is not None:
            raise refuse(refusal)
        for row in await _signatures(session, assessment.id, assessment.active_version):
            if row.party == Party.service_user.value and row.withdrawn_at is None:
                row.withdrawn_at = now
                session.add(row)
        assessment.active_version = None
        assessment.status = AssessmentStatus.agreement_withdrawn.value
        assessment.updated_at = now
        content = content_of(assessment)
        assessment.document = build_document(
            assessment, content, await _signatures(session, assessment.id, assessment.version))
        session.add(assessment)
        _event(session, assessment, RiskEvent.agreement_withdrawn, content, actor,
               party=Party.service_user.value)
        await session.commit()
        return assessment

    return await _retrying(access.kit, attempt)


async def mark_entered_in_error(access: RecordAccess, assessment_id: str,
                                if_match: str | None, marking: EnteredInError) -> RiskAssessment:
    """Staff mark a co-assessment made in error: kept and readable, out of lists, closed."""
    now = utcnow()

    async def attempt(session: AsyncSession) -> RiskAssessment:
        assessment = await get_assessment(session, access, assessment_id, verb=Verb.update,
                                          action="entered-in-error")
        require_if_match(if_match, assessment.version)
        actor = actor_for(access.principal, assessment.service_user_id)
        refusal = entered_in_error_refusal(actor, assessment.status, rules.RECORD_NAME)
        if refusal is not None:
            raise refuse(refusal)
        assessment.status = IN_ERROR
        assessment.entered_in_error_reason = marking.reason.value
        assessment.active_version = None
        assessment.updated_at = now
        content = content_of(assessment)
        assessment.document = build_document(
            assessment, content, await _signatures(session, assessment.id, assessment.version))
        session.add(assessment)
        _event(session, assessment, RiskEvent.entered_in_error, content, actor)
        await session.commit()
        return assessment

    return await _retrying(access.kit, attempt)


# --- lists --------------------------------------------------------------------------------


def _page_json(documents: Sequence[str], next_cursor: str | None) -> str:
    return f'{{"items":[{",".join(documents)}],"next_cursor":{json.dumps(next_cursor)}}}'


class Standing(StrEnum):
    """Where a co-assessment's latest version stands, as a search asks for it."""

    draft = "draft"  # not agreed, or no longer in force
    agreed = "agreed"  # agreed by both and in force (with or without differences)
    entered_in_error = "entered-in-error"


#: The SQL for each standing (the latest version is in force when it is the active one).
_IN_FORCE = col(RiskAssessment.active_version) == col(RiskAssessment.version)
_STANDING = {
    Standing.entered_in_error: col(RiskAssessment.status) == IN_ERROR,
    Standing.agreed: and_(col(RiskAssessment.status) != IN_ERROR, _IN_FORCE),
    Standing.draft: and_(col(RiskAssessment.status) != IN_ERROR,
                         or_(col(RiskAssessment.active_version).is_(None), ~_IN_FORCE)),
}


@dataclass(frozen=True)
class AssessmentSearch:
    """Which co-assessments a list or search asks for, within the caller's reach (None:
    any)."""

    people: frozenset[str] | None = None
    team_id: str | None = None
    standing: frozenset[Standing] | None = None
    ids: frozenset[str] | None = None
    changed_since: datetime | None = None
    changed_before: datetime | None = None
    include_entered_in_error: bool = False


def _assessments_where(access: RecordAccess,
                       search: AssessmentSearch) -> list[ColumnElement[bool]]:
    """The WHERE of a list or search: the person sees their own, staff their teams',
    partner systems what their scopes allow, audited; 404 when the caller reaches none."""
    people = search.people
    person = next(iter(people)) if people is not None and len(people) == 1 else None
    condition = list_condition(access, RESOURCE, record_type=RECORD,
                               person_column=col(RiskAssessment.service_user_id),
                               team_column=col(RiskAssessment.team_id),
                               service_user_id=person, team_id=search.team_id,
                               what="co-assessments")
    where: list[ColumnElement[bool]] = [] if condition is None else [condition]
    if not search.include_entered_in_error:
        where.append(col(RiskAssessment.status) != IN_ERROR)
    if person is not None:
        where.append(col(RiskAssessment.service_user_id) == person)
    elif people is not None:
        where.append(col(RiskAssessment.service_user_id).in_(sorted(people)))
    if search.team_id is not None:
        where.append(col(RiskAssessment.team_id) == search.team_id)
    if search.standing is not None:
        where.append(or_(false(), *(_STANDING[s] for s in sorted(search.standing))))
    if search.ids is not None:
        where.append(col(RiskAssessment.id).in_(sorted(search.ids)))
    # The record's last change: an edit, a signature, a withdrawal or the mark of an error.
    if search.changed_since is not None:
        where.append(col(RiskAssessment.updated_at)
                     >= literal(search.changed_since, UTCDateTime()))
    if search.changed_before is not None:
        where.append(col(RiskAssessment.updated_at)
                     < literal(search.changed_before, UTCDateTime()))
    return where


async def _assessments_page(access: RecordAccess, where: list[ColumnElement[bool]], *,
                            cursor: str | None, limit: int) -> tuple[list[str], str | None]:
    """One page of co-assessments, newest first: their stored documents (JSON) and the
    cursor after them while there are more."""
    query = select(col(RiskAssessment.created_at), col(RiskAssessment.id), DOCUMENT).where(
        *where)
    if cursor:
        moment, after_id = decode_time_cursor(cursor)
        query = query.where(tuple_(col(RiskAssessment.created_at), col(RiskAssessment.id))
                            < tuple_(literal(moment, UTCDateTime()),
                                     literal(after_id, String())))
    query = query.order_by(col(RiskAssessment.created_at).desc(),
                           col(RiskAssessment.id).desc()).limit(limit + 1)
    rows = await access.kit.reads.all(query)
    next_cursor = (encode_cursor(rows[limit - 1][0], rows[limit - 1][1])
                   if len(rows) > limit else None)
    return [row[2] for row in rows[:limit]], next_cursor


async def list_assessments(access: RecordAccess, *, service_user_id: str | None,
                           team_id: str | None, cursor: str | None, limit: int) -> str:
    """Co-assessments the caller may reach, newest first (``Page[AssessmentPublic]`` JSON)."""
    where = _assessments_where(access, AssessmentSearch(
        people=None if service_user_id is None else frozenset({service_user_id}),
        team_id=team_id))
    return _page_json(*await _assessments_page(access, where, cursor=cursor, limit=limit))


@dataclass(frozen=True)
class AssessmentsFound:
    """One page of a search: the stored documents (JSON), the cursor after them while there
    are more, and how many match in all when that was asked for."""

    documents: list[str]
    next_cursor: str | None
    total: int | None


async def search_assessments(access: RecordAccess, search: AssessmentSearch, *,
                             cursor: str | None, limit: int,
                             total: bool) -> AssessmentsFound:
    """Co-assessments as the list has them (the same reach, newest first, the same cursor),
    narrowed by ``search``; ``limit`` 0 counts only. A search that reaches nobody finds
    nothing, rather than being refused."""
    try:
        where = _assessments_where(access, search)
    except Problem as refusal:
        if refusal.status != 404:
            raise
        return AssessmentsFound([], None, 0 if total else None)
    documents: list[str] = []
    next_cursor = None
    if limit:
        documents, next_cursor = await _assessments_page(access, where, cursor=cursor,
                                                         limit=limit)
    counted = None
    if total:
        rows = await access.kit.reads.all(
            select(func.count(col(RiskAssessment.id))).where(*where))
        counted = int(rows[0][0])
    return AssessmentsFound(documents, next_cursor, counted)


async def holds_assessments_of(access: RecordAccess, person: str) -> bool:
    """Whether the caller may read at least one of the person's co-assessments (their
    Patient here)."""
    return await fhir.holds_records_of(access, person, resource=RESOURCE,
                                       person_column=col(RiskAssessment.service_user_id),
                                       team_column=col(RiskAssessment.team_id))


async def batch_read(access: RecordAccess, request: BatchRead) -> str:
    """Co-assessments of many people at once, each filtered by the caller's access
    (``BatchReadResult`` JSON built from the stored documents)."""
    condition = batch_condition(access, RESOURCE, RECORD, request.service_user_ids,
                                person_column=col(RiskAssessment.service_user_id),
                                team_column=col(RiskAssessment.team_id))
    found: dict[str, list[str]] = {p: [] for p in request.service_user_ids}
    next_cursors: dict[str, str] = {}
    if condition is not None:
        rows = await access.kit.reads.all(
            select(col(RiskAssessment.service_user_id), DOCUMENT,
                   col(RiskAssessment.created_at), col(RiskAssessment.id))
            .where(condition, col(RiskAssessment.status) != IN_ERROR)
            .order_by(col(RiskAssessment.service_user_id),
                      col(RiskAssessment.created_at).desc(), col(RiskAssessment.id).desc()))
        last: dict[str, str] = {}
        for person, document, created_at, assessment_id in rows:
            if len(found[person]) >= request.limit_per_person:
                # Their list goes on after the last one given, as its own cursor says.
                next_cursors.setdefault(person, last[person])
            else:
                found[person].append(document)
                last[person] = encode_cursor(created_at, assessment_id)
    return batch_result_json(found, set(next_cursors), "assessments", next_cursors)


# --- reviews ------------------------------------------------------------------------------


async def reviews_due(access: RecordAccess, team_id: str, *, within_days: int,
                      today: date | None = None) -> ReviewDueList:
    """A team's co-assessments whose review date has come (or comes within the window)."""
    principal = access.principal
    require_scope(principal, RESOURCE, Verb.search)
    allowed = ((principal.is_system and "system" in principal.contexts_for(RESOURCE,
                                                                            Verb.search))
               or (can_reach_record(principal, RESOURCE, Verb.search, service_user_id="",
                                   team_id=team_id) and principal.is_staff))
    access.audit(record_type=RECORD, record_id=None, service_user_id=None,
                 action="reviews-due", outcome=Outcome.allowed if allowed else Outcome.denied)
    if not allowed:
        raise Problem(404, "No co-assessments of that team are available to you.",
                      kind="not-found")
    as_of = today or utcnow().date()
    rows = await access.kit.reads.all(
        select(col(RiskAssessment.id), col(RiskAssessment.service_user_id),
               col(RiskAssessment.review_date), col(RiskAssessment.status))
        .where(col(RiskAssessment.team_id) == team_id,
               col(RiskAssessment.review_date).is_not(None),
               col(RiskAssessment.status) != IN_ERROR)
        .order_by(col(RiskAssessment.review_date), col(RiskAssessment.id)))
    items = [ReviewDue(assessment_id=row[0], service_user_id=row[1], review_date=row[2],
                       overdue_days=rules.overdue_days(row[2], as_of),
                       status=AssessmentStatus(row[3]))
             for row in rows if rules.review_is_due(row[2], as_of, within_days=within_days)]
    return ReviewDueList(team_id=team_id, as_of=as_of, items=items)


async def raise_review_due_events(kit: ServiceKit, today: date | None = None) -> int:
    """Raise one review-due event per co-assessment and review date that has come; the
    background sweep calls it. Answers how many were raised."""
    as_of = today or utcnow().date()
    raised = 0
    async with kit.sessions() as session:
        due = (await session.exec(select(RiskAssessment).where(
            col(RiskAssessment.review_date) <= as_of,
            col(RiskAssessment.status) != IN_ERROR,
            or_(col(RiskAssessment.review_due_raised_for).is_(None),
                col(RiskAssessment.review_due_raised_for) != col(RiskAssessment.review_date)))
            .limit(500))).all()
        for assessment in due:
            assessment.review_due_raised_for = assessment.review_date
            session.add(assessment)
            content = content_of(assessment)
            record_event(session, RiskEvent.review_due.value, assessment.id,
                         assessment_event_data(
                             assessment, changed_by="risk-service", occurred_at=utcnow(),
                             areas=[a.area.value for a in content.areas],
                             differing_areas=[a.value for a in rules.differences(
                                 content.areas)]))
            raised += 1
        try:
            await session.commit()
        except (StaleDataError, IntegrityError):
            # A change raced with the sweep; the next sweep raises what is still due.
            await session.rollback()
            return 0
    return raised
