"""The crisis-plan domain rules: plain functions over plain data, no HTTP and no database.

Each rule answers ``None`` when the action is fine, or a ``Refusal`` saying why not.
"""

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from recovery.common.cosign import Signature, is_agreed

# Re-exported: the rules and their callers speak of rules.Actor and rules.Refusal.
from recovery.common.rules import Actor as Actor
from recovery.common.rules import ActorKind as ActorKind
from recovery.common.rules import Refusal as Refusal
from recovery.crisis_plans.models import CLINICIAN_PARTIES, Party, PlanContent, PlanStatus


def required_parties(clinician_parties: Iterable[Party]) -> list[Party]:
    """The service user always signs, with the clinician parties the plan names."""
    return [Party.service_user, *dict.fromkeys(clinician_parties)]


# --- writing and editing ------------------------------------------------------------------


def create_refusal(actor: Actor, content: PlanContent) -> Refusal | None:
    """Either side starts a plan; copy-holders in it are the person's choice from the start."""
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not write crisis plans.")
    return edit_refusal(actor, PlanContent(), content)


def edit_refusal(actor: Actor, before: PlanContent, after: PlanContent) -> Refusal | None:
    """Both sides edit the plan; only the person chooses who holds a copy."""
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not change crisis plans.")
    if actor.kind is ActorKind.staff and before.copy_holders != after.copy_holders:
        return Refusal(403, "copy-holders-are-chosen-by-the-person",
                       "Only the service user chooses who holds a copy of their plan.",
                       "copy_holders")
    return None


# --- signing and agreement ----------------------------------------------------------------


def signing_party(actor: Actor, requested: Party | None, *,
                  is_clinician: bool) -> Party | Refusal:
    """The party a signatory signs as: the person for themselves, a clinician as a clinician."""
    if actor.kind is ActorKind.system:
        return Refusal(403, "forbidden", "Partner systems do not sign crisis plans.")
    if actor.kind is ActorKind.person:
        if requested not in (None, Party.service_user):
            return Refusal(403, "forbidden", "The service user signs as the service user.",
                           "party")
        return Party.service_user
    if requested is Party.service_user:
        return Refusal(403, "forbidden", "Only the service user signs as the service user.",
                       "party")
    if not is_clinician:
        return Refusal(403, "forbidden", "A crisis plan is signed for the team by a clinician.")
    return requested or Party.care_coordinator


def sign_refusal(*, party: Party, required: Iterable[str], version_hash: str, sent_hash: str,
                 already_signed: bool) -> Refusal | None:
    """A signature binds the exact content the signatory saw, once per party and version."""
    if party.value not in set(required):
        return Refusal(409, "party-not-required",
                       f"This plan is agreed by {', '.join(sorted(required))}; "
                       f"{party.value} is not one of them.", "party")
    if sent_hash != version_hash:
        return Refusal(409, "content-hash-mismatch",
                       "The content you signed is not this version's: read it again and sign "
                       "what it says now.", "content_hash")
    if already_signed:
        return Refusal(409, "already-signed",
                       f"This version is already signed as {party.value}.", "party")
    return None


def agreed(signatures: Iterable[Signature], *, version: int, version_hash: str,
           required: Iterable[str]) -> bool:
    """A version is agreed when the service user and every required clinician signed it."""
    return is_agreed(signatures, version=version, version_hash=version_hash, required=required)


def status_of(*, newest_agreed: bool, active_version: int | None,
              withdrawn: bool) -> PlanStatus:
    if newest_agreed:
        return PlanStatus.agreed
    if withdrawn and active_version is None:
        return PlanStatus.withdrawn
    return PlanStatus.draft


def signatures_then(signatures: Iterable[Signature], until: datetime) -> list[Signature]:
    """A version's signatures as they stood at ``until``: a withdrawal made later had not
    happened yet. (Signatures are made only while their version is the newest.)"""
    return [replace(s, withdrawn_at=None) if s.withdrawn_at and s.withdrawn_at >= until else s
            for s in signatures]


def past_status(signatures: Iterable[Signature], *, version: int, version_hash: str,
                required: Iterable[str]) -> PlanStatus:
    """Where a version a later one replaced stood by its own signatures when it was
    replaced: agreed, withdrawn by the person, or a draft."""
    standing = list(signatures)
    if agreed(standing, version=version, version_hash=version_hash, required=required):
        return PlanStatus.agreed
    if any(s.withdrawn and s.party == Party.service_user.value for s in standing):
        return PlanStatus.withdrawn
    return PlanStatus.draft


