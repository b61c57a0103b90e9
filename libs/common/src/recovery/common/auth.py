"""Identity and access: bearer JWT verification, SMART v2 scopes and object-level rules."""

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKClient, PyJWKSet

from recovery.common.problems import Problem
from recovery.common.settings import Settings


class Role(StrEnum):
    service_user = "service_user"
    clinician = "clinician"
    peer_specialist = "peer_specialist"
    educator = "educator"
    manager = "manager"
    admin = "admin"
    system = "system"


STAFF_ROLES = frozenset(
    {Role.clinician, Role.peer_specialist, Role.educator, Role.manager, Role.admin}
)
AGGREGATE_ROLES = frozenset({Role.manager, Role.admin})

# SMART v2 permission letters; v1 suffixes map onto them.
_V1_VERBS = {"read": "rs", "write": "cud", "*": "cruds"}


class Verb(StrEnum):
    create = "c"
    read = "r"
    update = "u"
    delete = "d"
    search = "s"


@dataclass(frozen=True)
class Scope:
    """One SMART scope such as ``patient/Goal.rs``."""

    context: str  # patient | user | system
    resource: str  # a FHIR resource type or "*"
    verbs: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> "Scope | None":
        context, _, rest = text.partition("/")
        resource, _, permissions = rest.partition(".")
        if context not in {"patient", "user", "system"} or not resource or not permissions:
            return None
        permissions = permissions.split("?", 1)[0]
        letters = _V1_VERBS.get(permissions, permissions)
        if not set(letters) <= set("cruds"):
            return None
        return cls(context, resource, frozenset(letters))

    def allows(self, resource: str, verb: Verb) -> bool:
        return self.resource in {"*", resource} and verb.value in self.verbs


@dataclass(frozen=True)
class Principal:
    """Who is calling, as their verified token says."""

    sub: str
    roles: frozenset[str] = frozenset()
    patient: str | None = None
    teams: frozenset[str] = frozenset()
    scopes: tuple[Scope, ...] = ()
    token: str = field(default="", repr=False)

    @classmethod
    def from_claims(cls, claims: dict[str, Any], token: str = "") -> "Principal":
        roles = claims.get("roles") or []
        teams = claims.get("teams") or []
        if isinstance(roles, str):
            roles = roles.split()
        if isinstance(teams, str):
            teams = [t for t in teams.split(",") if t]
        scopes = tuple(
            s for s in (Scope.parse(part) for part in str(claims.get("scope", "")).split()) if s
        )
        patient = claims.get("patient")
        sub = str(claims["sub"])
        if not sub.strip():
            raise ValueError("empty subject")
        return cls(
            sub=sub,
            roles=frozenset(str(r) for r in roles),
            patient=str(patient) if patient else None,
            teams=frozenset(str(t) for t in teams),
            scopes=scopes,
            token=token,
        )

    @property
    def is_service_user(self) -> bool:
        return Role.service_user in self.roles

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def is_system(self) -> bool:
        return Role.system in self.roles

    def contexts_for(self, resource: str, verb: Verb) -> set[str]:
        """The scope contexts (patient/user/system) that allow this verb on this type."""
        return {s.context for s in self.scopes if s.allows(resource, verb)}

    def may(self, resource: str, verb: Verb) -> bool:
        return bool(self.contexts_for(resource, verb))

    def own_person(self) -> str | None:
        """The service user this caller acts as or for, if any."""
        if self.patient:
            return self.patient
        return self.sub if self.is_service_user else None


def require_scope(principal: Principal, resource: str, verb: Verb) -> None:
    """Refuse with 403 unless some scope of the caller allows this verb on this type."""
    if not principal.may(resource, verb):
        raise Problem(
            403,
            f"Your token has no scope that allows '{verb.name}' on {resource}.",
            kind="insufficient-scope",
            headers={"WWW-Authenticate": 'Bearer realm="recovery", error="insufficient_scope"'},
        )


