"""What the crisis-plans service does: plain functions over the caller's access and the kit."""

import json
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic_core import to_jsonable_python
from sqlalchemy import (
    Executable,
    Text,
    bindparam,
    cast,
    distinct,
    exists,
    func,
    literal,
    literal_column,
    or_,
    tuple_,
    update,
)
from sqlalchemy import String as SAString
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import QueryableAttribute, aliased, defer
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common import cosign, fhir
from recovery.common.audit import Outcome
from recovery.common.auth import Role, Verb, require_scope
from recovery.common.data import Transaction
from recovery.common.db import EncodedJSON, UTCDateTime, json_text
from recovery.common.deps import RecordAccess
from recovery.common.events import record_event
from recovery.common.idempotency import Answer, IdempotentRequest, keep_answer
from recovery.common.ids import new_id
from recovery.common.pagination import (
    Page,
    decode_time_cursor,
    decode_version_cursor,
    encode_cursor,
    keyset_page,
)
from recovery.common.problems import Problem
from recovery.common.reach import batch_condition, list_condition, require_create_access
from recovery.common.rules import (
    EnteredInError,
    actor_for,
    closed_refusal,
    entered_in_error_refusal,
    refuse,
)
from recovery.common.timeutil import as_date, utcnow
from recovery.common.versioning import require_if_match, retry_lost_races
from recovery.crisis_plans import rules
from recovery.crisis_plans.events import (
    PlanEvent,
    PlanFacts,
    decision_event_data,
    plan_event_data,
)
from recovery.crisis_plans.models import (
    ActivePlan,
    BatchRead,
    BreakGlassAccess,
    BreakGlassPublic,
    BreakGlassRequest,
    CrisisPlan,
    CrisisPlanSignature,
    CrisisPlanVersion,
    DecisionReviewDue,
    DecisionReviewsDue,
    MedicationDecision,
    MedicationDecisionCreate,
    MedicationDecisionPublic,
    OverdueReview,
    OverdueReviews,
    Party,
    PlanChange,
    PlanContent,
    PlanCreate,
    PlanPublic,
    PlanStatus,
    SignaturePublic,
    SignRequest,
    VersionPublic,
    Withdrawal,
)

RESOURCE = "CarePlan"
RECORD = "CrisisPlan"
#: HL7 v3 ActReason "break the glass": the audit row's purpose; the reason stays in our table.
BREAK_GLASS_PURPOSE = "BTG"
T = TypeVar("T")

#: Changes rewrite the stored documents without reading them: they stay unloaded.
#: (sqlmodel types a mapped attribute as its value; the loader option wants the attribute.)
UNLOADED_DOCUMENTS = [defer(typing.cast(QueryableAttribute[Any], CrisisPlan.document)),
                      defer(typing.cast(QueryableAttribute[Any], CrisisPlan.active_document))]
ACTIVE_DOCUMENT = cast(col(CrisisPlan.active_document), Text)
DOCUMENT = cast(col(CrisisPlan.document), Text)
#: What the kit's closed and entered-in-error refusals call a record here.
RECORD_NAME = "crisis plan"
#: Plans in use, not marked entered-in-error: the status as a literal, not a bound parameter,
#: so that both databases match it to the partial unique index on the person.
IN_USE = col(CrisisPlan.status) != literal_column(f"'{PlanStatus.entered_in_error.value}'")
#: The crisis team's read, built once: one unique-index lookup by person.
READ_ACTIVE = (
    select(col(CrisisPlan.team_id), col(CrisisPlan.id), ACTIVE_DOCUMENT)
    .where(col(CrisisPlan.service_user_id) == bindparam("service_user_id"), IN_USE))
READ_ONE = (
    select(col(CrisisPlan.service_user_id), col(CrisisPlan.team_id), col(CrisisPlan.version),
           DOCUMENT)
    .where(col(CrisisPlan.id) == bindparam("plan_id")))


def _unavailable() -> Problem:
    """One refusal for a plan that does not exist and one the caller may not reach, so that
    the answer never tells them apart."""
    return Problem(404, "No crisis plan with that id is available to you.", kind="not-found")


def _not_found(access: RecordAccess, record_id: str, action: str,
               service_user_id: str | None = None) -> Problem:
    access.audit(record_type=RECORD, record_id=record_id[:64], service_user_id=service_user_id,
                 action=action, outcome=Outcome.denied)
    return _unavailable()


def _require_reach(access: RecordAccess, verb: Verb, *, plan_id: str, service_user_id: str,
                   team_id: str | None, action: str) -> None:
    """The caller may reach this plan (audited either way); refused as if it did not exist."""
    if not access.allows(RESOURCE, verb, record_type=RECORD, record_id=plan_id,
                         service_user_id=service_user_id, team_id=team_id, action=action):
        raise _unavailable()


# --- documents ----------------------------------------------------------------------------


def _signature(row: CrisisPlanSignature) -> cosign.Signature:
    return cosign.Signature(signatory=row.signatory, party=row.party, version=row.version,
                            content_hash=row.content_hash, signed_at=row.signed_at,
                            withdrawn_at=row.withdrawn_at)


def public_signature(signature: cosign.Signature) -> dict[str, Any]:
    """A signature as the plan's document holds it (``SignaturePublic`` in JSON)."""
    return {"signatory": signature.signatory, "party": signature.party,
            "version": signature.version, "content_hash": signature.content_hash,
            "signed_at": to_jsonable_python(signature.signed_at),
            "withdrawn_at": to_jsonable_python(signature.withdrawn_at)}


def signature_of(public: dict[str, Any]) -> cosign.Signature:
    """A signature from the plan's document (``public_signature`` read back)."""
    withdrawn_at = public["withdrawn_at"]
    return cosign.Signature(
        signatory=public["signatory"], party=public["party"], version=public["version"],
        content_hash=public["content_hash"],
        signed_at=datetime.fromisoformat(public["signed_at"]),
        withdrawn_at=None if withdrawn_at is None else datetime.fromisoformat(withdrawn_at))


def _signatures_public(rows: list[CrisisPlanSignature]) -> list[SignaturePublic]:
    return [SignaturePublic.model_validate(row) for row in rows]


