"""The crisis-plan domain rules (and how a signature is written into a plan's document), without
HTTP or a database."""

from datetime import UTC, date, datetime, timedelta

import pytest

from recovery.common.cosign import content_hash, sign, withdraw
from recovery.crisis_plans import rules
from recovery.crisis_plans.models import Party, PlanContent, PlanStatus, SignaturePublic
from recovery.crisis_plans.service import public_signature, signature_of

PERSON = rules.Actor(rules.ActorKind.person, "su-1")
STAFF = rules.Actor(rules.ActorKind.staff, "staff-1")
SYSTEM = rules.Actor(rules.ActorKind.system, "partner-1")
REQUIRED = [p.value for p in rules.required_parties([Party.care_coordinator])]


def test_the_service_user_always_signs_with_the_named_clinicians() -> None:
    assert rules.required_parties([Party.psychiatrist, Party.psychiatrist]) == [
        Party.service_user, Party.psychiatrist]


def test_partner_systems_neither_write_nor_sign_plans() -> None:
    plan = PlanContent(triggers=["noise"])
    assert rules.create_refusal(SYSTEM, plan) is not None
    assert rules.create_refusal(STAFF, plan) is None and rules.create_refusal(PERSON, plan) is None
    refusal = rules.signing_party(SYSTEM, None, is_clinician=False)
    assert isinstance(refusal, rules.Refusal) and refusal.status == 403


def test_the_person_signs_as_the_service_user_and_only_they_do() -> None:
    assert rules.signing_party(PERSON, None, is_clinician=False) is Party.service_user
    assert isinstance(rules.signing_party(PERSON, Party.psychiatrist, is_clinician=False),
                      rules.Refusal)
    assert isinstance(rules.signing_party(STAFF, Party.service_user, is_clinician=True),
                      rules.Refusal)


def test_a_clinician_signs_as_care_coordinator_unless_they_say_otherwise() -> None:
    assert rules.signing_party(STAFF, None, is_clinician=True) is Party.care_coordinator
    assert rules.signing_party(STAFF, Party.psychiatrist, is_clinician=True) is Party.psychiatrist


def test_staff_who_are_not_clinicians_do_not_sign_for_the_team() -> None:
    refusal = rules.signing_party(STAFF, None, is_clinician=False)
    assert isinstance(refusal, rules.Refusal) and refusal.status == 403


def test_a_signature_must_carry_the_hash_of_the_version_it_agrees() -> None:
    refusal = rules.sign_refusal(party=Party.service_user, required=REQUIRED,
                                 version_hash="sha256:" + "a" * 64,
                                 sent_hash="sha256:" + "b" * 64, already_signed=False)
    assert refusal is not None and refusal.kind == "content-hash-mismatch"


def test_a_party_the_plan_does_not_require_cannot_sign_it() -> None:
    digest = "sha256:" + "a" * 64
    refusal = rules.sign_refusal(party=Party.psychiatrist, required=REQUIRED,
                                 version_hash=digest, sent_hash=digest, already_signed=False)
    assert refusal is not None and refusal.kind == "party-not-required"


def test_a_party_signs_a_version_once() -> None:
    digest = "sha256:" + "a" * 64
    refusal = rules.sign_refusal(party=Party.service_user, required=REQUIRED,
                                 version_hash=digest, sent_hash=digest, already_signed=True)
    assert refusal is not None and refusal.kind == "already-signed"
    assert rules.sign_refusal(party=Party.service_user, required=REQUIRED, version_hash=digest,
                              sent_hash=digest, already_signed=False) is None


def test_a_version_is_agreed_only_when_the_person_and_the_clinician_signed_that_version() -> None:
    digest = content_hash({"triggers": ["noise"]})
    person = sign(signatory="su-1", party="service_user", version=2, version_hash=digest)
    clinician = sign(signatory="staff-1", party="care_coordinator", version=2,
                     version_hash=digest)
    assert not rules.agreed([person], version=2, version_hash=digest, required=REQUIRED)
    assert rules.agreed([person, clinician], version=2, version_hash=digest, required=REQUIRED)
    assert not rules.agreed([withdraw(person), clinician], version=2, version_hash=digest,
                            required=REQUIRED)
    earlier = sign(signatory="staff-1", party="care_coordinator", version=1,
                   version_hash=digest)
    assert not rules.agreed([person, earlier], version=2, version_hash=digest,
                            required=REQUIRED)


def test_a_clinician_does_not_choose_copy_holders_when_starting_a_plan_either() -> None:
    with_gp = PlanContent(triggers=["noise"], copy_holders=[{"kind": "gp"}])
    refusal = rules.create_refusal(STAFF, with_gp)
    assert refusal is not None and (refusal.status, refusal.field) == (403, "copy_holders")
    assert rules.create_refusal(PERSON, with_gp) is None