def can_reach_record(
    principal: Principal, resource: str, verb: Verb, *, service_user_id: str, team_id: str | None
) -> bool:
    """Object-level rule: own records for a service user, team records for staff."""
    contexts = principal.contexts_for(resource, verb)
    if "system" in contexts and principal.is_system:
        return True
    if "patient" in contexts and principal.patient == service_user_id:
        return True
    if "user" in contexts:
        if principal.is_service_user and principal.own_person() == service_user_id:
            return True
        if principal.is_staff and team_id is not None and team_id in principal.teams:
            return True
    return False


def can_read_aggregates(principal: Principal, team_id: str | None) -> bool:
    """Team figures: managers and admins of that team (or of all, for system callers)."""
    if principal.is_system:
        return True
    if not principal.roles & AGGREGATE_ROLES:
        return False
    return team_id is None or team_id in principal.teams


#: The FHIR type of audit trail entries; wildcards do not reach it for partner systems.
AUDIT_RESOURCE = "AuditEvent"


def can_read_audit_trail(principal: Principal, verb: Verb) -> bool:
    """Admins with a user scope that covers AuditEvent, or system callers whose scopes name
    AuditEvent explicitly (``system/*.rs`` is not enough to read who looked at what)."""
    if Role.admin in principal.roles and "user" in principal.contexts_for(AUDIT_RESOURCE, verb):
        return True
    return principal.is_system and any(
        s.context == "system" and s.resource == AUDIT_RESOURCE and verb.value in s.verbs
        for s in principal.scopes
    )


def unauthorized(detail: str, *, token_sent: bool = True) -> Problem:
    """401 with the RFC 6750 challenge; ``invalid_token`` only when a token was sent."""
    challenge = 'Bearer realm="recovery"'
    if token_sent:
        challenge += ', error="invalid_token"'
    return Problem(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


class TokenVerifier:
    """Verifies bearer JWTs against a JWKS (file or URL) with an algorithm allow-list."""

    def __init__(self, settings: Settings, cache_size: int = 4096) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.algorithms = [a for a in settings.jwt_algorithms if a.lower() != "none"]
        self.leeway = settings.jwt_leeway_seconds
        self._jwks_file = Path(settings.jwks_file) if settings.jwks_file else None
        self._jwks_client = PyJWKClient(settings.jwks_url) if settings.jwks_url else None
        self._keyset: PyJWKSet | None = None
        self._keyset_mtime = 0.0
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._cache_size = cache_size

    def _file_keyset(self) -> PyJWKSet:
        assert self._jwks_file is not None
        try:
            mtime = self._jwks_file.stat().st_mtime
        except FileNotFoundError as exc:
            raise unauthorized("No keys are configured to verify tokens.") from exc
        if self._keyset is None or mtime != self._keyset_mtime:
            self._keyset = PyJWKSet.from_dict(json.loads(self._jwks_file.read_text()))
            self._keyset_mtime = mtime
        return self._keyset

    def _signing_key(self, token: str, header: dict[str, Any]) -> Any:
        if self._jwks_client is not None:
            return self._jwks_client.get_signing_key_from_jwt(token).key
        keyset = self._file_keyset()
        kid = header.get("kid")
        for key in keyset.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise unauthorized("The token was signed by a key we do not know.")

    @property
    def fetches_keys(self) -> bool:
        """True when keys come from a URL, so a verification may block on the network."""
        return self._jwks_client is not None

    def cached(self, token: str) -> Principal | None:
        """The caller of a token verified before and not yet expired, without crypto. The
        token itself is the key: the cached caller holds it anyway (to call other services
        on the caller's behalf), and hashing it first cost more than the rest of the lookup."""
        entry = self._cache.get(token)
        if entry is None or entry[0] <= time.time():
            return None
        return entry[1]

    def verify(self, token: str) -> Principal:
        """The caller this token proves, or a 401 problem."""
        known = self.cached(token)
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise unauthorized("The token's signature algorithm is not allowed.")
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self._signing_key(token, header),
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            principal = Principal.from_claims(claims, token)
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"The token is not valid: {type(exc).__name__}.") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise unauthorized("The token's claims are not usable.") from exc
        # Remembered until it expires; the key is a hash so the token is not kept twice.
        self._cache[token] = (float(claims["exp"]), principal)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal
