"""The goals domain rules: plain functions over plain data, no HTTP and no database.

Each rule answers ``None`` when the action is fine, or a ``Refusal`` saying why not.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Re-exported: the rules and their callers speak of rules.Actor and rules.Refusal.
from recovery.common.rules import Actor as Actor
from recovery.common.rules import ActorKind as ActorKind
from recovery.common.rules import Refusal as Refusal
from recovery.goals.models import AchievementStatus, ExpressedBy, GoalKind, LifecycleStatus

S = LifecycleStatus


@dataclass(frozen=True)
class LinkedGoal:
    """What the rules need to know about a goal another goal says it serves."""

    id: str
    service_user_id: str
    kind: GoalKind
    lifecycle_status: LifecycleStatus


@dataclass(frozen=True)
class InitialState:
    lifecycle_status: LifecycleStatus
    expressed_by: ExpressedBy
    achievement_status: AchievementStatus | None
    agreed: bool


#: Statuses in which the person has agreed the goal and work on it can go on.
OPEN = frozenset({S.planned, S.accepted, S.active, S.on_hold})
#: Statuses in which nothing about the goal may change any more except marking an error.
CLOSED = frozenset({S.rejected, S.entered_in_error})
#: Statuses left out of team figures: mistakes, declined proposals and withdrawn goals.
NOT_COUNTED = frozenset({S.entered_in_error, S.rejected, S.cancelled})
#: The words that are the person's own; staff may shape them only while merely proposing.
PERSONS_WORDS = frozenset({"description", "why_it_matters"})

TRANSITIONS: Mapping[LifecycleStatus, frozenset[LifecycleStatus]] = {
    # Out of "proposed" only by the person's accept or decline, or the proposal withdrawn.
    S.proposed: frozenset({S.cancelled, S.entered_in_error}),
    S.planned: frozenset({S.active, S.on_hold, S.cancelled, S.entered_in_error}),
    S.accepted: frozenset({S.active, S.on_hold, S.cancelled, S.entered_in_error}),
    S.active: frozenset({S.on_hold, S.completed, S.cancelled, S.entered_in_error}),
    S.on_hold: frozenset({S.active, S.completed, S.cancelled, S.entered_in_error}),
    S.completed: frozenset({S.active, S.entered_in_error}),
    S.cancelled: frozenset({S.active, S.entered_in_error}),
    S.rejected: frozenset({S.entered_in_error}),
    S.entered_in_error: frozenset(),
}


def initial_state(actor: Actor) -> InitialState | Refusal:
    """A goal the person writes is theirs and active; one staff write is only proposed."""
    if actor.kind is ActorKind.person:
        return InitialState(S.active, ExpressedBy.service_user, AchievementStatus.in_progress,
                            agreed=True)
    if actor.kind is ActorKind.staff:
        return InitialState(S.proposed, ExpressedBy.staff, None, agreed=False)
    return Refusal(403, "forbidden", "Goals are written by the person or proposed by staff.")


def proposal_refusal(actor: Actor) -> Refusal | None:
    """A goal an EHR sends is a practitioner's proposal. The person's own goal is theirs from
    the first word, written by them (active): never recorded as someone else's proposal."""
    if actor.kind is ActorKind.staff:
        return None
    if actor.kind is ActorKind.person:
        return Refusal(403, "proposals-come-from-staff",
                       "A goal sent as a FHIR Goal is a practitioner's proposal; the person "
                       "writes their own goals through the goals API (POST /v1/goals).")
    return Refusal(403, "forbidden", "Goals are written by the person or proposed by staff.")


#: The fields an update never changes: a goal stays with its person and team, and its status
#: moves only along its lifecycle (accept, decline, status changes, reviews).
UNCHANGEABLE = ("service_user_id", "team_id", "lifecycle_status", "achievement_status")


def unchangeable_refusal(stated: Mapping[str, str | None],
                         current: Mapping[str, str | None]) -> Refusal | None:
    """A whole goal sent to replace it (a FHIR update) names its person, team and statuses;
    saying they are other than they are would be a move or a status change in disguise."""
    for name in UNCHANGEABLE:
        if name in stated and stated[name] != current.get(name):
            return Refusal(422, "not-changed-by-update",
                           f"An update does not change {name}; send it as the goal holds it.",
                           name)
    return None


def therapeutic_link_refusal(kind: GoalKind, service_user_id: str, serves_goal_ids: list[str],
                             linked: Mapping[str, LinkedGoal]) -> Refusal | None:
    """A therapeutic goal is a means to an end: it must serve life goals of the same person."""
    if kind is GoalKind.life:
        if serves_goal_ids:
            return Refusal(422, "life-goal-serves-nothing",
                           "Only a therapeutic goal names the life goals it serves.",
                           "serves_goal_ids")
        return None
    if not serves_goal_ids:
        return Refusal(422, "therapeutic-goal-needs-life-goal",
                       "A therapeutic goal must name at least one life goal it serves.",
                       "serves_goal_ids")
    for goal_id in serves_goal_ids:
        goal = linked.get(goal_id)
        if goal is None or goal.service_user_id != service_user_id:
            return Refusal(422, "served-goal-not-found",
                           f"Goal {goal_id} is not a goal of this person.", "serves_goal_ids")
        if goal.kind is not GoalKind.life:
            return Refusal(422, "served-goal-not-life-goal",
                           f"Goal {goal_id} is not a life goal; a therapeutic goal serves "
                           "life goals.", "serves_goal_ids")
        if goal.lifecycle_status in CLOSED | {S.cancelled}:
            return Refusal(422, "served-goal-closed",
                           f"Goal {goal_id} is {goal.lifecycle_status.value}; choose a life "
                           "goal the person holds.", "serves_goal_ids")
    return None