def plan_document(plan: CrisisPlan, version: CrisisPlanVersion,
                  signatures: list[CrisisPlanSignature]) -> dict[str, Any]:
    return PlanPublic(
        id=plan.id, service_user_id=plan.service_user_id, team_id=plan.team_id,
        status=PlanStatus(plan.status), entered_in_error_reason=plan.entered_in_error_reason,
        version=plan.version, content_hash=version.content_hash,
        content=PlanContent.model_validate(version.content),
        required_parties=[Party(p) for p in plan.required_parties],
        signatures=_signatures_public(signatures), active_version=plan.active_version,
        agreed_at=plan.agreed_at, review_on=plan.review_on,
        not_individualised=plan.not_individualised, created_by=plan.created_by,
        created_at=plan.created_at, updated_at=plan.updated_at,
    ).model_dump(mode="json")


def active_document_of(document: dict[str, Any]) -> EncodedJSON:
    """The active plan's document from the plan's, when its newest version is the agreed
    one, encoded for its row."""
    content = PlanContent.model_validate(document["content"])
    return EncodedJSON(ActivePlan(
        plan_id=document["id"], service_user_id=document["service_user_id"],
        team_id=document["team_id"], version=document["version"],
        content_hash=document["content_hash"], content=content,
        signatures=document["signatures"], agreed_at=document["agreed_at"],
        review_on=content.review_on, newer_draft=False,
    ).model_dump_json())


def active_document(plan: CrisisPlan, version: CrisisPlanVersion,
                    signatures: list[CrisisPlanSignature]) -> dict[str, Any]:
    assert plan.agreed_at is not None
    content = PlanContent.model_validate(version.content)
    return ActivePlan(
        plan_id=plan.id, service_user_id=plan.service_user_id, team_id=plan.team_id,
        version=version.version, content_hash=version.content_hash, content=content,
        signatures=_signatures_public(signatures), agreed_at=plan.agreed_at,
        review_on=content.review_on, newer_draft=plan.version > version.version,
    ).model_dump(mode="json")


async def _signature_rows(session: AsyncSession, plan_id: str,
                          version: int) -> list[CrisisPlanSignature]:
    rows = (await session.exec(
        select(CrisisPlanSignature)
        .where(col(CrisisPlanSignature.plan_id) == plan_id,
               col(CrisisPlanSignature.version) == version)
        .order_by(col(CrisisPlanSignature.signed_at), col(CrisisPlanSignature.id)))).all()
    return list(rows)


async def _version_row(session: AsyncSession, plan_id: str, version: int) -> CrisisPlanVersion:
    row = await session.get(CrisisPlanVersion, (plan_id, version))
    assert row is not None, "every plan version number has its row"
    return row


async def _refresh_documents(session: AsyncSession, plan: CrisisPlan,
                             newest: CrisisPlanVersion,
                             newest_signatures: list[CrisisPlanSignature], *,
                             active_changed: bool = True) -> None:
    """Write the stored documents of the newest and the active version with the change."""
    plan.document = plan_document(plan, newest, newest_signatures)
    if not active_changed:
        return
    if plan.active_version is None:
        plan.active_document = None
    elif plan.active_version == newest.version:
        plan.active_document = active_document(plan, newest, newest_signatures)
    else:
        active = await _version_row(session, plan.id, plan.active_version)
        plan.active_document = active_document(
            plan, active, await _signature_rows(session, plan.id, plan.active_version))


# --- changes: one transaction each, retried when another change committed first ----------


async def _with_retry(sessions: async_sessionmaker[AsyncSession],
                      change: Callable[[AsyncSession], Awaitable[T]]) -> T:
    return await retry_lost_races(
        sessions, change,
        detail="The plan kept changing while you were changing it; read it again.")


async def _plan_for(session: AsyncSession, access: RecordAccess, plan_id: str, *,
                    verb: Verb, action: str) -> CrisisPlan:
    require_scope(access.principal, RESOURCE, verb)
    plan = (await session.get(CrisisPlan, plan_id, options=UNLOADED_DOCUMENTS)
            if len(plan_id) <= 36 else None)
    if plan is None:
        raise _not_found(access, plan_id, action)
    _require_reach(access, verb, plan_id=plan.id, service_user_id=plan.service_user_id,
                   team_id=plan.team_id, action=action)
    return plan


async def _plan_to_change(session: AsyncSession, access: RecordAccess, plan_id: str,
                          if_match: str | None, action: str) -> CrisisPlan:
    """A plan the caller may change, at the version they saw, and not marked in error."""
    plan = await _plan_for(session, access, plan_id, verb=Verb.update, action=action)
    require_if_match(if_match, plan.version)
    closed = closed_refusal(plan.status, RECORD_NAME)
    if closed is not None:
        raise refuse(closed)
    return plan


def _events(session: AsyncSession, plan: CrisisPlan,
            events: list[tuple[PlanEvent, dict[str, Any]]]) -> None:
    for event, data in events:
        record_event(session, event.value, plan.id, data)


def created_answer(plan: CrisisPlan) -> Answer:
    """What starting the plan answers: its document, ETag and address."""
    return Answer.of(plan.document, version=plan.version,
                     location=f"/v1/crisis-plans/{plan.id}")


async def create_plan(access: RecordAccess, data: PlanCreate,
                      once: IdempotentRequest | None = None) -> CrisisPlan:
    """A clinician or the person starts the plan; its first version is a draft."""
    principal = access.principal
    plan_id = new_id()
    require_create_access(access, RESOURCE, record_type=RECORD, record_id=plan_id,
                          service_user_id=data.service_user_id, team_id=data.team_id,
                          what="crisis plans")
    actor = actor_for(principal, data.service_user_id)
    content = data.content()
    refusal = rules.create_refusal(actor, content)
    if refusal is not None:
        raise refuse(refusal)
    stored = content.model_dump(mode="json")
    digest = cosign.content_hash(stored)
    now = utcnow()
    plan = CrisisPlan(
        id=plan_id, service_user_id=data.service_user_id, team_id=data.team_id,
        created_by=actor.sub, created_at=now, updated_at=now,
        required_parties=[p.value for p in rules.required_parties(
            data.clinician_parties_required)],
        version=1, status=PlanStatus.draft.value, review_on=content.review_on,
        not_individualised=rules.not_individualised(content))
    version = CrisisPlanVersion(plan_id=plan_id, version=1, recorded_at=now,
                                recorded_by=actor.sub, content=stored, content_hash=digest)
    plan.document = plan_document(plan, version, [])
    async with access.kit.sessions() as session:
        await keep_answer(once, session, created_answer(plan))
        session.add(plan)
        session.add(version)
        _events(session, plan, [(PlanEvent.created,
                                 plan_event_data(plan, changed_by=actor.sub,
                                                 content_hash=digest))])
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            await _require_reach_of_plan_in_use(access, data.service_user_id)
            raise Problem(409, "This person already has a crisis plan; change that one "
                          "(it keeps every version).", kind="plan-exists") from exc
    return plan


