"""What the goals service does: plain functions over a session and the caller's access."""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    String,
    Text,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    tuple_,
    type_coerce,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from recovery.common import fhir
from recovery.common.audit import Outcome
from recovery.common.auth import (
    Verb,
    require_scope,
)
from recovery.common.data import Reads, row_of
from recovery.common.db import UTCDateTime
from recovery.common.deps import RecordAccess
from recovery.common.events import record_event
from recovery.common.idempotency import Answer, IdempotentRequest, keep_answer
from recovery.common.ids import new_id
from recovery.common.pagination import (
    Page,
    decode_date_cursor,
    decode_time_cursor,
    decode_version_cursor,
    encode_cursor,
)
from recovery.common.problems import Problem
from recovery.common.reach import (
    batch_condition,
    batch_result_json,
    list_condition,
    one_of,
    require_create_access,
)
from recovery.common.rules import actor_for, refuse
from recovery.common.timeutil import utcnow
from recovery.common.versioning import require_if_match
from recovery.goals import rules
from recovery.goals.events import GoalEvent, goal_event_data
from recovery.goals.models import (
    BatchRead,
    Decision,
    ExpressedBy,
    Goal,
    GoalCreate,
    GoalKind,
    GoalPublic,
    GoalReview,
    GoalUpdate,
    GoalVersion,
    GoalVersionPublic,
    LifeArea,
    LifecycleStatus,
    ReviewCreate,
    ReviewPublic,
    StatusChange,
    StepCreate,
    StepUpdate,
    TeamFigures,
)

RESOURCE = "Goal"
S = LifecycleStatus
#: The stored public document as JSON text (cast in SQL: asyncpg would decode json itself),
#: so reads pass it on without decoding it.
DOCUMENT = cast(col(Goal.document), Text)
#: Reading one goal, built once: what access needs, the version and the document.
READ_ONE = (select(col(Goal.service_user_id), col(Goal.team_id), col(Goal.version),
                           DOCUMENT).where(col(Goal.id) == bindparam("goal_id")))


#: created_at as the driver returns it: a page needs one row's timestamp (for its cursor),
#: and decoding it on every row was a tenth of a list request.
RAW_CREATED_AT = type_coerce(col(Goal.created_at), String())


