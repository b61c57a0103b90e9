"""Co-signed versions: canonical hashing, signatures bound to one version, agreement."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from recovery.common.cosign import (
    canonical_json,
    content_hash,
    is_agreed,
    missing_parties,
    parties_signed,
    sign,
    withdraw,
)

SIGNS = ["sleeping less", "not answering the phone"]
PLAN = {"warning_signs": SIGNS,
        "contacts": [{"name": "Sam", "role": "sister", "how_to_reach": "mobile"}]}
REQUIRED = {"service_user", "clinician"}


def test_the_hash_does_not_depend_on_key_order_or_spacing() -> None:
    reordered = {"contacts": [{"how_to_reach": "mobile", "role": "sister", "name": "Sam"}],
                 "warning_signs": ["sleeping less", "not answering the phone"]}
    assert content_hash(PLAN) == content_hash(reordered)
    assert content_hash(PLAN).startswith("sha256:")
    assert len(content_hash(PLAN)) == len("sha256:") + 64


def test_any_change_of_content_changes_the_hash() -> None:
    changed = {**PLAN, "warning_signs": ["sleeping less"]}
    assert content_hash(PLAN) != content_hash(changed)
    # List order is meaning (a ranked list), so it counts.
    swapped = {**PLAN, "warning_signs": list(reversed(SIGNS))}
    assert content_hash(PLAN) != content_hash(swapped)


def test_canonical_json_is_utf8_and_writes_times_as_utc() -> None:
    moment = datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    data = {"word": "café", "at": moment, "on": date(2026, 3, 2),
            "id": uuid.UUID(int=1)}
    text = canonical_json(data).decode("utf-8")
    assert "café" in text
    assert '"at":"2026-03-01T12:00:00+00:00"' in text
    assert '"on":"2026-03-02"' in text
    assert content_hash(data) == content_hash({**data, "at": moment.astimezone(UTC)})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [float("-inf")]])
def test_non_finite_numbers_have_no_canonical_form(bad: object) -> None:
    with pytest.raises(ValueError):
        content_hash({"value": bad})


def test_unknown_types_have_no_canonical_form() -> None:
    with pytest.raises(TypeError):
        content_hash({"value": object()})


def test_a_version_is_agreed_when_every_required_party_signed_its_hash() -> None:
    digest = content_hash(PLAN)
    signatures = [sign(signatory="su-1", party="service_user", version=2, version_hash=digest)]
    assert not is_agreed(signatures, version=2, version_hash=digest, required=REQUIRED)
    assert missing_parties(signatures, version=2, version_hash=digest,
                           required=REQUIRED) == {"clinician"}
    signatures.append(sign(signatory="dr-1", party="clinician", version=2, version_hash=digest))
    assert is_agreed(signatures, version=2, version_hash=digest, required=REQUIRED)


def test_a_signature_on_another_hash_does_not_count() -> None:
    digest = content_hash(PLAN)
    other = content_hash({**PLAN, "warning_signs": []})
    signatures = [sign(signatory="su-1", party="service_user", version=2, version_hash=digest),
                  sign(signatory="dr-1", party="clinician", version=2, version_hash=other)]
    assert not is_agreed(signatures, version=2, version_hash=digest, required=REQUIRED)
    assert parties_signed(signatures, version=2, version_hash=digest) == {"service_user"}


def test_a_signature_on_another_version_does_not_count_even_with_the_same_content() -> None:
    digest = content_hash(PLAN)
    signatures = [sign(signatory="su-1", party="service_user", version=1, version_hash=digest),
                  sign(signatory="dr-1", party="clinician", version=2, version_hash=digest)]
    assert not is_agreed(signatures, version=2, version_hash=digest, required=REQUIRED)


def test_a_withdrawn_signature_no_longer_counts_but_is_kept() -> None:
    digest = content_hash(PLAN)
    mine = sign(signatory="su-1", party="service_user", version=3, version_hash=digest)
    theirs = sign(signatory="dr-1", party="clinician", version=3, version_hash=digest)
    assert is_agreed([mine, theirs], version=3, version_hash=digest, required=REQUIRED)
    withdrawn = withdraw(mine)
    assert withdrawn.withdrawn and withdrawn.signed_at == mine.signed_at
    assert not is_agreed([withdrawn, theirs], version=3, version_hash=digest,
                         required=REQUIRED)
    assert withdraw(withdrawn) == withdrawn


def test_agreement_needs_at_least_one_required_party() -> None:
    with pytest.raises(ValueError):
        is_agreed([], version=1, version_hash=content_hash(PLAN), required=set())


@pytest.mark.parametrize(("signatory", "party", "digest"), [
    ("", "service_user", content_hash(PLAN)),
    ("su-1", "", content_hash(PLAN)),
    ("su-1", "service_user", "md5:abc"),
])
def test_a_signature_names_its_signatory_party_and_a_sha256_hash(
        signatory: str, party: str, digest: str) -> None:
    with pytest.raises(ValueError):
        sign(signatory=signatory, party=party, version=1, version_hash=digest)