async def _require_reach_of_plan_in_use(access: RecordAccess, service_user_id: str) -> None:
    """Only a caller who may write for the team holding the person's plan learns that there
    is one; anyone else gets the refusal of writing for a person or team not theirs."""
    rows = await access.kit.reads.all(
        select(col(CrisisPlan.id), col(CrisisPlan.team_id))
        .where(col(CrisisPlan.service_user_id) == service_user_id, IN_USE))
    for plan_id, team_id in rows:
        require_create_access(access, RESOURCE, record_type=RECORD, record_id=plan_id,
                              service_user_id=service_user_id, team_id=team_id,
                              what="crisis plans")


async def change_plan(access: RecordAccess, plan_id: str, if_match: str | None,
                      change: PlanChange) -> CrisisPlan:
    """A new immutable version; after agreement it is a draft and the agreed one stays active."""

    async def attempt(session: AsyncSession) -> CrisisPlan:
        plan = await _plan_to_change(session, access, plan_id, if_match, "update")
        actor = actor_for(access.principal, plan.service_user_id)
        newest = await _version_row(session, plan.id, plan.version)
        before = PlanContent.model_validate(newest.content)
        content = PlanContent.model_validate(change.model_dump())
        refusal = rules.edit_refusal(actor, before, content)
        if refusal is not None:
            raise refuse(refusal)
        stored = content.model_dump(mode="json")
        if stored == newest.content:
            await session.refresh(plan, ["document"])  # nothing changed: no new version
            return plan
        now = utcnow()
        plan.version += 1
        plan.updated_at = now
        plan.status = PlanStatus.draft.value
        if plan.review_on != content.review_on:
            plan.review_due_announced_for = None
        plan.review_on = content.review_on
        plan.not_individualised = rules.not_individualised(content)
        version = CrisisPlanVersion(plan_id=plan.id, version=plan.version, recorded_at=now,
                                    recorded_by=actor.sub, content=stored,
                                    content_hash=cosign.content_hash(stored))
        session.add(version)
        await _refresh_documents(session, plan, version, [])
        session.add(plan)
        _events(session, plan, [(PlanEvent.version_drafted,
                                 plan_event_data(plan, changed_by=actor.sub,
                                                 content_hash=version.content_hash))])
        await session.commit()
        return plan

    return await _with_retry(access.kit.sessions, attempt)


#: Signing, built once (decision 20): the plan with its stored document, which holds the
#: newest version's hash and every signature of it (written in the same transaction as they
#: are), the new signature, and the plan's change guarded by its revision.
_PLAN, _SIGNATURE = (CrisisPlan.__table__,  # type: ignore[attr-defined]
                     CrisisPlanSignature.__table__)  # type: ignore[attr-defined]
SIGNING = (
    select(  # type: ignore[call-overload]  # sqlmodel types at most four columns
           _PLAN.c.service_user_id, _PLAN.c.team_id, _PLAN.c.status, _PLAN.c.version,
           _PLAN.c.required_parties, _PLAN.c.active_version, _PLAN.c.review_on,
           _PLAN.c.not_individualised, _PLAN.c.revision, _PLAN.c.document)
    .where(_PLAN.c.id == bindparam("plan_id")))
INSERT_SIGNATURE = _SIGNATURE.insert()


def _signed(*, agreed: bool) -> Executable:
    values: dict[str, Any] = {"updated_at": bindparam("at", type_=UTCDateTime()),
                              "document": bindparam("new_document", type_=_PLAN.c.document.type),
                              "revision": _PLAN.c.revision + 1}
    if agreed:
        values |= {"status": literal(PlanStatus.agreed.value),
                   "active_version": bindparam("agreed_version", type_=_PLAN.c.version.type),
                   "agreed_at": bindparam("at", type_=UTCDateTime()),
                   "active_document": bindparam("new_active_document",
                                                type_=_PLAN.c.active_document.type)}
    return (update(_PLAN).where(_PLAN.c.id == bindparam("plan_id"),
                                        _PLAN.c.revision == bindparam("seen_revision"))
                    .values(values))


SIGNED, SIGNED_AND_AGREED = _signed(agreed=False), _signed(agreed=True)