def withdraw_refusal(actor: Actor, has_standing_signature: bool) -> Refusal | None:
    """The service user withdraws their own agreement; nobody does it for them."""
    if actor.kind is not ActorKind.person:
        return Refusal(403, "forbidden",
                       "Only the service user can withdraw their agreement to their plan.")
    if not has_standing_signature:
        return Refusal(409, "nothing-to-withdraw",
                       "You have not signed the active plan or its newest version.")
    return None


# --- shared decisions on medication ------------------------------------------------------


def revisit_refusal(*, earlier_on_this_plan: bool,
                    revisited_by: str | None) -> Refusal | None:
    """A review revisits a decision of the same plan that still stands; once revisited, a
    decision is history, and the next review revisits the decision that replaced it."""
    if not earlier_on_this_plan:
        return Refusal(422, "unknown-decision",
                       "revisits must name an earlier shared decision on this plan.",
                       "revisits")
    if revisited_by is not None:
        return Refusal(409, "decision-already-revisited",
                       f"That decision was reviewed already, by decision {revisited_by}; "
                       "revisit that one instead.")
    return None


# --- break-glass --------------------------------------------------------------------------

MIN_REASON_LENGTH = 10


def break_glass_refusal(*, is_clinician: bool, teams: Iterable[str],
                        crisis_teams: Iterable[str], reason: str | None) -> Refusal | None:
    """A crisis-team clinician may read an active plan outside their teams, with a reason."""
    if not is_clinician or not set(teams) & set(crisis_teams):
        return Refusal(403, "not-a-crisis-team-clinician",
                       "Break-glass access is for clinicians of a crisis team.")
    if reason is None or len(reason.strip()) < MIN_REASON_LENGTH:
        return Refusal(422, "break-glass-reason-required",
                       "Say why you need this person's crisis plan now (at least "
                       f"{MIN_REASON_LENGTH} characters); the reason is kept with the record "
                       "of this access.", "reason")
    return None


# --- review and individualisation ---------------------------------------------------------


def days_overdue(review_on: date | None, today: date) -> int | None:
    """Days past the review date, or None when the plan is not overdue."""
    if review_on is None or review_on >= today:
        return None
    return (today - review_on).days


def review_due(review_on: date | None, today: date, announced_for: date | None) -> bool:
    """The review date has come and its coming has not been announced yet."""
    return review_on is not None and review_on <= today and announced_for != review_on


#: Phrases that fit anyone: a plan made only of these says nothing about the person
#: (only 15% of routine plans were individualised, Farrelly 2013).
GENERIC_PHRASES = frozenset({
    "call 999", "phone 999", "go to a&e", "go to a and e", "attend a&e", "contact gp",
    "call gp", "see gp", "contact the gp", "call the crisis team", "contact crisis team",
    "contact the crisis team", "call crisis team", "take medication as prescribed",
    "take my medication", "take medication", "comply with medication", "call samaritans",
    "phone the samaritans", "call the samaritans", "contact care coordinator",
    "contact my care coordinator", "call my care coordinator", "none", "n/a", "na", "-",
    "not known", "unknown", "nil",
})
_PERSONAL_SECTIONS = ("when_well", "early_warning_signs", "triggers", "what_helps",
                      "what_does_not_help", "coping_strategies", "people_and_places_that_help",
                      "reasons_for_living", "signs_crisis_is_over", "after_crisis_wishes",
                      "advance_statement", "preferred_treatment")


def _normal(text: str) -> str:
    return re.sub(r"[\s.!]+", " ", text.lower()).strip()


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)


def not_individualised(content: PlanContent) -> bool:
    """True when no personal section holds anything beyond phrases that fit anyone."""
    data = content.model_dump(mode="json")
    personal = [text for section in _PERSONAL_SECTIONS for text in _texts(data[section])]
    personal += [contact["name"] for contact in data["helpful_contacts"]]
    personal += [item["treatment"] for item in data["declined_treatments"]]
    if data["preferred_setting"]:
        personal.append(data["preferred_setting"])
    return all(_normal(text) in GENERIC_PHRASES for text in personal)


def is_clinician_party(party: Party) -> bool:
    return party in CLINICIAN_PARTIES
