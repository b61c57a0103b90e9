"""Identity and access: bearer JWT verification, SMART v2 scopes and object-level rules."""

import hashlib
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
        return cls(
            sub=str(claims["sub"]),
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


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        detail,
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="recovery", error="invalid_token"'},
    )


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
        # Verified tokens are remembered until they expire: a hash of the token is the key,
        # so the cache never holds a token itself.
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
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

    def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        now = time.time()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(digest)
            return Principal.from_claims(cached[1], token)
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
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"The token is not valid: {type(exc).__name__}.") from exc
        self._cache[digest] = (float(claims["exp"]), claims)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return Principal.from_claims(claims, token)