def stored_time(value: datetime | str) -> datetime:
    """A ``RAW_CREATED_AT`` value as an aware UTC datetime (SQLite stores UTC text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def public(goal: Goal) -> GoalPublic:
    return GoalPublic.model_validate(goal)


def agreed(goal: Goal) -> bool:
    """The person has made this goal theirs: written it, or accepted the proposal."""
    return goal.accepted_at is not None


# --- reading one goal ---------------------------------------------------------------------


async def get_goal(session: AsyncSession, access: RecordAccess, goal_id: str, *,
                   verb: Verb = Verb.read, action: str = "read") -> Goal:
    """One goal the caller may reach (one primary-key query), audited; 404 otherwise."""
    require_scope(access.principal, RESOURCE, verb)
    goal = await session.get(Goal, goal_id) if len(goal_id) <= 36 else None
    if goal is None:
        raise _unknown_goal(access, goal_id, action)
    access.check(RESOURCE, verb, record_type=RESOURCE, record_id=goal.id,
                 service_user_id=goal.service_user_id, team_id=goal.team_id, action=action)
    return goal


def _unknown_goal(access: RecordAccess, goal_id: str, action: str) -> Problem:
    access.audit(record_type=RESOURCE, record_id=goal_id[:64], service_user_id=None,
                 action=action, outcome=Outcome.denied)
    return Problem(404, "No Goal with that id is available to you.", kind="not-found")


async def read_goal_document(access: RecordAccess, goal_id: str, *,
                             action: str = "read") -> tuple[int, str]:
    """The version and stored JSON of one goal the caller may reach: one indexed query."""
    require_scope(access.principal, RESOURCE, Verb.read)
    rows = (await access.kit.reads.all(READ_ONE, {"goal_id": goal_id})
            if len(goal_id) <= 36 else [])
    row = rows[0] if rows else None
    if row is None:
        raise _unknown_goal(access, goal_id, action)
    service_user_id, team_id, version, document = row
    access.check(RESOURCE, Verb.read, record_type=RESOURCE, record_id=goal_id,
                 service_user_id=service_user_id, team_id=team_id, action=action)
    return version, document


#: One earlier version of a goal as it was, and a page of its versions newest first.
SNAPSHOT = cast(col(GoalVersion.snapshot), Text)
READ_VERSION = select(SNAPSHOT).where(col(GoalVersion.goal_id) == bindparam("goal_id"),
                                      col(GoalVersion.version) == bindparam("version"))
VERSIONS_BEFORE = (select(col(GoalVersion.version), SNAPSHOT)
                   .where(col(GoalVersion.goal_id) == bindparam("goal_id"),
                          col(GoalVersion.version) < bindparam("before"))
                   .order_by(col(GoalVersion.version).desc()).limit(bindparam("limit")))


async def read_goal_version(access: RecordAccess, goal_id: str, version: int) -> str:
    """The stored JSON of one version of a goal the caller may reach; 404 for a version it
    never had."""
    current, document = await read_goal_document(access, goal_id, action="read-version")
    if version == current:
        return document  # the newest version's snapshot is the goal's document
    rows = (await access.kit.reads.all(READ_VERSION, {"goal_id": goal_id, "version": version})
            if version < current else [])
    if not rows:
        raise Problem(404, f"The goal has no version {version}.", kind="not-found")
    snapshot: str = rows[0][0]
    return snapshot


async def goal_history(access: RecordAccess, goal_id: str, *, cursor: str | None,
                       limit: int) -> "GoalDocuments":
    """A page of a goal's versions, newest first, and how many it has (versions are
    numbered from 1 without gaps, so its current version)."""
    current, _ = await read_goal_document(access, goal_id, action="read-history")
    before = decode_version_cursor(cursor) if cursor else current + 1
    rows = (await access.kit.reads.all(VERSIONS_BEFORE, {
        "goal_id": goal_id, "before": before, "limit": limit + 1}) if limit > 0 else [])
    next_cursor = encode_cursor(rows[limit - 1][0], goal_id) if len(rows) > limit else None
    return GoalDocuments([row[1] for row in rows[:limit]], next_cursor, total=current)


async def _goal_for_change(session: AsyncSession, access: RecordAccess, goal_id: str,
                           if_match: str | None, action: str) -> Goal:
    goal = await get_goal(session, access, goal_id, verb=Verb.update, action=action)
    require_if_match(if_match, goal.version)
    return goal


def _version_of(goal: Goal, actor: rules.Actor, event: GoalEvent) -> GoalVersion:
    """The version row of the goal as it now stands, its stored document as the snapshot."""
    return GoalVersion(goal_id=goal.id, version=goal.version, recorded_at=goal.updated_at,
                       recorded_by=actor.sub, change=event.value.rsplit(".", 1)[1],
                       snapshot=goal.document)


async def _commit_change(session: AsyncSession, goal: Goal, *, actor: rules.Actor,
                         event: GoalEvent, data: dict[str, Any], extra: Sequence[Any] = ()
                         ) -> None:
    """Write the goal, its new version and its event in one transaction."""
    goal.document = public(goal).model_dump(mode="json")
    session.add(goal)
    session.add(_version_of(goal, actor, event))
    for row in extra:
        session.add(row)
    record_event(session, event.value, goal.id, data)
    try:
        await session.commit()
    except IntegrityError as exc:
        # Two changes raced from the same version: the second loses on goal_version's key.
        await session.rollback()
        raise Problem(412, "The goal changed while you were changing it; read it again.",
                      kind="version-conflict") from exc


def _bump(goal: Goal) -> None:
    goal.version += 1
    goal.updated_at = utcnow()


# --- creating and changing ----------------------------------------------------------------


#: The goals a therapeutic goal says it serves.
LINKED = (select(col(Goal.id), col(Goal.service_user_id), col(Goal.kind),
                         col(Goal.lifecycle_status))
                  .where(col(Goal.id).in_(bindparam("ids", expanding=True))))


async def _linked_goals(reads: Reads, ids: list[str]) -> dict[str, rules.LinkedGoal]:
    if not ids:
        return {}
    rows = await reads.all(LINKED, {"ids": ids})
    return {row[0]: rules.LinkedGoal(row[0], row[1], GoalKind(row[2]), S(row[3]))
            for row in rows}


async def _served_by(session: AsyncSession, goal: Goal) -> list[str]:
    """Open therapeutic goals of the same person that serve this goal."""
    rows = (await session.exec(
        select(Goal.id, Goal.serves_goal_ids)
        .where(col(Goal.service_user_id) == goal.service_user_id,
               col(Goal.kind) == GoalKind.therapeutic.value,
               col(Goal.lifecycle_status).not_in([s.value for s in rules.CLOSED]))
    )).all()
    return [goal_id for goal_id, serves in rows if goal.id in serves]


async def _check_links(reads: Reads, kind: GoalKind, service_user_id: str,
                       serves_goal_ids: list[str]) -> None:
    linked = await _linked_goals(reads, serves_goal_ids)
    refusal = rules.therapeutic_link_refusal(kind, service_user_id, serves_goal_ids, linked)
    if refusal is not None:
        raise refuse(refusal)


def _step_row(step: StepCreate) -> dict[str, Any]:
    return {"id": new_id(), "who": step.who.value, "what": step.what,
            "by_when": step.by_when.isoformat() if step.by_when else None,
            "done": False, "done_at": None}


#: Creating a goal, built once (decision 20): the goal, its first version, its event.
INSERT_GOAL = Goal.__table__.insert()  # type: ignore[attr-defined]
INSERT_VERSION = GoalVersion.__table__.insert()  # type: ignore[attr-defined]


def created_answer(goal: Goal) -> Answer:
    """What creating the goal answers: its document, ETag and address."""
    return Answer.of(goal.document, version=goal.version, location=f"/v1/goals/{goal.id}")


def review_answer(review: GoalReview) -> Answer:
    """What recording the review answers, with the goal's new ETag."""
    return Answer.of(ReviewPublic.model_validate(review), version=review.goal_version)


