"""Co-signed versions: a content hash per version, signatures bound to one exact version,
and the rule that decides when a version is agreed (crisis plans, risk co-assessments)."""

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from recovery.common.timeutil import as_utc, utcnow

HASH_PREFIX = "sha256:"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _reject_non_finite(value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a signed version holds no NaN or infinite numbers")
    if isinstance(value, Mapping):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_non_finite(item)


def canonical_json(content: Mapping[str, Any]) -> bytes:
    """One byte string per meaning: sorted keys, no spaces, UTF-8, times as aware UTC ISO."""
    _reject_non_finite(content)
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_json_default).encode("utf-8")


def content_hash(content: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of a version's content."""
    return HASH_PREFIX + hashlib.sha256(canonical_json(content)).hexdigest()


@dataclass(frozen=True, slots=True)
class Signature:
    """A signatory's agreement to one version, bound to that version's content hash."""

    signatory: str
    party: str
    version: int
    content_hash: str
    signed_at: datetime
    withdrawn_at: datetime | None = None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def binds(self, version: int, version_hash: str) -> bool:
        """True when this signature still stands for exactly that version's content."""
        return (not self.withdrawn and self.version == version
                and self.content_hash == version_hash)


def sign(*, signatory: str, party: str, version: int, version_hash: str,
         signed_at: datetime | None = None) -> Signature:
    """Bind a signatory, in the part they play, to a version's content hash."""
    if not signatory or not party:
        raise ValueError("a signature names its signatory and their party")
    if not version_hash.startswith(HASH_PREFIX):
        raise ValueError("a signature binds a sha256 content hash")
    return Signature(signatory=signatory, party=party, version=version,
                     content_hash=version_hash, signed_at=signed_at or utcnow())


def withdraw(signature: Signature, *, at: datetime | None = None) -> Signature:
    """The same signature, no longer counting; the record of having signed is kept."""
    if signature.withdrawn:
        return signature
    return replace(signature, withdrawn_at=at or utcnow())


def parties_signed(signatures: Iterable[Signature], *, version: int,
                   version_hash: str) -> frozenset[str]:
    """The parties whose standing signature matches that exact version."""
    return frozenset(s.party for s in signatures if s.binds(version, version_hash))


def missing_parties(signatures: Iterable[Signature], *, version: int, version_hash: str,
                    required: Iterable[str]) -> frozenset[str]:
    """Required parties that have not (or no longer) signed that exact version."""
    return frozenset(required) - parties_signed(signatures, version=version,
                                                version_hash=version_hash)


def is_agreed(signatures: Iterable[Signature], *, version: int, version_hash: str,
              required: Iterable[str]) -> bool:
    """A version is agreed when every required party has a standing signature on its hash."""
    needed = frozenset(required)
    if not needed:
        raise ValueError("agreement needs at least one required party")
    return not missing_parties(signatures, version=version, version_hash=version_hash,
                               required=needed)
