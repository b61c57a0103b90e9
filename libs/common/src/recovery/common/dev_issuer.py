"""The development token issuer: a local key pair and a JWKS file, never used in production.

``python -m recovery.common.dev_issuer --role clinician --sub staff-1 --teams team-a``
prints a signed token and nothing else.
"""

import argparse
import fcntl
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from recovery.common.auth import Role
from recovery.common.settings import DEV_ISSUER, Environment, var_dir

KID = "dev-issuer-1"

#: Scopes a role gets when none are asked for.
DEFAULT_SCOPES = {
    Role.service_user: "patient/*.cruds",
    Role.clinician: "user/*.cruds",
    Role.peer_specialist: "user/*.cruds",
    Role.educator: "user/*.cruds",
    # Managers read across the record and change the workforce: teams, staff, care contacts.
    Role.manager: "user/*.rs user/CareTeam.cruds user/Practitioner.cruds user/Encounter.cruds",
    Role.admin: "user/*.cruds",
    Role.system: "system/*.rs",
}


class DevIssuer:
    """Holds the development signing key under ``var/dev-issuer`` and mints tokens."""

    def __init__(self, directory: Path | None = None, audience: str = "recovery-platform") -> None:
        self.directory = directory or var_dir() / "dev-issuer"
        self.audience = audience
        self._private_key: Any = None

    @property
    def jwks_path(self) -> Path:
        return self.directory / "jwks.json"

    def ensure_keys(self) -> None:
        """Load the key pair, creating it once; safe when several processes start at once."""
        key_path = self.directory / "private.pem"
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if key_path.exists() and self.jwks_path.exists():
                self._private_key = serialization.load_pem_private_key(
                    key_path.read_bytes(), password=None
                )
                return
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            public.update({"kid": KID, "use": "sig", "alg": "RS256"})
            _write_atomically(key_path, pem, mode=0o600)
            _write_atomically(self.jwks_path, json.dumps({"keys": [public]}, indent=2).encode())
            self._private_key = key

    def mint(
        self,
        *,
        role: str,
        sub: str,
        teams: list[str] | None = None,
        patient: str | None = None,
        scope: str | None = None,
        ttl_seconds: int = 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        if self._private_key is None:
            self.ensure_keys()
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "roles": [role],
            "teams": teams or [],
            "scope": scope or DEFAULT_SCOPES.get(Role(role), ""),
        }
        if patient:
            claims["patient"] = patient
        claims.update(extra or {})
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": KID})


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    # A reader (a service reloading the JWKS) never sees a half-written file.
    partial = path.with_suffix(path.suffix + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def main() -> None:
    """Print one development token for the role, subject, teams, patient and scopes asked."""
    if os.environ.get("RECOVERY_ENVIRONMENT", "").lower() == Environment.production:
        raise SystemExit("the development token issuer is not available in production")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="clinician", choices=[r.value for r in Role])
    parser.add_argument("--sub", default="")
    parser.add_argument("--teams", default="", help="comma-separated team ids")
    parser.add_argument("--patient", default="")
    parser.add_argument("--scope", default="")
    parser.add_argument("--ttl", type=int, default=8 * 3600)
    args = parser.parse_args()
    patient = args.patient or None
    is_service_user = args.role == Role.service_user
    sub = args.sub or (patient if is_service_user and patient else "dev-" + args.role)
    if is_service_user and not patient:
        patient = sub
    print(
        DevIssuer(audience=os.environ.get("RECOVERY_JWT_AUDIENCE", "recovery-platform")).mint(
            role=args.role,
            sub=sub,
            teams=[t for t in args.teams.split(",") if t],
            patient=patient,
            scope=args.scope or None,
            ttl_seconds=args.ttl,
        )
    )


if __name__ == "__main__":
    main()
