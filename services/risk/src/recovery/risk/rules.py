"""The risk domain rules: plain functions over plain data, no HTTP and no database.

Each rule answers ``None`` when the action is fine, or a ``Refusal`` saying why not.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from recovery.common import cosign

# Re-exported: the rules and their callers speak of rules.Actor and rules.Refusal.
from recovery.common.rules import Actor as Actor
from recovery.common.rules import ActorKind as ActorKind
from recovery.common.rules import Refusal as Refusal
from recovery.risk.models import AreaView, Party, RiskArea, VersionStatus

#: What the kit's closed and entered-in-error refusals call a record here.
RECORD_NAME = "co-assessment"

#: Both sides sign the same version for a co-assessment to be agreed.
REQUIRED_PARTIES = frozenset({Party.service_user.value, Party.clinician.value})

NICE_NG225 = ("Risk is not a number: this service neither computes nor accepts a risk score, "
              "level, rating, probability or stratification. NICE guideline NG225 (2022) "
              "advises against using risk assessment tools and scales to predict risk or to "
              "decide who is offered care. Record each side's view of each area in words "
              "instead (service_user_view, clinician_view, strengths, protective_factors).")

# Names a client could give a predictive score or a low/medium/high level, compared with
# case, spaces, dashes and underscores removed.
_PREDICTIVE_NAMES = frozenset({
    "score", "riskscore", "totalscore", "level", "risklevel", "rating", "riskrating",
    "probability", "riskprobability", "likelihood", "stratification", "riskstratification",
    "stratum", "category", "riskcategory", "band", "riskband", "tier", "risktier",
    "grade", "riskgrade", "rag", "ragrating", "ragstatus", "qualitativerisk", "prediction",
    "predictedrisk", "riskprediction", "severity", "riskseverity", "priority", "riskpriority",
    "overallrisk", "risk",
})
_PREDICTIVE_SUFFIXES = ("score", "level", "rating", "probability", "stratification",
                        "category", "band", "tier")
_NORMALISE = re.compile(r"[^a-z0-9]")


def is_predictive_name(name: str) -> bool:
    """True for a field or parameter name that carries a score, level or stratification."""
    key = _NORMALISE.sub("", name.lower())
    return key in _PREDICTIVE_NAMES or key.endswith(_PREDICTIVE_SUFFIXES)


def predictive_fields(value: Any, path: str = "") -> list[str]:
    """Where in a JSON body a predictive score or level is given (dotted paths)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if is_predictive_name(str(key)):
                found.append(where)
            found.extend(predictive_fields(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(predictive_fields(item, f"{path}.{index}" if path else str(index)))
    return found


def party_of(actor: Actor) -> Party | Refusal:
    """The party an actor signs as: the person, or a clinician of the team."""
    if actor.kind is ActorKind.person:
        return Party.service_user
    if actor.kind is ActorKind.clinician:
        return Party.clinician
    return Refusal(403, "not-a-signing-party",
                   "A co-assessment is signed by the service user and a clinician.")


def differences(areas: Sequence[AreaView]) -> list[RiskArea]:
    """Areas where the two views differ: kept visible on the record and in its status."""
    return [area.area for area in areas if area.views_agree is False]


def agreed_status(areas: Sequence[AreaView]) -> VersionStatus:
    """What an agreed version is called: agreed, or agreed with differences recorded."""
    return (VersionStatus.agreed_with_differences if differences(areas)
            else VersionStatus.agreed)


def signatures_then(signatures: Iterable[cosign.Signature],
                    until: datetime) -> list[cosign.Signature]:
    """A version's signatures as they stood at ``until`` (when the next version was written):
    a withdrawal made later had not happened yet."""
    return [replace(s, withdrawn_at=None) if s.withdrawn_at and s.withdrawn_at >= until else s
            for s in signatures]


def past_status(signatures: Iterable[cosign.Signature], *, version: int, version_hash: str,
                areas: Sequence[AreaView]) -> VersionStatus:
    """Where a version a later one replaced stood by its own signatures when it was
    replaced: agreed by both (with or without differences), or a draft."""
    if cosign.is_agreed(signatures, version=version, version_hash=version_hash,
                        required=REQUIRED_PARTIES):
        return agreed_status(areas)
    return VersionStatus.draft


def readiness_refusal(areas: Sequence[AreaView]) -> Refusal | None:
    """A version is signed only when both views are written in every area and whether they
    agree is said; a difference is described, not just flagged."""
    for index, area in enumerate(areas):
        where = f"areas.{index}"
        if area.service_user_view is None:
            return Refusal(409, "view-missing",
                           f"Area {area.area.value} has no view of the service user yet.",
                           f"{where}.service_user_view")
        if area.clinician_view is None:
            return Refusal(409, "view-missing",
                           f"Area {area.area.value} has no view of the clinician yet.",
                           f"{where}.clinician_view")
        if area.views_agree is None:
            return Refusal(409, "agreement-not-said",
                           f"Say whether the views of area {area.area.value} agree.",
                           f"{where}.views_agree")
        if area.views_agree is False and area.difference is None:
            return Refusal(409, "difference-not-recorded",
                           f"The views of area {area.area.value} differ; record how.",
                           f"{where}.difference")
    return None


def sign_refusal(actor: Actor, *, areas: Sequence[AreaView], latest_version: int,
                 version: int, latest_hash: str, signed_hash: str,
                 signatures: Iterable[cosign.Signature]) -> Refusal | None:
    """Who may sign what: a party, the latest version, by its exact hash, once."""
    party = party_of(actor)
    if isinstance(party, Refusal):
        return party
    if version != latest_version:
        return Refusal(409, "version-superseded",
                       f"Version {version} has been superseded by version {latest_version}; "
                       "read the latest and sign that.")
    if signed_hash != latest_hash:
        return Refusal(409, "content-hash-mismatch",
                       "The content hash is not that of this version; what you read is not "
                       "what would be signed. Read it again.", "content_hash")
    if any(s.signatory == actor.sub and s.binds(version, latest_hash) for s in signatures):
        return Refusal(409, "already-signed", "You have already signed this version.")
    return readiness_refusal(areas)


def edit_refusal(actor: Actor, changed_areas: Iterable[tuple[AreaView | None, AreaView | None]]
                 ) -> Refusal | None:
    """Each side's words are their own: the person does not rewrite the clinician's view."""
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not change risk co-assessments.")
    if actor.kind is not ActorKind.person:
        return None
    for before, after in changed_areas:
        was = before.clinician_view if before else None
        now = after.clinician_view if after else None
        if after is not None and was != now:
            return Refusal(403, "clinicians-own-words",
                           "This is the clinician's view; only staff change it.",
                           "clinician_view")
    return None


def create_refusal(actor: Actor) -> Refusal | None:
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not write risk co-assessments.")
    return None


def withdraw_refusal(actor: Actor, active_version: int | None) -> Refusal | None:
    """Only the service user withdraws their agreement, and only from one in force."""
    if actor.kind is not ActorKind.person:
        return Refusal(403, "only-the-person-withdraws",
                       "Only the service user can withdraw their agreement.")
    if active_version is None:
        return Refusal(409, "no-agreement-in-force",
                       "There is no agreed version in force to withdraw from.")
    return None


def decision_refusal(actor: Actor) -> Refusal | None:
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not record decisions.")
    return None


def overdue_days(review_date: date, today: date) -> int:
    """Days past the review date (0 on the day, negative before)."""
    return (today - review_date).days


def review_is_due(review_date: date | None, today: date, *, within_days: int = 0) -> bool:
    return review_date is not None and overdue_days(review_date, today) >= -within_days