def test_only_the_person_chooses_copy_holders_but_both_sides_edit_the_rest() -> None:
    before = PlanContent(triggers=["noise"])
    more_triggers = PlanContent(triggers=["noise", "crowds"])
    with_gp = PlanContent(triggers=["noise"], copy_holders=[{"kind": "gp"}])
    assert rules.edit_refusal(STAFF, before, more_triggers) is None
    assert rules.edit_refusal(PERSON, before, with_gp) is None
    refusal = rules.edit_refusal(STAFF, before, with_gp)
    assert refusal is not None and refusal.field == "copy_holders"
    assert rules.edit_refusal(SYSTEM, before, more_triggers) is not None


def test_only_the_person_withdraws_and_only_what_they_signed() -> None:
    assert rules.withdraw_refusal(PERSON, has_standing_signature=True) is None
    refusal = rules.withdraw_refusal(PERSON, has_standing_signature=False)
    assert refusal is not None and refusal.status == 409
    refusal = rules.withdraw_refusal(STAFF, has_standing_signature=True)
    assert refusal is not None and refusal.status == 403


def test_plan_status_follows_agreement_and_withdrawal() -> None:
    assert rules.status_of(newest_agreed=True, active_version=3,
                           withdrawn=False) is PlanStatus.agreed
    assert rules.status_of(newest_agreed=False, active_version=2,
                           withdrawn=False) is PlanStatus.draft
    assert rules.status_of(newest_agreed=False, active_version=None,
                           withdrawn=True) is PlanStatus.withdrawn


@pytest.mark.parametrize(("is_clinician", "teams", "reason", "status"), [
    (True, ["crisis-team"], "Found in distress at the station", None),
    (True, ["crisis-team"], None, 422),
    (True, ["crisis-team"], "   short   ", 422),
    (True, ["team-b"], "Found in distress at the station", 403),
    (False, ["crisis-team"], "Found in distress at the station", 403),
])
def test_break_glass_needs_a_crisis_team_clinician_and_a_reason(
        is_clinician: bool, teams: list[str], reason: str | None, status: int | None) -> None:
    refusal = rules.break_glass_refusal(is_clinician=is_clinician, teams=teams,
                                        crisis_teams={"crisis-team"}, reason=reason)
    assert (refusal.status if refusal else None) == status


def test_a_review_is_overdue_the_day_after_its_date() -> None:
    assert rules.days_overdue(date(2030, 1, 10), date(2030, 1, 10)) is None
    assert rules.days_overdue(date(2030, 1, 10), date(2030, 1, 13)) == 3
    assert rules.days_overdue(None, date(2030, 1, 13)) is None


def test_a_review_falling_due_is_announced_once_per_review_date() -> None:
    today = date(2030, 1, 10)
    assert rules.review_due(date(2030, 1, 10), today, None)
    assert not rules.review_due(date(2030, 1, 10), today, date(2030, 1, 10))
    assert rules.review_due(date(2030, 1, 9), today, date(2029, 6, 1))
    assert not rules.review_due(date(2030, 1, 11), today, None)


def test_a_plan_of_phrases_that_fit_anyone_is_not_individualised() -> None:
    generic = PlanContent(what_helps=["Take medication as prescribed."],
                          coping_strategies=["Call the crisis team"],
                          early_warning_signs=["N/A"],
                          professional_contacts=[{"name": "GP", "role": "GP",
                                                  "how_to_reach": "surgery"}])
    assert rules.not_individualised(generic)
    assert rules.not_individualised(PlanContent())


def test_one_thing_about_the_person_makes_a_plan_individual() -> None:
    assert not rules.not_individualised(PlanContent(
        what_helps=["Take medication as prescribed", "My sister sitting with me"]))
    assert not rules.not_individualised(PlanContent(
        helpful_contacts=[{"name": "Ana", "role": "sister", "how_to_reach": "mobile"}]))
    assert not rules.not_individualised(PlanContent(preferred_setting="Home treatment"))


def test_a_review_revisits_a_standing_decision_of_the_same_plan() -> None:
    assert rules.revisit_refusal(earlier_on_this_plan=True, revisited_by=None) is None
    unknown = rules.revisit_refusal(earlier_on_this_plan=False, revisited_by=None)
    assert unknown is not None and (unknown.status, unknown.kind) == (422, "unknown-decision")
    history = rules.revisit_refusal(earlier_on_this_plan=True, revisited_by="d-2")
    assert history is not None and history.status == 409 and "d-2" in history.detail


@pytest.mark.parametrize("signed_at", [datetime(2026, 3, 1, 9, 30, 5, 120, tzinfo=UTC),
                                       datetime(2026, 3, 1, 9, 30, tzinfo=UTC)])
@pytest.mark.parametrize("withdrawn", [False, True])
def test_a_signature_is_written_into_the_document_as_its_public_model_and_read_back(
        signed_at: datetime, withdrawn: bool) -> None:
    signature = sign(signatory="staff-1", party="care_coordinator", version=2,
                     version_hash=content_hash({"triggers": ["noise"]}), signed_at=signed_at)
    if withdrawn:
        signature = withdraw(signature, at=signed_at + timedelta(seconds=1))
    public = public_signature(signature)
    assert public == SignaturePublic.model_validate(signature).model_dump(mode="json")
    assert signature_of(public) == signature