async def sign_version(access: RecordAccess, plan_id: str, if_match: str | None,
                       request: SignRequest) -> tuple[int, str]:
    """Bind the signatory to the version If-Match names; agreed once every party has. The
    plan's version and its document as stored."""
    principal = access.principal
    require_scope(principal, RESOURCE, Verb.update)

    async def attempt(tx: Transaction) -> tuple[int, str]:
        rows = await tx.all(SIGNING, {"plan_id": plan_id}) if len(plan_id) <= 36 else []
        if not rows:
            raise _not_found(access, plan_id, "sign")
        (service_user_id, team_id, status, version, required, active_version, review_on,
         not_individualised, revision, document) = rows[0]
        _require_reach(access, Verb.update, plan_id=plan_id, service_user_id=service_user_id,
                       team_id=team_id, action="sign")
        require_if_match(if_match, version)
        closed = closed_refusal(status, RECORD_NAME)
        if closed is not None:
            raise refuse(closed)
        actor = actor_for(principal, service_user_id)
        party = rules.signing_party(actor, request.party,
                                    is_clinician=Role.clinician in principal.roles)
        if isinstance(party, rules.Refusal):
            raise refuse(party)
        version_hash = document["content_hash"]
        signatures = [signature_of(entry) for entry in document["signatures"]]
        refusal = rules.sign_refusal(
            party=party, required=required, version_hash=version_hash,
            sent_hash=request.content_hash,
            already_signed=any(s.party == party.value and not s.withdrawn for s in signatures))
        if refusal is not None:
            raise refuse(refusal)
        now = utcnow()
        bound = cosign.sign(signatory=actor.sub, party=party.value, version=version,
                            version_hash=version_hash, signed_at=now)
        await tx.run(INSERT_SIGNATURE, {
            "id": new_id(), "plan_id": plan_id, "version": version, "signatory": bound.signatory,
            "party": bound.party, "content_hash": bound.content_hash, "signed_at": now,
            "withdrawn_at": None})
        signatures.append(bound)
        # The stored document gains the signature; nothing else in it changes but the times
        # and, once agreed, where agreement stands.
        public = public_signature(bound)
        document["signatures"].append(public)
        document["updated_at"] = public["signed_at"]
        params: dict[str, Any] = {"plan_id": plan_id, "seen_revision": revision, "at": now}
        agreed_now = rules.agreed(signatures, version=version, version_hash=version_hash,
                                  required=required)
        if agreed_now:
            status, active_version = PlanStatus.agreed.value, version
            document.update(status=status, active_version=version, agreed_at=public["signed_at"])
            params |= {"agreed_version": version,
                       "new_active_document": active_document_of(document)}
        # Encoded once: the row stores the text the answer gives.
        stored = params["new_document"] = EncodedJSON(json_text(document))
        await tx.run(SIGNED_AND_AGREED if agreed_now else SIGNED, params, expect=1)
        facts = PlanFacts(id=plan_id, service_user_id=service_user_id, team_id=team_id,
                          status=status, version=version, active_version=active_version,
                          review_on=review_on, not_individualised=not_individualised,
                          updated_at=now)
        await tx.record_event(PlanEvent.version_signed.value, plan_id, plan_event_data(
            facts, changed_by=actor.sub, content_hash=version_hash, party=party.value))
        if agreed_now:
            await tx.record_event(PlanEvent.agreed.value, plan_id, plan_event_data(
                facts, changed_by=actor.sub, content_hash=version_hash))
        return version, stored

    return await retry_lost_races(
        access.kit.writes.transaction, attempt,
        detail="The plan kept changing while you were changing it; read it again.")


async def withdraw_agreement(access: RecordAccess, plan_id: str, if_match: str | None,
                             withdrawal: Withdrawal) -> CrisisPlan:
    """The person withdraws their signatures; a plan they no longer agree is not active."""
    del withdrawal  # the reason is the person's to give; it is not stored in events or logs

    async def attempt(session: AsyncSession) -> CrisisPlan:
        plan = await _plan_to_change(session, access, plan_id, if_match, "withdraw")
        actor = actor_for(access.principal, plan.service_user_id)
        versions = {plan.version} | ({plan.active_version} if plan.active_version else set())
        rows = (await session.exec(
            select(CrisisPlanSignature)
            .where(col(CrisisPlanSignature.plan_id) == plan.id,
                   col(CrisisPlanSignature.version).in_(versions),
                   col(CrisisPlanSignature.party) == Party.service_user.value,
                   col(CrisisPlanSignature.withdrawn_at).is_(None)))).all()
        refusal = rules.withdraw_refusal(actor, bool(rows))
        if refusal is not None:
            raise refuse(refusal)
        now = utcnow()
        for row in rows:
            row.withdrawn_at = now
            session.add(row)
        withdrawn_version = plan.active_version or plan.version
        plan.active_version = None
        plan.agreed_at = None
        plan.updated_at = now
        plan.status = rules.status_of(newest_agreed=False, active_version=None,
                                      withdrawn=True).value
        newest = await _version_row(session, plan.id, plan.version)
        await session.flush()
        await _refresh_documents(session, plan, newest,
                                 await _signature_rows(session, plan.id, plan.version))
        session.add(plan)
        _events(session, plan, [(PlanEvent.agreement_withdrawn, plan_event_data(
            plan, changed_by=actor.sub, version=withdrawn_version))])
        await session.commit()
        return plan

    return await _with_retry(access.kit.sessions, attempt)


async def mark_entered_in_error(access: RecordAccess, plan_id: str, if_match: str | None,
                                marking: EnteredInError) -> CrisisPlan:
    """Staff mark a plan made in error: kept with every version and signature, readable by id,
    closed to change, no longer the person's active plan; another may then be started."""

    async def attempt(session: AsyncSession) -> CrisisPlan:
        plan = await _plan_for(session, access, plan_id, verb=Verb.update,
                               action="entered-in-error")
        require_if_match(if_match, plan.version)
        actor = actor_for(access.principal, plan.service_user_id)
        refusal = entered_in_error_refusal(actor, plan.status, RECORD_NAME)
        if refusal is not None:
            raise refuse(refusal)
        plan.status = PlanStatus.entered_in_error.value
        plan.entered_in_error_reason = marking.reason.value
        plan.active_version = None
        plan.agreed_at = None
        plan.updated_at = utcnow()
        await _refresh_documents(session, plan, await _version_row(session, plan.id,
                                                                   plan.version),
                                 await _signature_rows(session, plan.id, plan.version))
        session.add(plan)
        _events(session, plan, [(PlanEvent.entered_in_error,
                                 plan_event_data(plan, changed_by=actor.sub))])
        await session.commit()
        return plan

    return await _with_retry(access.kit.sessions, attempt)


# --- reads --------------------------------------------------------------------------------


async def read_plan_document(access: RecordAccess, plan_id: str) -> tuple[int, str]:
    """The ETag version and stored JSON of one plan the caller may reach."""
    require_scope(access.principal, RESOURCE, Verb.read)
    rows = (await access.kit.reads.all(READ_ONE, {"plan_id": plan_id})
            if len(plan_id) <= 36 else [])
    if not rows:
        raise _not_found(access, plan_id, "read")
    service_user_id, team_id, version, document = rows[0]
    _require_reach(access, Verb.read, plan_id=plan_id, service_user_id=service_user_id,
                   team_id=team_id, action="read")
    return version, document


