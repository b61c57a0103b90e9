"""Lists and batch reads: whose records a caller may see, from the same scopes and claims as
the object-level rule (``can_reach_record``), and the WHERE clause that keeps a query to them."""

import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from recovery.common.audit import Outcome
from recovery.common.auth import Principal, Verb, require_scope
from recovery.common.deps import RecordAccess
from recovery.common.problems import Problem


@dataclass(frozen=True)
class Reach:
    """Whose records a caller may see in a list: everyone, some people, some teams."""

    everyone: bool
    people: frozenset[str]
    teams: frozenset[str]


def reach_of(principal: Principal, resource: str, verb: Verb) -> Reach:
    """The list-level counterpart of ``can_reach_record``, from the same scopes and claims."""
    contexts = principal.contexts_for(resource, verb)
    people: set[str] = set()
    teams: frozenset[str] = frozenset()
    if "patient" in contexts and principal.patient:
        people.add(principal.patient)
    if "user" in contexts:
        own = principal.own_person()
        if principal.is_service_user and own:
            people.add(own)
        if principal.is_staff:
            teams = principal.teams
    return Reach("system" in contexts and principal.is_system, frozenset(people), teams)


def one_of(column: Any, values: frozenset[str]) -> ColumnElement[bool]:
    """``column IN values``; one value as "=" keeps a (column, created_at, id) index usable
    for the ORDER BY."""
    condition: ColumnElement[bool] = (column == next(iter(values)) if len(values) == 1
                                      else column.in_(sorted(values)))
    return condition


def reach_condition(reach: Reach, *, person_column: Any, team_column: Any,
                    service_user_id: str | None, team_id: str | None
                    ) -> ColumnElement[bool] | Literal[False] | None:
    """The extra WHERE for what the caller may see of a list filtered by person or team:
    None when they may see all of it, False when they may see none of it."""
    if reach.everyone or service_user_id in reach.people or team_id in reach.teams:
        return None
    # A filter outside the caller's reach means that part of the reach can match nothing.
    people = reach.people if service_user_id is None else frozenset()
    teams = reach.teams if team_id is None else frozenset()
    parts: list[ColumnElement[bool]] = []
    if people:
        parts.append(one_of(person_column, people))
    if teams:
        parts.append(one_of(team_column, teams))
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else or_(*parts)


def list_condition(access: RecordAccess, resource: str, *, record_type: str,
                   person_column: Any, team_column: Any, service_user_id: str | None,
                   team_id: str | None, what: str) -> ColumnElement[bool] | None:
    """A list filtered by person or team: the extra WHERE that keeps it to the caller's reach
    (None when they reach all of it), the decision audited; 404 when they reach none of it."""
    principal = access.principal
    require_scope(principal, resource, Verb.search)
    condition = reach_condition(reach_of(principal, resource, Verb.search),
                                person_column=person_column, team_column=team_column,
                                service_user_id=service_user_id, team_id=team_id)
    access.audit(record_type=record_type, record_id=None, service_user_id=service_user_id,
                 action="search",
                 outcome=Outcome.denied if condition is False else Outcome.allowed)
    if condition is False:
        raise Problem(404, f"No {what} of that person or team are available to you.",
                      kind="not-found")
    return condition


def batch_condition(access: RecordAccess, resource: str, record_type: str,
                    people: Sequence[str], *, person_column: Any,
                    team_column: Any) -> ColumnElement[bool] | None:
    """A batch read of many people's records (the gateway's DataLoader): the WHERE for what
    the caller may read (all of a person's records, or those of the caller's teams), each
    person's decision audited; None when they may read none of it."""
    principal = access.principal
    require_scope(principal, resource, Verb.read)
    reach = reach_of(principal, resource, Verb.read)
    whole = [p for p in people if reach.everyone or p in reach.people]
    by_team = [p for p in people if p not in whole] if reach.teams else []
    for person in people:
        allowed = person in whole or person in by_team
        access.audit(record_type=record_type, record_id=None, service_user_id=person,
                     action="batch-read", outcome=Outcome.allowed if allowed else Outcome.denied)
    parts: list[ColumnElement[bool]] = []
    if whole:
        parts.append(person_column.in_(whole))
    if by_team:
        parts.append(and_(person_column.in_(by_team), one_of(team_column, reach.teams)))
    return or_(*parts) if parts else None


def batch_result_json(found: Mapping[str, Sequence[str]], truncated: Set[str],
                      key: str, next_cursors: Mapping[str, str] | None = None) -> str:
    """``BatchReadResult`` JSON joined from stored documents: per person, the documents
    under ``key``, whether there were more than the limit, and the cursor their list goes
    on from after the last one (``next_cursor``, when the service gives one)."""
    cursors = next_cursors or {}
    results = ",".join(
        f'{{"service_user_id":{json.dumps(person)},"{key}":[{",".join(documents)}],'
        f'"truncated":{json.dumps(person in truncated)},'
        f'"next_cursor":{json.dumps(cursors.get(person))}}}'
        for person, documents in found.items())
    return f'{{"results":[{results}]}}'


def require_create_access(access: RecordAccess, resource: str, *, record_type: str,
                          record_id: str, service_user_id: str, team_id: str,
                          what: str) -> None:
    """Writing a new record about a person: the scope to create ``resource``, and the person
    or their team within the caller's reach (audited either way); 403 otherwise."""
    require_scope(access.principal, resource, Verb.create)
    if not access.allows(resource, Verb.create, record_type=record_type, record_id=record_id,
                         service_user_id=service_user_id, team_id=team_id, action="create"):
        raise Problem(403, f"You may not write {what} for this person or team.",
                      kind="forbidden")