async def create_goal(access: RecordAccess, data: GoalCreate,
                      once: IdempotentRequest | None = None, *,
                      answer: Callable[[Goal], Answer] = created_answer,
                      proposal_only: bool = False) -> Goal:
    """The person writes their own goal (active), or staff propose one (proposed).

    ``answer`` is what a retry under the same Idempotency-Key gets (the FHIR route keeps its
    resource); ``proposal_only`` refuses a caller whose goal would not be a staff proposal.
    """
    principal = access.principal
    goal_id = new_id()
    require_create_access(access, RESOURCE, record_type=RESOURCE, record_id=goal_id,
                          service_user_id=data.service_user_id, team_id=data.team_id,
                          what="goals")
    actor = actor_for(principal, data.service_user_id)
    if proposal_only and (refusal := rules.proposal_refusal(actor)) is not None:
        raise refuse(refusal)
    state = rules.initial_state(actor)
    if isinstance(state, rules.Refusal):
        raise refuse(state)
    await _check_links(access.kit.reads, data.kind, data.service_user_id, data.serves_goal_ids)
    now = utcnow()
    goal = Goal(
        id=goal_id, service_user_id=data.service_user_id, team_id=data.team_id,
        kind=data.kind.value,
        life_area=data.life_area.value if data.life_area else None,
        chime_tags=[tag.value for tag in data.chime_tags], description=data.description,
        why_it_matters=data.why_it_matters, strengths=list(data.strengths),
        supporters=[s.model_dump(mode="json", exclude_none=True) for s in data.supporters],
        target_date=data.target_date, serves_goal_ids=list(data.serves_goal_ids),
        steps=[_step_row(step) for step in data.steps],
        expressed_by=state.expressed_by.value,
        proposed_by=None if state.agreed else actor.sub,
        lifecycle_status=state.lifecycle_status.value,
        achievement_status=state.achievement_status.value if state.achievement_status else None,
        created_at=now, updated_at=now, status_changed_at=now,
        accepted_at=now if state.agreed else None, version=1,
    )
    event = GoalEvent.created if state.agreed else GoalEvent.proposed
    goal.document = public(goal).model_dump(mode="json")
    async with access.kit.writes.transaction() as tx:
        await keep_answer(once, tx, answer(goal))
        await tx.run(INSERT_GOAL, row_of(goal))
        await tx.run(INSERT_VERSION, row_of(_version_of(goal, actor, event)))
        await tx.record_event(event.value, goal.id, goal_event_data(goal, changed_by=actor.sub))
    return goal