async def read_active_plan(access: RecordAccess, service_user_id: str) -> str:
    """The agreed plan a crisis team acts on: one unique-index lookup, handed out as stored."""
    require_scope(access.principal, RESOURCE, Verb.read)
    rows = await access.kit.reads.all(READ_ACTIVE, {"service_user_id": service_user_id})
    team_id, plan_id, document = rows[0] if rows else (None, None, None)
    access.check(RESOURCE, Verb.read, record_type=RECORD, record_id=plan_id,
                 service_user_id=service_user_id, team_id=team_id, action="read-active")
    if document in (None, "null"):  # a JSON column holds SQL NULL as JSON null
        raise Problem(404, "This person has no agreed crisis plan.", kind="no-active-plan")
    return str(document)


async def break_glass(access: RecordAccess, service_user_id: str,
                      request: BreakGlassRequest, crisis_teams: frozenset[str]) -> BreakGlassPublic:
    """A crisis-team clinician reads an active plan outside their teams, giving a reason:
    allowed, kept with its reason, audited under the BTG purpose, and announced."""
    principal = access.principal
    require_scope(principal, RESOURCE, Verb.read)
    refusal = rules.break_glass_refusal(
        is_clinician=Role.clinician in principal.roles and "user" in principal.contexts_for(
            RESOURCE, Verb.read),
        teams=principal.teams, crisis_teams=crisis_teams, reason=request.reason)
    if refusal is not None:
        access.audit(record_type=RECORD, record_id=None, service_user_id=service_user_id,
                     action="break-glass", outcome=Outcome.denied, purpose=BREAK_GLASS_PURPOSE)
        raise refuse(refusal)
    assert request.reason is not None
    async with access.kit.sessions() as session:
        plan = (await session.exec(select(CrisisPlan).where(
            col(CrisisPlan.service_user_id) == service_user_id, IN_USE))).first()
        if plan is None or plan.active_version is None or plan.active_document is None:
            access.audit(record_type=RECORD, record_id=plan.id if plan else None,
                         service_user_id=service_user_id, action="break-glass",
                         outcome=Outcome.denied, purpose=BREAK_GLASS_PURPOSE)
            raise Problem(404, "This person has no agreed crisis plan.", kind="no-active-plan")
        row = BreakGlassAccess(plan_id=plan.id, service_user_id=service_user_id,
                               accessed_by=principal.sub, reason=request.reason.strip(),
                               plan_version=plan.active_version)
        session.add(row)
        data = plan_event_data(plan, changed_by=principal.sub, version=plan.active_version,
                               access_id=row.id)
        data["occurred_at"] = row.accessed_at.isoformat()
        record_event(session, PlanEvent.break_glass.value, plan.id, data)
        await session.commit()
        access.audit(record_type=RECORD, record_id=plan.id, service_user_id=service_user_id,
                     action="break-glass", outcome=Outcome.allowed,
                     purpose=BREAK_GLASS_PURPOSE)
        return BreakGlassPublic(access_id=row.id,
                                plan=ActivePlan.model_validate(plan.active_document))


async def _versions_between(session: AsyncSession, plan_id: str, low: int,
                            high: int) -> list[VersionPublic]:
    """A plan's versions ``low`` to ``high`` with their signatures, oldest first."""
    in_range = (col(CrisisPlanVersion.version) >= low, col(CrisisPlanVersion.version) <= high)
    versions = (await session.exec(
        select(CrisisPlanVersion).where(col(CrisisPlanVersion.plan_id) == plan_id, *in_range)
        .order_by(col(CrisisPlanVersion.version)))).all()
    signatures = (await session.exec(
        select(CrisisPlanSignature).where(
            col(CrisisPlanSignature.plan_id) == plan_id,
            col(CrisisPlanSignature.version) >= low, col(CrisisPlanSignature.version) <= high)
        .order_by(col(CrisisPlanSignature.signed_at), col(CrisisPlanSignature.id)))).all()
    by_version: dict[int, list[CrisisPlanSignature]] = {}
    for signature in signatures:
        by_version.setdefault(signature.version, []).append(signature)
    return [VersionPublic(plan_id=v.plan_id, version=v.version, recorded_at=v.recorded_at,
                          recorded_by=v.recorded_by, content_hash=v.content_hash,
                          content=PlanContent.model_validate(v.content),
                          signatures=_signatures_public(by_version.get(v.version, [])))
            for v in versions]


async def list_versions(access: RecordAccess, plan_id: str, *, cursor: str | None,
                        limit: int) -> Page[VersionPublic]:
    """A page of a plan's versions with their hashes and signatures, oldest first."""
    after = decode_version_cursor(cursor) if cursor else 0
    async with access.kit.sessions() as session:
        plan = await _plan_for(session, access, plan_id, verb=Verb.read, action="read-history")
        last = min(plan.version, after + limit)
        items = await _versions_between(session, plan.id, after + 1, last)
    next_cursor = encode_cursor(last, plan.id) if last < plan.version else None
    return Page[VersionPublic](items=items, next_cursor=next_cursor)


@dataclass(frozen=True)
class PlanVersions:
    """A plan as it stands and some of its versions, newest first; ``replaced_at`` says when
    each one but the newest was replaced by the next."""

    plan: PlanPublic
    versions: list[VersionPublic]
    replaced_at: dict[int, datetime]


async def read_versions(access: RecordAccess, plan_id: str, *, newest: int | None,
                        count: int, action: str) -> PlanVersions:
    """Up to ``count`` versions of a plan, from ``newest`` (the plan's newest when None)
    down, each with when the next one replaced it (a FHIR vread or history)."""
    async with access.kit.sessions() as session:
        plan = await _plan_for(session, access, plan_id, verb=Verb.read, action=action)
        await session.refresh(plan, ["document"])
        top = plan.version if newest is None else min(newest, plan.version)
        low = max(1, top - count + 1)
        # One version more than asked: when it was written is when the last one was replaced.
        versions = (await _versions_between(session, plan.id, low, top + 1)) if count else []
    replaced_at = {v.version - 1: v.recorded_at for v in versions}
    return PlanVersions(plan=PlanPublic.model_validate(plan.document),
                        versions=[v for v in reversed(versions) if v.version <= top],
                        replaced_at=replaced_at)


async def signed_versions(access: RecordAccess, plan_id: str) -> int:
    """How many of a plan's versions have a standing signature (its Provenance)."""
    async with access.kit.sessions() as session:
        plan = await _plan_for(session, access, plan_id, verb=Verb.read, action="read-history")
        return (await session.exec(
            select(func.count(distinct(col(CrisisPlanSignature.version)))).where(
                col(CrisisPlanSignature.plan_id) == plan.id,
                col(CrisisPlanSignature.withdrawn_at).is_(None)))).one()


