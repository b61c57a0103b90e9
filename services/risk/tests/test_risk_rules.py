"""The risk domain rules on plain data: no scores, who signs what, when a version is agreed."""

from datetime import date

import pytest

from recovery.common import cosign
from recovery.risk import rules
from recovery.risk.models import AreaView, Party, RiskArea, VersionStatus

PERSON = rules.Actor(rules.ActorKind.person, "su-1")
CLINICIAN = rules.Actor(rules.ActorKind.clinician, "clin-1")
PEER = rules.Actor(rules.ActorKind.staff, "peer-1")
PARTNER = rules.Actor(rules.ActorKind.system, "ehr-1")
HASH = "sha256:" + "a" * 64


def view(area: RiskArea = RiskArea.safety_of_self, **fields: object) -> AreaView:
    values: dict[str, object] = {"area": area, "service_user_view": "Mine",
                                 "clinician_view": "Theirs", "views_agree": True}
    values.update(fields)
    return AreaView.model_validate(values)


@pytest.mark.parametrize("name", ["score", "risk_score", "riskScore", "RISK-LEVEL", "level",
                                  "rating", "probability", "stratification", "category",
                                  "risk_category", "qualitativeRisk", "suicide_risk_score",
                                  "overall_risk", "riskBand", "likelihood", "tier"])
def test_names_a_client_would_give_a_score_or_level_are_recognised(name: str) -> None:
    assert rules.is_predictive_name(name)


@pytest.mark.parametrize("name", ["areas", "service_user_view", "clinician_view",
                                  "strengths", "protective_factors", "views_agree",
                                  "difference", "safety_plan", "positive_risk_decisions",
                                  "review_date", "goal_id", "safeguards", "benefits", "harms"])
def test_the_fields_of_a_co_assessment_are_not_mistaken_for_scores(name: str) -> None:
    assert not rules.is_predictive_name(name)


def test_a_score_is_found_wherever_it_is_nested() -> None:
    body = {"areas": [{"area": "substances", "extra": {"riskLevel": "high"}}], "score": 3}
    assert sorted(rules.predictive_fields(body)) == ["areas.0.extra.riskLevel", "score"]
    assert rules.predictive_fields({"areas": [{"area": "substances"}]}) == []
    assert rules.predictive_fields("not an object") == []


def test_the_refusal_cites_nice_ng225_and_says_risk_is_not_a_number() -> None:
    assert "NG225" in rules.NICE_NG225 and "Risk is not a number" in rules.NICE_NG225


def test_only_the_person_and_a_clinician_sign() -> None:
    assert rules.party_of(PERSON) is Party.service_user
    assert rules.party_of(CLINICIAN) is Party.clinician
    for other in (PEER, PARTNER):
        refusal = rules.party_of(other)
        assert isinstance(refusal, rules.Refusal) and refusal.status == 403


def test_an_agreed_version_with_a_difference_is_agreed_with_differences() -> None:
    areas = [view(), view(RiskArea.substances, views_agree=False, difference="We differ")]
    assert rules.differences(areas) == [RiskArea.substances]
    assert rules.agreed_status(areas) is VersionStatus.agreed_with_differences
    assert rules.agreed_status([view()]) is VersionStatus.agreed


@pytest.mark.parametrize(("fields", "kind"), [
    ({"service_user_view": None}, "view-missing"),
    ({"clinician_view": None}, "view-missing"),
    ({"views_agree": None}, "agreement-not-said"),
    ({"views_agree": False}, "difference-not-recorded"),
])
def test_a_version_is_signed_only_with_both_views_and_any_difference_described(
        fields: dict[str, object], kind: str) -> None:
    refusal = rules.readiness_refusal([view(RiskArea.safety_of_self, **fields)])
    assert refusal is not None and refusal.kind == kind and refusal.status == 409


def _sign_refusal(actor: rules.Actor, *, version: int = 2, signed_hash: str = HASH,
                  signatures: list[cosign.Signature] | None = None) -> rules.Refusal | None:
    return rules.sign_refusal(actor, areas=[view()], latest_version=2, version=version,
                              latest_hash=HASH, signed_hash=signed_hash,
                              signatures=signatures or [])


def test_a_signature_binds_the_latest_version_by_its_exact_hash() -> None:
    assert _sign_refusal(PERSON) is None
    superseded = _sign_refusal(PERSON, version=1)
    assert superseded is not None and superseded.kind == "version-superseded"
    mismatch = _sign_refusal(PERSON, signed_hash="sha256:" + "b" * 64)
    assert mismatch is not None and mismatch.kind == "content-hash-mismatch"


def test_signing_the_same_version_twice_is_refused_but_after_withdrawal_allowed() -> None:
    mine = cosign.sign(signatory="su-1", party="service_user", version=2, version_hash=HASH)
    again = _sign_refusal(PERSON, signatures=[mine])
    assert again is not None and again.kind == "already-signed"
    assert _sign_refusal(PERSON, signatures=[cosign.withdraw(mine)]) is None


def test_the_person_does_not_rewrite_the_clinicians_view_but_staff_may_write_theirs() -> None:
    before = view()
    theirs_changed = [(before, view(clinician_view="Changed"))]
    refusal = rules.edit_refusal(PERSON, theirs_changed)
    assert refusal is not None and refusal.kind == "clinicians-own-words"
    assert rules.edit_refusal(PERSON, [(before, view(service_user_view="My words"))]) is None
    assert rules.edit_refusal(CLINICIAN, theirs_changed) is None
    assert rules.edit_refusal(PARTNER, []) is not None


def test_only_the_person_withdraws_and_only_an_agreement_in_force() -> None:
    assert rules.withdraw_refusal(PERSON, 3) is None
    by_staff = rules.withdraw_refusal(CLINICIAN, 3)
    assert by_staff is not None and by_staff.status == 403
    nothing = rules.withdraw_refusal(PERSON, None)
    assert nothing is not None and nothing.status == 409


def test_a_review_is_due_on_its_date_and_after_and_within_a_window_before() -> None:
    today = date(2030, 6, 10)
    assert rules.review_is_due(date(2030, 6, 10), today)
    assert rules.review_is_due(date(2030, 6, 1), today)
    assert not rules.review_is_due(date(2030, 6, 20), today)
    assert rules.review_is_due(date(2030, 6, 20), today, within_days=10)
    assert not rules.review_is_due(None, today)
    assert rules.overdue_days(date(2030, 6, 1), today) == 9