async def update_goal(session: AsyncSession, access: RecordAccess, goal_id: str,
                      if_match: str | None, change: GoalUpdate, *,
                      stated: Mapping[str, str] | None = None) -> Goal:
    """Change what the goal says; the person's own words stay theirs once agreed.

    ``stated``: what the caller says fields an update never changes hold (a whole FHIR Goal
    names its person, team and status); 422 when they hold something else.
    """
    goal = await _goal_for_change(session, access, goal_id, if_match, "update")
    actor = actor_for(access.principal, goal.service_user_id)
    stated = stated or {}
    refusal = rules.unchangeable_refusal(stated, {name: getattr(goal, name) for name in stated})
    if refusal is not None:
        raise refuse(refusal)
    fields = change.model_dump(mode="json", exclude_unset=True)
    if change.supporters is not None:
        fields["supporters"] = [s.model_dump(mode="json", exclude_none=True)
                                for s in change.supporters]
    if fields.get("target_date") is not None:
        fields["target_date"] = date.fromisoformat(fields["target_date"])
    changed = [name for name, value in fields.items() if getattr(goal, name) != value]
    refusal = rules.edit_refusal(actor, S(goal.lifecycle_status), changed, agreed=agreed(goal))
    if refusal is not None:
        raise refuse(refusal)
    if not changed:
        return goal
    kind = GoalKind(fields.get("kind", goal.kind))
    serves = fields.get("serves_goal_ids", goal.serves_goal_ids)
    if kind is GoalKind.life and "kind" in changed and "serves_goal_ids" not in fields:
        serves = []  # a goal becoming a life goal stops serving others
        fields["serves_goal_ids"] = serves
    if "kind" in changed:
        refusal = rules.kind_change_refusal(GoalKind(goal.kind), kind,
                                            await _served_by(session, goal))
        if refusal is not None:
            raise refuse(refusal)
    if {"kind", "serves_goal_ids"} & set(fields):
        await _check_links(access.kit.reads, kind, goal.service_user_id, serves)
    for name, value in fields.items():
        setattr(goal, name, value)
    _bump(goal)
    await _commit_change(session, goal, actor=actor, event=GoalEvent.updated,
                         data=goal_event_data(goal, changed_by=actor.sub,
                                              changed_fields=changed))
    return goal


async def decide_goal(session: AsyncSession, access: RecordAccess, goal_id: str,
                      if_match: str | None, decision: Decision, *, accept: bool) -> Goal:
    """The person accepts a proposed goal (it becomes active) or declines it (kept, rejected)."""
    goal = await _goal_for_change(session, access, goal_id, if_match,
                                  "accept" if accept else "decline")
    actor = actor_for(access.principal, goal.service_user_id)
    previous = goal.lifecycle_status
    refusal = rules.decision_refusal(actor, S(previous))
    if refusal is not None:
        raise refuse(refusal)
    _bump(goal)
    goal.status_changed_at = goal.updated_at
    goal.status_reason = decision.reason
    if accept:
        goal.lifecycle_status = S.active.value
        goal.accepted_at = goal.updated_at
        goal.achievement_status = goal.achievement_status or "in-progress"
    else:
        goal.lifecycle_status = S.rejected.value
    await _commit_change(session, goal, actor=actor,
                         event=GoalEvent.accepted if accept else GoalEvent.declined,
                         data=goal_event_data(goal, changed_by=actor.sub,
                                              previous_status=previous))
    return goal