def _team_reach(access: RecordAccess, team_id: str, action: str) -> None:
    """Staff of the team (or a partner system) may list its plans; 404 otherwise, audited."""
    principal = access.principal
    require_scope(principal, RESOURCE, Verb.search)
    contexts = principal.contexts_for(RESOURCE, Verb.search)
    allowed = (("system" in contexts and principal.is_system)
               or ("user" in contexts and principal.is_staff and team_id in principal.teams))
    access.audit(record_type=RECORD, record_id=None, service_user_id=None, action=action,
                 outcome=Outcome.allowed if allowed else Outcome.denied)
    if not allowed:
        raise Problem(404, "No crisis plans of that team are available to you.",
                      kind="not-found")


async def overdue_reviews(access: RecordAccess, team_id: str, *, limit: int) -> OverdueReviews:
    """A team's plans past their review date, most overdue first."""
    _team_reach(access, team_id, "overdue-reviews")
    today = utcnow().date()
    query = (select(  # type: ignore[call-overload]  # sqlmodel types at most four columns
                    col(CrisisPlan.id), col(CrisisPlan.service_user_id),
                    col(CrisisPlan.review_on), col(CrisisPlan.status),
                    col(CrisisPlan.not_individualised))
             .where(col(CrisisPlan.team_id) == team_id, col(CrisisPlan.review_on) < today,
                    IN_USE)
             .order_by(col(CrisisPlan.review_on), col(CrisisPlan.id)).limit(limit + 1))
    rows = await access.kit.reads.all(query)
    items = []
    for plan_id, person, review_on, status, generic in rows[:limit]:
        review_day = as_date(review_on)
        items.append(OverdueReview(plan_id=plan_id, service_user_id=person,
                                   review_on=review_day,
                                   days_overdue=rules.days_overdue(review_day, today) or 0,
                                   status=PlanStatus(status),
                                   not_individualised=bool(generic)))
    return OverdueReviews(team_id=team_id, as_of=today, items=items,
                          truncated=len(rows) > limit)


async def decision_reviews_due(access: RecordAccess, team_id: str, *,
                               limit: int) -> DecisionReviewsDue:
    """A team's standing shared decisions on medication whose review date has come."""
    _team_reach(access, team_id, "decision-reviews-due")
    today = utcnow().date()
    later = aliased(MedicationDecision)
    query = (select(col(MedicationDecision.id), col(MedicationDecision.plan_id),
                    col(CrisisPlan.service_user_id), col(MedicationDecision.review_on))
             .join(CrisisPlan, col(CrisisPlan.id) == col(MedicationDecision.plan_id))
             .where(col(CrisisPlan.team_id) == team_id, IN_USE,
                    col(MedicationDecision.review_on) <= today,
                    ~exists().where(col(later.revisits) == col(MedicationDecision.id)))
             .order_by(col(MedicationDecision.review_on), col(MedicationDecision.id))
             .limit(limit + 1))
    rows = await access.kit.reads.all(query)
    items = []
    for decision_id, plan_id, person, review_on in rows[:limit]:
        review_day = as_date(review_on)
        items.append(DecisionReviewDue(decision_id=decision_id, plan_id=plan_id,
                                       service_user_id=person, review_on=review_day,
                                       days_overdue=rules.days_overdue(review_day, today) or 0))
    return DecisionReviewsDue(team_id=team_id, as_of=today, items=items,
                              truncated=len(rows) > limit)


async def _plans_page(access: RecordAccess, query: Any, *, cursor: str | None,
                      limit: int) -> tuple[list[str], str | None]:
    """One page of plans, newest first: their stored documents (JSON) and the cursor after
    them while there are more; ``query`` selects (created_at, id, document)."""
    if cursor:
        after: tuple[datetime, str] = decode_time_cursor(cursor)
        query = query.where(tuple_(col(CrisisPlan.created_at), col(CrisisPlan.id))
                            < tuple_(literal(after[0], UTCDateTime()),
                                     literal(after[1], SAString())))
    rows = await access.kit.reads.all(
        query.order_by(col(CrisisPlan.created_at).desc(), col(CrisisPlan.id).desc())
        .limit(limit + 1))
    next_cursor = (encode_cursor(rows[limit - 1][0], rows[limit - 1][1])
                   if len(rows) > limit else None)
    return [row[2] for row in rows[:limit]], next_cursor


def _page_json(documents: list[str], next_cursor: str | None) -> str:
    """``Page[PlanPublic]`` JSON of stored documents."""
    return f'{{"items":[{",".join(documents)}],"next_cursor":{json.dumps(next_cursor)}}}'


async def list_team_plans(access: RecordAccess, team_id: str, *,
                          not_individualised: bool | None, cursor: str | None,
                          limit: int) -> str:
    """A team's plans, newest first, optionally only those with nothing specific to the
    person; ``Page[PlanPublic]`` JSON from the stored documents."""
    _team_reach(access, team_id, "search")
    query = select(col(CrisisPlan.created_at), col(CrisisPlan.id), DOCUMENT).where(
        col(CrisisPlan.team_id) == team_id, IN_USE)
    if not_individualised is not None:
        query = query.where(col(CrisisPlan.not_individualised) == not_individualised)
    return _page_json(*await _plans_page(access, query, cursor=cursor, limit=limit))


@dataclass(frozen=True)
class PlanSearch:
    """Which plans a list or search asks for, within the caller's reach (None: any)."""

    people: frozenset[str] | None = None
    statuses: frozenset[PlanStatus] | None = None
    ids: frozenset[str] | None = None
    changed_since: datetime | None = None
    changed_before: datetime | None = None
    include_entered_in_error: bool = False