def kind_change_refusal(current: GoalKind, new: GoalKind,
                        served_by: Iterable[str]) -> Refusal | None:
    """A life goal that therapeutic goals serve stays a life goal: they are its means."""
    serving = sorted(served_by)
    if current is GoalKind.life and new is GoalKind.therapeutic and serving:
        return Refusal(409, "life-goal-is-served",
                       f"Therapeutic goals ({', '.join(serving)}) serve this life goal; "
                       "link them to another life goal first.", "kind")
    return None


def decision_refusal(actor: Actor, status: LifecycleStatus) -> Refusal | None:
    """Only the person accepts or declines a goal, and only while it is proposed."""
    if actor.kind is not ActorKind.person:
        return Refusal(403, "only-the-person-decides",
                       "Only the person whose goal this is can accept or decline it.")
    if status is not S.proposed:
        return Refusal(409, "not-proposed",
                       f"The goal is {status.value}; only a proposed goal is accepted or "
                       "declined.")
    return None


def transition_refusal(actor: Actor, current: LifecycleStatus, target: LifecycleStatus, *,
                       agreed: bool) -> Refusal | None:
    """Status changes follow FHIR's lifecycle; nothing becomes active without the person."""
    if target is current:
        return Refusal(409, "no-change", f"The goal is already {current.value}.")
    if target not in TRANSITIONS[current]:
        hint = " Use accept or decline." if current is S.proposed else ""
        return Refusal(409, "transition-not-allowed",
                       f"A goal cannot go from {current.value} to {target.value}.{hint}")
    if current is S.proposed and target is S.cancelled and actor.kind is ActorKind.person:
        return Refusal(409, "transition-not-allowed",
                       "A proposed goal is declined, not cancelled, by the person.")
    if target in OPEN | {S.completed} and not agreed and actor.kind is not ActorKind.person:
        return Refusal(403, "only-the-person-decides",
                       "The person has not agreed to this goal; only they can take it up.")
    return None


def event_verb_for_status(target: LifecycleStatus) -> str:
    return "completed" if target is S.completed else "status-changed"


def edit_refusal(actor: Actor, status: LifecycleStatus, changed: Iterable[str], *,
                 agreed: bool) -> Refusal | None:
    """Goals stay editable until closed; once agreed, the person's words are theirs alone."""
    if status in CLOSED:
        return Refusal(409, "goal-closed",
                       f"The goal is {status.value}; it can no longer be changed.")
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not change goals.")
    words = PERSONS_WORDS.intersection(changed)
    if words and agreed and actor.kind is not ActorKind.person:
        return Refusal(403, "persons-own-words",
                       "These are the person's own words; only they can change them.",
                       sorted(words)[0])
    return None


def review_refusal(status: LifecycleStatus) -> Refusal | None:
    """Progress is reviewed on goals the person has taken up (open or completed)."""
    if status in OPEN or status is S.completed:
        return None
    return Refusal(409, "not-under-way",
                   f"The goal is {status.value}; progress is reviewed on goals under way.")


@dataclass(frozen=True)
class FigureRow:
    """A count of a team's goals sharing these attributes (one row of a GROUP BY)."""

    status: LifecycleStatus
    kind: GoalKind
    expressed_by: ExpressedBy
    work_or_education: bool
    reviewed_recently: bool
    count: int


@dataclass(frozen=True)
class Figures:
    goals: int
    life_goals: int
    therapeutic_goals: int
    expressed_by_service_user: int
    employment_and_education_goals: int
    open_goals: int
    reviewed_recently: int
    by_status: dict[str, int]

    def share(self, part: int, whole: int | None = None) -> float | None:
        total = self.goals if whole is None else whole
        return round(part / total, 4) if total else None


def team_figures(rows: Iterable[FigureRow]) -> Figures:
    """Shares of life versus therapeutic goals, the person's own words, and recent reviews."""
    goals = life = therapeutic = own_words = work = open_goals = reviewed = 0
    by_status: dict[str, int] = {status.value: 0 for status in S}
    for row in rows:
        by_status[row.status.value] += row.count
        if row.status in NOT_COUNTED:
            continue
        goals += row.count
        if row.kind is GoalKind.life:
            life += row.count
        else:
            therapeutic += row.count
        if row.expressed_by is ExpressedBy.service_user:
            own_words += row.count
        if row.work_or_education:
            work += row.count
        if row.status in OPEN:
            open_goals += row.count
            if row.reviewed_recently:
                reviewed += row.count
    return Figures(goals, life, therapeutic, own_words, work, open_goals, reviewed, by_status)