async def change_status(session: AsyncSession, access: RecordAccess, goal_id: str,
                        if_match: str | None, change: StatusChange) -> Goal:
    """Move a goal along its lifecycle: on hold, completed, cancelled, entered in error."""
    goal = await _goal_for_change(session, access, goal_id, if_match, "status")
    actor = actor_for(access.principal, goal.service_user_id)
    previous = goal.lifecycle_status
    refusal = rules.transition_refusal(actor, S(previous), change.status, agreed=agreed(goal))
    if refusal is not None:
        raise refuse(refusal)
    _bump(goal)
    goal.lifecycle_status = change.status.value
    goal.status_changed_at = goal.updated_at
    goal.status_reason = change.reason
    if change.achievement_status is not None:
        goal.achievement_status = change.achievement_status.value
    event = GoalEvent.for_verb(rules.event_verb_for_status(change.status))
    await _commit_change(session, goal, actor=actor, event=event,
                         data=goal_event_data(goal, changed_by=actor.sub,
                                              previous_status=previous))
    return goal


async def add_step(session: AsyncSession, access: RecordAccess, goal_id: str,
                   if_match: str | None, step: StepCreate) -> Goal:
    goal = await _goal_for_change(session, access, goal_id, if_match, "add-step")
    actor = actor_for(access.principal, goal.service_user_id)
    refusal = rules.edit_refusal(actor, S(goal.lifecycle_status), ["steps"], agreed=agreed(goal))
    if refusal is not None:
        raise refuse(refusal)
    if len(goal.steps) >= 50:
        raise Problem(422, "A goal has at most 50 steps.", kind="too-many-steps")
    goal.steps = [*goal.steps, _step_row(step)]
    _bump(goal)
    await _commit_change(session, goal, actor=actor, event=GoalEvent.updated,
                         data=goal_event_data(goal, changed_by=actor.sub,
                                              changed_fields=["steps"]))
    return goal


async def update_step(session: AsyncSession, access: RecordAccess, goal_id: str, step_id: str,
                      if_match: str | None, change: StepUpdate) -> Goal:
    goal = await _goal_for_change(session, access, goal_id, if_match, "update-step")
    actor = actor_for(access.principal, goal.service_user_id)
    refusal = rules.edit_refusal(actor, S(goal.lifecycle_status), ["steps"], agreed=agreed(goal))
    if refusal is not None:
        raise refuse(refusal)
    steps = [dict(step) for step in goal.steps]
    found = next((step for step in steps if step["id"] == step_id), None)
    if found is None:
        raise Problem(404, "The goal has no step with that id.", kind="not-found")
    fields = change.model_dump(mode="json", exclude_unset=True)
    if fields.get("done") is True and not found["done"]:
        found["done_at"] = utcnow().isoformat()
    elif fields.get("done") is False:
        found["done_at"] = None
    found.update(fields)
    goal.steps = steps
    _bump(goal)
    await _commit_change(session, goal, actor=actor, event=GoalEvent.updated,
                         data=goal_event_data(goal, changed_by=actor.sub,
                                              changed_fields=["steps"]))
    return goal


