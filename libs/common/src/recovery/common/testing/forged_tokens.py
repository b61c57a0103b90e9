"""Forged, broken and stolen-looking bearer tokens, one recipe each, for the token matrices of
every service and of the kit: each must be refused with 401 wherever it is sent."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from recovery.common.dev_issuer import KID, DevIssuer
from recovery.common.settings import DEV_ISSUER

#: Everything the bearer of these claims could otherwise do, so only the forgery is wrong.
POWERFUL_ROLES = ("admin", "clinician")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims_of(*, roles: list[str] | tuple[str, ...] = POWERFUL_ROLES,
              teams: list[str] | tuple[str, ...] = ("team-a",),
              **overrides: Any) -> dict[str, Any]:
    """Claims of a member of staff of ``teams``; an override of None drops that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "aud": "recovery-platform", "sub": "staff-1",
                              "iat": now, "exp": now + 600, "roles": list(roles),
                              "teams": list(teams), "scope": "user/*.cruds"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def signed(issuer: DevIssuer, claims: dict[str, Any], kid: str = KID) -> str:
    """Signed with the development issuer's genuine key."""
    issuer.ensure_keys()
    return jwt.encode(claims, issuer._private_key, algorithm="RS256", headers={"kid": kid})


def alg_none(claims: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def signed_by_another_key(claims: dict[str, Any]) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": KID})


def hmac_with_the_public_key(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    """Algorithm confusion: HS256 keyed with the issuer's public key, which anyone has."""
    issuer.ensure_keys()
    public_pem = issuer._private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
                     + "." + b64(json.dumps(claims).encode()))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def tampered(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    """A genuine token of a team elsewhere whose payload was swapped for ``claims``, which
    would reach the records if the signature were not checked."""
    header, _, signature = signed(issuer, {**claims, "teams": ["team-elsewhere"]}).split(".")
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def forged_tokens(**base: Any) -> dict[str, Callable[[DevIssuer], str]]:
    """Every bad bearer token by name; ``base`` are the claims of ``claims_of``."""

    def claims(**overrides: Any) -> dict[str, Any]:
        return claims_of(**{**base, **overrides})

    an_hour_ago, in_an_hour = int(time.time()) - 3600, int(time.time()) + 3600
    return {
        "not a JWT": lambda issuer: "not-a.jwt",
        "expired": lambda issuer: signed(issuer, claims(exp=an_hour_ago,
                                                        iat=an_hour_ago - 3600)),
        "wrong audience": lambda issuer: signed(issuer, claims(aud="another-api")),
        "wrong issuer": lambda issuer: signed(issuer, claims(iss="https://idp.example")),
        "alg none": lambda issuer: alg_none(claims()),
        "signed by another key": lambda issuer: signed_by_another_key(claims()),
        "HS256 keyed with the public key": lambda issuer: hmac_with_the_public_key(
            issuer, claims()),
        "unknown key id": lambda issuer: signed(issuer, claims(), kid="stranger-1"),
        "payload tampered after signing": lambda issuer: tampered(issuer, claims()),
        "missing exp": lambda issuer: signed(issuer, claims(exp=None)),
        "exp that is not a time": lambda issuer: signed(issuer, claims(exp="tomorrow")),
        "not valid yet": lambda issuer: signed(issuer, claims(nbf=in_an_hour)),
        "missing sub": lambda issuer: signed(issuer, claims(sub=None)),
        "empty sub": lambda issuer: signed(issuer, claims(sub="  ")),
        "missing iss": lambda issuer: signed(issuer, claims(iss=None)),
        "missing aud": lambda issuer: signed(issuer, claims(aud=None)),
    }


def bad_credentials(**base: Any) -> dict[str, Callable[[DevIssuer], str | None]]:
    """Every bad Authorization header value by name (None: no header at all)."""
    credentials: dict[str, Callable[[DevIssuer], str | None]] = {
        "no token": lambda issuer: None,
        "basic credentials": lambda issuer: "Basic " + b64(b"staff-1:secret"),
    }
    for name, forge in forged_tokens(**base).items():
        credentials[name] = lambda issuer, forge=forge: "Bearer " + forge(issuer)  # type: ignore[misc]
    return credentials
