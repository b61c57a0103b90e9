"""Service configuration, read only from the environment (prefix ``RECOVERY_``)."""

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import structlog
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

#: Contract ports for local runs; each is overridable with ``RECOVERY_PORT``.
LOCAL_PORTS = {
    "gateway": 8000,
    "goals": 8001,
    "crisis-plans": 8002,
    "risk": 8003,
    "training": 8004,
    "workforce": 8005,
}

DEV_ISSUER = "https://dev-issuer.recovery.local"
#: Parts of the platform that own no database: the gateway only calls the services.
WITHOUT_DATABASE = frozenset({"gateway"})
PREFIX = "RECOVERY_"
#: The variables other parts read besides ``Settings``: the gateway's ``GatewaySettings``,
#: the workforce service's ``WorkforceOptions`` and the crisis-plans service's own. The kit
#: cannot import those parts, and one environment (a shell, honcho's ``.env``) often serves
#: every process, so each process knows them all; ``tests/test_configuration.py`` keeps this
#: list equal to what those parts read.
OTHER_PARTS_VARIABLES = frozenset({
    "RECOVERY_GOALS_URL", "RECOVERY_CRISIS_PLANS_URL", "RECOVERY_RISK_URL",
    "RECOVERY_TRAINING_URL", "RECOVERY_WORKFORCE_URL", "RECOVERY_UPSTREAM_TIMEOUT_SECONDS",
    "RECOVERY_UPSTREAM_MAX_CONNECTIONS", "RECOVERY_MAX_DEPTH", "RECOVERY_MAX_TOKENS",
    "RECOVERY_MAX_ALIASES", "RECOVERY_GRAPHIQL", "RECOVERY_INTROSPECTION",
    "RECOVERY_FOUNDATION_COURSE_ID",
    "RECOVERY_COST_LIMIT", "RECOVERY_COST_BUDGET", "RECOVERY_COST_BUDGET_PER_SECOND",
    "RECOVERY_TRUSTED_DOCUMENTS_PATH",
    "RECOVERY_TRUSTED_DOCUMENTS_ONLY", "RECOVERY_PUBLIC_URL", "RECOVERY_FORWARDED_HEADERS_TRUSTED",
    "RECOVERY_FHIR_SUBSCRIPTION_ENDPOINTS", "RECOVERY_FHIR_SUBSCRIPTION_RETRY_SECONDS",
    "RECOVERY_WORKFORCE_PEER_SHARE_TARGET", "RECOVERY_WORKFORCE_BILLING_HCPCS",
    "RECOVERY_WORKFORCE_BILLING_GROUP_MODIFIER", "RECOVERY_WORKFORCE_BILLING_UNIT_MINUTES",
    "RECOVERY_WORKFORCE_BILLING_ROUNDING", "RECOVERY_WORKFORCE_BILLING_DAILY_CAP_UNITS",
    "RECOVERY_WORKFORCE_SUPERVISION_WINDOW_DAYS", "RECOVERY_WORKFORCE_CLIMATE_WINDOW_DAYS",
    "RECOVERY_CRISIS_TEAMS", "RECOVERY_CRISIS_REVIEW_SWEEP_SECONDS",
})


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


def var_dir() -> Path:
    """Where local state (SQLite files, NATS storage, development keys) lives."""
    return Path.cwd() / "var"


def with_password(database_url: str, password_file: Path) -> str:
    """The URL with the password read from the file (quoted as a URL needs it)."""
    try:
        password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise ValueError(f"cannot read the database password file {password_file}: "
                         f"{error.strerror}") from None
    if not password:
        raise ValueError(f"the database password file {password_file} is empty")
    return make_url(database_url).set(password=password).render_as_string(hide_password=False)


def require_postgresql(database_url: str) -> None:
    """Refuses anything but a PostgreSQL URL, naming the variable and never the value (it may
    hold a password)."""
    example = "postgresql+asyncpg://user@host:5432/db"
    if not database_url:
        raise ValueError(f"production needs RECOVERY_DATABASE_URL, a PostgreSQL URL ({example})")
    try:
        backend = make_url(database_url).get_backend_name()
    except ArgumentError:
        raise ValueError("RECOVERY_DATABASE_URL is not a database URL; production needs a "
                         f"PostgreSQL URL ({example})") from None
    if backend != "postgresql":
        raise ValueError(f"RECOVERY_DATABASE_URL names {backend}; production needs a "
                         f"PostgreSQL URL ({example})")