async def add_review(session: AsyncSession, access: RecordAccess, goal_id: str,
                     if_match: str | None, review: ReviewCreate,
                     once: IdempotentRequest | None = None) -> GoalReview:
    """Record a progress review; the goal takes its achievement status from it."""
    goal = await _goal_for_change(session, access, goal_id, if_match, "review")
    actor = actor_for(access.principal, goal.service_user_id)
    if actor.kind is rules.ActorKind.system:
        raise refuse(rules.Refusal(403, "forbidden", "Partner systems do not review goals."))
    refusal = rules.review_refusal(S(goal.lifecycle_status))
    if refusal is not None:
        raise refuse(refusal)
    today = utcnow().date()
    reviewed_on = review.reviewed_on or today
    if reviewed_on > today:
        raise refuse(rules.Refusal(422, "review-in-future",
                                   "A review is recorded once it has happened.", "reviewed_on"))
    _bump(goal)
    goal.achievement_status = review.achievement_status.value
    if goal.last_reviewed_on is None or reviewed_on >= goal.last_reviewed_on:
        goal.last_reviewed_on = reviewed_on
    row = GoalReview(goal_id=goal.id, reviewed_on=reviewed_on,
                     attendees=[a.model_dump(mode="json", exclude_none=True)
                                for a in review.attendees],
                     achievement_status=review.achievement_status.value, rating=review.rating,
                     own_words=review.own_words, recorded_by=actor.sub,
                     recorded_at=goal.updated_at, goal_version=goal.version)
    await keep_answer(once, session, review_answer(row))
    await _commit_change(session, goal, actor=actor, event=GoalEvent.reviewed,
                         data=goal_event_data(goal, changed_by=actor.sub, review_id=row.id),
                         extra=[row])
    return row


# --- lists --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalDocuments:
    """A page of goals (or of a goal's versions) as their stored JSON documents, and how many
    there are in all when that was asked for."""

    documents: list[str]
    next_cursor: str | None
    total: int | None = None

    def json(self) -> str:
        """The page as ``Page[GoalPublic]`` JSON, joined rather than re-serialised."""
        return (f'{{"items":[{",".join(self.documents)}],'
                f'"next_cursor":{json.dumps(self.next_cursor)}}}')

    def goals(self) -> list[GoalPublic]:
        return [GoalPublic.model_validate_json(document) for document in self.documents]


#: The query-plan tests build conditions the way the lists do.
_in = one_of


def goal_filters(*, service_user_id: str | None, team_id: str | None,
                 condition: ColumnElement[bool] | None, statuses: list[LifecycleStatus] | None,
                 kind: GoalKind | None, ids: Sequence[str] | None = None,
                 updated_since: datetime | None = None,
                 updated_before: datetime | None = None) -> list[ColumnElement[bool]]:
    """The WHERE of a list, its count and a FHIR search alike: the caller's reach
    (``condition``), the filters asked for, and entered-in-error left out unless named.
    ``statuses`` or ``ids`` empty (not None) match nothing."""
    where: list[ColumnElement[bool]] = []
    if service_user_id is not None:
        where.append(col(Goal.service_user_id) == service_user_id)
    if team_id is not None:
        where.append(col(Goal.team_id) == team_id)
    if condition is not None:
        where.append(condition)
    if statuses is None:
        where.append(col(Goal.lifecycle_status) != S.entered_in_error.value)
    else:
        where.append(one_of(col(Goal.lifecycle_status), frozenset(s.value for s in statuses))
                     if statuses else false())
    if kind is not None:
        where.append(col(Goal.kind) == kind.value)
    if ids is not None:
        where.append(col(Goal.id).in_(sorted(set(ids))) if ids else false())
    if updated_since is not None:
        where.append(col(Goal.updated_at) >= updated_since)
    if updated_before is not None:
        where.append(col(Goal.updated_at) < updated_before)
    return where


def page_query(*, service_user_id: str | None, team_id: str | None,
               condition: ColumnElement[bool] | None, statuses: list[LifecycleStatus] | None,
               kind: GoalKind | None, after: tuple[datetime, str] | None,
               ids: Sequence[str] | None = None, updated_since: datetime | None = None,
               updated_before: datetime | None = None) -> Select[str, str, str]:
    """Newest first after the cursor position: an index range scan, never a sort, as long as
    the filter and the (filter, created_at, id) indexes agree."""
    return _page(goal_filters(service_user_id=service_user_id, team_id=team_id,
                              condition=condition, statuses=statuses, kind=kind, ids=ids,
                              updated_since=updated_since, updated_before=updated_before),
                 after)


def _page(where: list[ColumnElement[bool]],
          after: tuple[datetime, str] | None) -> Select[str, str, str]:
    query = select(RAW_CREATED_AT, col(Goal.id), DOCUMENT).where(*where)
    if after is not None:
        query = query.where(tuple_(col(Goal.created_at), col(Goal.id))
                            < tuple_(literal(after[0], UTCDateTime()),
                                     literal(after[1], String())))
    return query.order_by(col(Goal.created_at).desc(), col(Goal.id).desc())