def _plans_where(access: RecordAccess, search: PlanSearch) -> list[ColumnElement[bool]]:
    """The WHERE of a list or search of plans: the person sees all of theirs, staff those of
    their teams, partner systems what their scopes allow (no break-glass here), audited;
    404 when the caller reaches none of it."""
    people = search.people
    person = next(iter(people)) if people is not None and len(people) == 1 else None
    condition = list_condition(access, RESOURCE, record_type=RECORD,
                               person_column=col(CrisisPlan.service_user_id),
                               team_column=col(CrisisPlan.team_id),
                               service_user_id=person, team_id=None, what="crisis plans")
    where: list[ColumnElement[bool]] = [] if condition is None else [condition]
    if person is not None:
        where.append(col(CrisisPlan.service_user_id) == person)
    elif people is not None:
        where.append(col(CrisisPlan.service_user_id).in_(sorted(people)))
    if search.statuses is not None:
        where.append(col(CrisisPlan.status).in_(sorted(s.value for s in search.statuses)))
    if not search.include_entered_in_error:
        where.append(IN_USE)
    if search.ids is not None:
        where.append(col(CrisisPlan.id).in_(sorted(search.ids)))
    # The plan's last change: an edit, a signature, a withdrawal or the mark of an error.
    if search.changed_since is not None:
        where.append(col(CrisisPlan.updated_at) >= literal(search.changed_since, UTCDateTime()))
    if search.changed_before is not None:
        where.append(col(CrisisPlan.updated_at) < literal(search.changed_before, UTCDateTime()))
    return where


async def list_person_plans(access: RecordAccess, service_user_id: str, *,
                            include_entered_in_error: bool, cursor: str | None,
                            limit: int) -> str:
    """A person's plans, newest first (those marked entered-in-error only when asked for): the
    person sees all of theirs, staff those of their teams (no break-glass here);
    ``Page[PlanPublic]`` JSON from the stored documents."""
    where = _plans_where(access, PlanSearch(people=frozenset({service_user_id}),
                                            include_entered_in_error=include_entered_in_error))
    query = select(col(CrisisPlan.created_at), col(CrisisPlan.id), DOCUMENT).where(*where)
    return _page_json(*await _plans_page(access, query, cursor=cursor, limit=limit))


@dataclass(frozen=True)
class PlansFound:
    """One page of a search: the plans' stored documents (JSON), the cursor after them while
    there are more, and how many match in all when that was asked for."""

    documents: list[str]
    next_cursor: str | None
    total: int | None


async def search_plans(access: RecordAccess, search: PlanSearch, *, cursor: str | None,
                       limit: int, total: bool) -> PlansFound:
    """Plans as the person's list has them (the same reach, newest first, the same cursor),
    narrowed by ``search``; ``limit`` 0 counts only. A search that reaches nobody finds
    nothing, rather than being refused."""
    try:
        where = _plans_where(access, search)
    except Problem as refusal:
        if refusal.status != 404:
            raise
        return PlansFound([], None, 0 if total else None)
    documents: list[str] = []
    next_cursor = None
    if limit:
        query = select(col(CrisisPlan.created_at), col(CrisisPlan.id), DOCUMENT).where(*where)
        documents, next_cursor = await _plans_page(access, query, cursor=cursor, limit=limit)
    counted = None
    if total:
        rows = await access.kit.reads.all(select(func.count(col(CrisisPlan.id))).where(*where))
        counted = int(rows[0][0])
    return PlansFound(documents, next_cursor, counted)


async def holds_plans_of(access: RecordAccess, person: str) -> bool:
    """Whether the caller may read at least one of the person's plans (their Patient here)."""
    return await fhir.holds_records_of(access, person, resource=RESOURCE,
                                       person_column=col(CrisisPlan.service_user_id),
                                       team_column=col(CrisisPlan.team_id))


async def batch_read(access: RecordAccess, request: BatchRead) -> str:
    """Active plans of many people at once, each filtered by the caller's access, and each
    one's first page of plans when asked; ``BatchReadResult`` JSON from the stored
    documents."""
    require_scope(access.principal, RESOURCE, Verb.read)
    lists = (await _first_plans(access, request) if request.limit_per_person
             else None)
    rows = await access.kit.reads.all(
        select(col(CrisisPlan.service_user_id), col(CrisisPlan.team_id), col(CrisisPlan.id),
               ACTIVE_DOCUMENT)
        .where(col(CrisisPlan.service_user_id).in_(request.service_user_ids), IN_USE))
    found = {row[0]: row for row in rows}
    parts = []
    for person in request.service_user_ids:
        _, team_id, plan_id, document = found.get(person, (person, None, None, None))
        allowed = access.allows(RESOURCE, Verb.read, record_type=RECORD, record_id=plan_id,
                                service_user_id=person, team_id=team_id, action="batch-read")
        shown = document if allowed and document is not None else "null"  # JSON null too
        listed = ""
        if lists is not None:
            plans, next_cursor = lists.get(person, ([], None))
            listed = (f',"plans":[{",".join(plans)}],"truncated":{json.dumps(bool(next_cursor))}'
                      f',"next_cursor":{json.dumps(next_cursor)}')
        parts.append(f'{{"service_user_id":{json.dumps(person)},"active_plan":{shown}{listed}}}')
    return f'{{"results":[{",".join(parts)}]}}'


async def _first_plans(access: RecordAccess, request: BatchRead
                       ) -> dict[str, tuple[list[str], str | None]]:
    """Each person's newest plans in use that the caller may read, as their plans list's
    first page: the documents, and the list's cursor after them when there are more."""
    condition = batch_condition(access, RESOURCE, RECORD, request.service_user_ids,
                                person_column=col(CrisisPlan.service_user_id),
                                team_column=col(CrisisPlan.team_id))
    if condition is None:
        return {}
    limit = request.limit_per_person
    position = func.row_number().over(
        partition_by=col(CrisisPlan.service_user_id),
        order_by=(col(CrisisPlan.created_at).desc(), col(CrisisPlan.id).desc())
    ).label("position")
    # sqlmodel's select is typed for up to four columns: the fifth is added.
    ranked = (select(col(CrisisPlan.service_user_id), DOCUMENT.label("document"), position,
                     col(CrisisPlan.created_at).label("created_at"))
              .add_columns(col(CrisisPlan.id).label("id"))
              .where(condition, IN_USE).subquery())
    rows = await access.kit.reads.all(
        select(ranked.c.service_user_id, ranked.c.document, ranked.c.position,
               ranked.c.created_at).add_columns(ranked.c.id)
        .where(ranked.c.position <= limit + 1)
        .order_by(ranked.c.service_user_id, ranked.c.position))
    plans: dict[str, list[str]] = {}
    last: dict[str, str] = {}
    following: dict[str, str] = {}
    for person, document, rank, created_at, plan_id in rows:
        if rank > limit:
            following[person] = last[person]
            continue
        plans.setdefault(person, []).append(document)
        if rank == limit:
            last[person] = encode_cursor(created_at, plan_id)
    return {person: (documents, following.get(person)) for person, documents in plans.items()}