class Settings(BaseSettings):
    """Everything a service needs to run; every field has a working local default."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    service: str = "goals"
    environment: Environment = Environment.development
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str = ""
    # A mounted secret file holding the database password, put into database_url at start-up,
    # so the password is never in the process environment (deploy/k8s mounts it).
    database_password_file: str = ""
    # Connections each of the process's two engines keeps (transactions, and reads in
    # autocommit), with as many again opened on demand: see ``database_connections_at_most``.
    database_pool_size: int = 10
    nats_url: str = "nats://127.0.0.1:4222"
    # Copies JetStream keeps of each stream the service provisions: 1 on a single server, 3
    # in the three-node cluster of deploy/k8s. A stream that has fewer is raised to this.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Identity: tokens are verified against a JWKS from a file (development) or a URL.
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = "recovery-platform"
    jwt_algorithms: list[str] = ["RS256", "ES256"]
    jwks_file: str = ""
    jwks_url: str = ""
    jwt_leeway_seconds: int = 30
    # SMART on FHIR discovery (``/fhir/.well-known/smart-configuration``): the identity
    # provider's endpoints. Empty means the issuer's ``/authorize`` and ``/token``.
    smart_authorization_endpoint: str = ""
    smart_token_endpoint: str = ""
    # The identifier system of the EHR's patient ids, which are the platform's person ids
    # (the EHR is the master patient index): e.g. the EHR's MRN system, or
    # https://fhir.nhs.uk/Id/nhs-number where the EHR keys people by NHS number.
    fhir_patient_identifier_system: str = "https://recovery-platform.org/fhir/sid/patient-id"
    # HTTP limits
    max_body_bytes: int = 256 * 1024
    page_size_default: int = 50
    page_size_max: int = 200
    # Idempotency-Key answers: kept at least this long, then dropped by a sweep every
    # idempotency_sweep_seconds (0 turns the sweep off).
    idempotency_keep_hours: int = Field(default=24, ge=1)
    idempotency_sweep_seconds: float = 3600.0
    # Events
    outbox_poll_seconds: float = 0.5
    outbox_batch_size: int = 500
    consumer_max_deliver: int = 5
    consumer_backoff_seconds: list[float] = [0.5, 2.0, 10.0, 30.0]
    events_enabled: bool = True
    # Audit entries are buffered and written in batches at this interval (and on shutdown).
    audit_flush_seconds: float = 0.2
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _fill_local_defaults(self) -> "Settings":
        if not self.port:
            self.port = LOCAL_PORTS.get(self.service, 8080)
        production = self.environment is Environment.production
        if production:
            if self.jwt_issuer == DEV_ISSUER:
                raise ValueError("the development token issuer is refused in production")
            if not (self.jwks_url or self.jwks_file):
                raise ValueError("production needs RECOVERY_JWKS_URL or RECOVERY_JWKS_FILE")
            if "none" in {a.lower() for a in self.jwt_algorithms} or any(
                a.upper().startswith("HS") for a in self.jwt_algorithms
            ):
                raise ValueError("only asymmetric signature algorithms are allowed")
            if self.service not in WITHOUT_DATABASE:
                # Never the local SQLite file: in a container its data would go with the pod.
                require_postgresql(self.database_url)
        else:
            if not self.database_url:
                name = self.service.replace("-", "_")
                self.database_url = f"sqlite+aiosqlite:///{var_dir() / f'{name}.db'}"
            if not (self.jwks_url or self.jwks_file):
                self.jwks_file = str(var_dir() / "dev-issuer" / "jwks.json")
        if self.database_password_file:
            self.database_url = with_password(self.database_url,
                                              Path(self.database_password_file))
        return self

    @property
    def database_connections_at_most(self) -> int:
        """The most connections one process opens to its database: two engines, each its
        pool and as many again on demand (``db.create_engine``)."""
        return 2 * 2 * self.database_pool_size

    @property
    def stream_name(self) -> str:
        """The JetStream stream that holds this service's events, e.g. ``GOALS``."""
        return self.service.upper().replace("-", "_")

    @property
    def subject_prefix(self) -> str:
        return f"recovery.{self.service}"


def known_variables() -> frozenset[str]:
    """Every ``RECOVERY_*`` variable some part of the platform reads."""
    return frozenset(PREFIX + name.upper() for name in Settings.model_fields) | \
        OTHER_PARTS_VARIABLES


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The ``RECOVERY_*`` names in ``environ`` that no part reads (a typo, a stale name)."""
    known = known_variables()
    # pydantic-settings matches names regardless of case, and so does this.
    return sorted(name for name in environ
                  if name.upper().startswith(PREFIX) and name.upper() not in known)


def report_unknown_variables(environ: Mapping[str, str] = os.environ) -> None:
    """Warns at start-up of variables nothing reads: their names only, as values may be
    secrets. Only a warning: during a rollout a ConfigMap may carry a newer version's names."""
    unknown = unknown_variables(environ)
    if unknown:
        structlog.get_logger(__name__).warning("unknown_settings_ignored", variables=unknown)