async def list_goals(access: RecordAccess, *,
                     service_user_id: str | None, team_id: str | None,
                     statuses: list[LifecycleStatus] | None, kind: GoalKind | None,
                     cursor: str | None, limit: int, ids: Sequence[str] | None = None,
                     updated_since: datetime | None = None,
                     updated_before: datetime | None = None,
                     counted: bool = False) -> GoalDocuments:
    """Goals the caller may reach, newest first, by keyset over (created_at, id); with
    ``counted``, also how many match in all (a COUNT under the same conditions). A
    ``limit`` of 0 reads no page, only the count."""
    condition = list_condition(access, RESOURCE, record_type=RESOURCE,
                               person_column=col(Goal.service_user_id),
                               team_column=col(Goal.team_id),
                               service_user_id=service_user_id, team_id=team_id, what="goals")
    after = decode_time_cursor(cursor) if cursor else None
    where = goal_filters(service_user_id=service_user_id, team_id=team_id, condition=condition,
                         statuses=statuses, kind=kind, ids=ids, updated_since=updated_since,
                         updated_before=updated_before)
    rows: Sequence[Any] = []
    if limit > 0:
        rows = await access.kit.reads.all(_page(where, after).limit(limit + 1))
    next_cursor = (encode_cursor(stored_time(rows[limit - 1][0]), rows[limit - 1][1])
                   if len(rows) > limit else None)
    total = None
    if counted:
        count = select(func.count()).select_from(Goal).where(*where)
        total = int((await access.kit.reads.all(count))[0][0])
    return GoalDocuments([row[2] for row in rows[:limit]], next_cursor, total)


async def holds_person(access: RecordAccess, person: str) -> bool:
    """Whether the caller may read at least one of the person's goals (their Patient here)."""
    return await fhir.holds_records_of(access, person, resource=RESOURCE,
                                       person_column=col(Goal.service_user_id),
                                       team_column=col(Goal.team_id))


async def batch_read(access: RecordAccess, request: BatchRead) -> str:
    """Goals of many people at once, each person's list filtered by the caller's access;
    the answer is ``BatchReadResult`` JSON built from the stored documents."""
    condition = batch_condition(access, RESOURCE, RESOURCE, request.service_user_ids,
                                person_column=col(Goal.service_user_id),
                                team_column=col(Goal.team_id))
    goals: dict[str, list[str]] = {p: [] for p in request.service_user_ids}
    next_cursors: dict[str, str] = {}
    if condition is not None:
        await _batch_documents(access.kit.reads, request, condition, goals, next_cursors)
    return batch_result_json(goals, set(next_cursors), "goals", next_cursors)


async def _batch_documents(reads: Reads, request: BatchRead, condition: ColumnElement[bool],
                           goals: dict[str, list[str]], next_cursors: dict[str, str]) -> None:
    """Each person's newest goals; for one with more, the cursor of their goals list after
    the last one given."""
    statuses = ([s.value for s in request.status] if request.status
                else [s.value for s in S if s is not S.entered_in_error])
    position = func.row_number().over(
        partition_by=col(Goal.service_user_id),
        order_by=(col(Goal.created_at).desc(), col(Goal.id).desc())).label("position")
    # The position in each person's list, and what their list's cursor is made of.
    ranked = (select(col(Goal.service_user_id), DOCUMENT.label("document"), position,
                     RAW_CREATED_AT.label("created_at"))
              .add_columns(col(Goal.id).label("id"))
              .where(condition, col(Goal.lifecycle_status).in_(statuses))
              .subquery())
    rows = await reads.all(select(
        ranked.c.service_user_id, ranked.c.document, ranked.c.position, ranked.c.created_at
    ).add_columns(ranked.c.id).where(ranked.c.position <= request.limit_per_person + 1)
        .order_by(ranked.c.service_user_id, ranked.c.position))
    last: dict[str, str] = {}
    for person, document, rank, created_at, goal_id in rows:
        if rank > request.limit_per_person:
            next_cursors[person] = last[person]
        else:
            goals[person].append(document)
            if rank == request.limit_per_person:
                last[person] = encode_cursor(stored_time(created_at), goal_id)