# --- shared decisions on medication -------------------------------------------------------


async def record_medication_decision(access: RecordAccess, plan_id: str,
                                     decision: MedicationDecisionCreate,
                                     once: IdempotentRequest | None = None
                                     ) -> MedicationDecisionPublic:
    """A shared decision made with the person, kept beside their plan; at a review, a new
    decision that revisits the earlier one, which then stands no longer."""
    async with access.kit.sessions() as session:
        plan = await _plan_for(session, access, plan_id, verb=Verb.update,
                               action="record-decision")
        closed = closed_refusal(plan.status, RECORD_NAME)
        if closed is not None:
            raise refuse(closed)
        actor = actor_for(access.principal, plan.service_user_id)
        if actor.kind is rules.ActorKind.system:
            raise refuse(rules.Refusal(403, "forbidden",
                                       "Partner systems do not record shared decisions."))
        if decision.revisits is not None:
            earlier = await session.get(MedicationDecision, decision.revisits)
            revisited = await _revisited_by(session, [decision.revisits])
            refusal = rules.revisit_refusal(
                earlier_on_this_plan=earlier is not None and earlier.plan_id == plan.id,
                revisited_by=revisited.get(decision.revisits))
            if refusal is not None:
                raise refuse(refusal)
        row = MedicationDecision(plan_id=plan.id, recorded_by=actor.sub,
                                 revisits=decision.revisits, review_on=decision.review_on,
                                 document={})
        public = MedicationDecisionPublic(id=row.id, plan_id=plan.id, recorded_by=actor.sub,
                                          recorded_at=row.recorded_at,
                                          **decision.model_dump())
        row.document = public.model_dump(mode="json", exclude={"revisited_by"})
        await keep_answer(once, session, Answer.of(public))
        session.add(row)
        record_event(session, PlanEvent.decision_recorded.value, plan.id,
                     decision_event_data(plan, row))
        try:
            await session.commit()
        except IntegrityError as exc:  # another review of the same decision came first
            await session.rollback()
            raise Problem(409, "That decision was reviewed already, just now; read the "
                          "decisions again and revisit the newest.",
                          kind="decision-already-revisited") from exc
    return public


async def _revisited_by(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    """For each of these decisions that a later one revisits: that later decision's id."""
    if not ids:
        return {}
    rows = (await session.exec(
        select(col(MedicationDecision.revisits), col(MedicationDecision.id))
        .where(col(MedicationDecision.revisits).in_(ids)))).all()
    return {earlier: later for earlier, later in rows if earlier is not None}


async def list_medication_decisions(access: RecordAccess, plan_id: str, *,
                                    cursor: str | None,
                                    limit: int) -> Page[MedicationDecisionPublic]:
    """A page of the plan's shared decisions on medication, newest first."""
    after = decode_time_cursor(cursor) if cursor else None
    async with access.kit.sessions() as session:
        plan = await _plan_for(session, access, plan_id, verb=Verb.read,
                               action="read-decisions")
        query = select(MedicationDecision).where(col(MedicationDecision.plan_id) == plan.id)
        if after is not None:
            query = query.where(tuple_(col(MedicationDecision.recorded_at),
                                       col(MedicationDecision.id)) < tuple_(*after))
        rows = (await session.exec(
            query.order_by(col(MedicationDecision.recorded_at).desc(),
                           col(MedicationDecision.id).desc()).limit(limit + 1))).all()
        page, next_cursor = keyset_page(rows, limit, key=lambda row: (row.recorded_at, row.id))
        revisited = await _revisited_by(session, [row.id for row in page])
    return Page[MedicationDecisionPublic](
        items=[MedicationDecisionPublic.model_validate(
            {**row.document, "revisited_by": revisited.get(row.id)}) for row in page],
        next_cursor=next_cursor)


# --- reviews falling due ------------------------------------------------------------------


async def announce_due_reviews(sessions: async_sessionmaker[AsyncSession],
                               today: date | None = None) -> int:
    """Raise ``plan.review-due`` once for each plan whose review date has come, and
    ``medication-decision.review-due`` once for each standing shared decision whose review
    date has come (not revisited yet, its plan in use); how many were raised."""
    day = today or utcnow().date()
    announced = 0
    async with sessions() as session:
        plans = (await session.exec(select(CrisisPlan).where(
            col(CrisisPlan.review_on) <= day, IN_USE,
            or_(col(CrisisPlan.review_due_announced_for).is_(None),
                col(CrisisPlan.review_due_announced_for) != col(CrisisPlan.review_on)))
            .limit(500))).all()
        for plan in plans:
            if not rules.review_due(plan.review_on, day, plan.review_due_announced_for):
                continue
            plan.review_due_announced_for = plan.review_on
            session.add(plan)
            data = plan_event_data(plan, changed_by="crisis-plans")
            data["occurred_at"] = utcnow().isoformat()
            record_event(session, PlanEvent.review_due.value, plan.id, data)
            announced += 1
        later = aliased(MedicationDecision)
        decisions = (await session.exec(
            select(MedicationDecision, CrisisPlan)
            .join(CrisisPlan, col(CrisisPlan.id) == col(MedicationDecision.plan_id))
            .where(col(MedicationDecision.review_on) <= day, IN_USE,
                   col(MedicationDecision.review_due_announced_at).is_(None),
                   ~exists().where(col(later.revisits) == col(MedicationDecision.id)))
            .limit(500))).all()
        for decision, plan in decisions:
            now = utcnow()
            decision.review_due_announced_at = now
            session.add(decision)
            data = decision_event_data(plan, decision)
            data["occurred_at"] = now.isoformat()
            record_event(session, PlanEvent.decision_review_due.value, plan.id, data)
            announced += 1
        try:
            await session.commit()
        except StaleDataError:
            await session.rollback()  # a change raced the sweep; the next sweep catches up
            return 0
    return announced