async def list_versions(session: AsyncSession, access: RecordAccess, goal_id: str, *,
                        cursor: str | None, limit: int) -> Page[GoalVersionPublic]:
    """Every version of a goal, oldest first."""
    goal = await get_goal(session, access, goal_id, action="read-history")
    query = select(GoalVersion).where(col(GoalVersion.goal_id) == goal.id)
    if cursor:
        query = query.where(col(GoalVersion.version) > decode_version_cursor(cursor))
    rows = (await session.exec(query.order_by(col(GoalVersion.version)).limit(limit + 1))).all()
    items = [GoalVersionPublic.model_validate(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].version, goal.id) if len(rows) > limit else None
    return Page[GoalVersionPublic](items=items, next_cursor=next_cursor)


async def list_reviews(session: AsyncSession, access: RecordAccess, goal_id: str, *,
                       cursor: str | None, limit: int) -> Page[ReviewPublic]:
    """A goal's progress reviews, most recent first."""
    goal = await get_goal(session, access, goal_id, action="read-reviews")
    query = select(GoalReview).where(col(GoalReview.goal_id) == goal.id)
    if cursor:
        after_day, after_id = decode_date_cursor(cursor)
        query = query.where(tuple_(col(GoalReview.reviewed_on), col(GoalReview.id))
                            < tuple_(literal(after_day), literal(after_id, String())))
    rows = (await session.exec(
        query.order_by(col(GoalReview.reviewed_on).desc(), col(GoalReview.id).desc())
        .limit(limit + 1))).all()
    items = [ReviewPublic.model_validate(row) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(last.reviewed_on.isoformat(), last.id) if last else None
    return Page[ReviewPublic](items=items, next_cursor=next_cursor)


async def team_figures(session: AsyncSession, access: RecordAccess, team_id: str, *,
                       reviewed_within_days: int) -> TeamFigures:
    """A team's figures, for its managers and admins (and partner systems)."""
    require_scope(access.principal, RESOURCE, Verb.search)
    access.check_aggregates(record_type="GoalFigures", team_id=team_id)
    as_of = utcnow()
    since = as_of.date() - timedelta(days=reviewed_within_days)
    work = case((col(Goal.life_area) == LifeArea.work_and_education.value, 1), else_=0)
    recent = case((col(Goal.last_reviewed_on) >= since, 1), else_=0)
    rows = (await session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types at most four columns
            col(Goal.lifecycle_status), col(Goal.kind), col(Goal.expressed_by), work, recent,
            func.count())
        .where(col(Goal.team_id) == team_id)
        .group_by(col(Goal.lifecycle_status), col(Goal.kind), col(Goal.expressed_by), work,
                  recent)
    )).all()
    figures = rules.team_figures(
        rules.FigureRow(S(status), GoalKind(kind), ExpressedBy(expressed), bool(is_work),
                        bool(is_recent), int(count))
        for status, kind, expressed, is_work, is_recent, count in rows)
    return TeamFigures(
        team_id=team_id, as_of=as_of, reviewed_within_days=reviewed_within_days,
        goals=figures.goals, life_goals=figures.life_goals,
        therapeutic_goals=figures.therapeutic_goals,
        life_share=figures.share(figures.life_goals),
        therapeutic_share=figures.share(figures.therapeutic_goals),
        expressed_by_service_user=figures.expressed_by_service_user,
        expressed_by_service_user_share=figures.share(figures.expressed_by_service_user),
        employment_and_education_goals=figures.employment_and_education_goals,
        employment_and_education_share=figures.share(figures.employment_and_education_goals),
        open_goals=figures.open_goals, reviewed_recently=figures.reviewed_recently,
        reviewed_recently_share=figures.share(figures.reviewed_recently, figures.open_goals),
        by_status=figures.by_status,
    )
