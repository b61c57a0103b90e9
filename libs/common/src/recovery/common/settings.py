"""Service configuration, read only from the environment (prefix ``RECOVERY_``)."""

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

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


class Settings(BaseSettings):
    """Everything a service needs to run; every field has a working local default."""

    model_config = SettingsConfigDict(env_prefix="RECOVERY_", extra="ignore")

    service: str = "goals"
    environment: Environment = Environment.development
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str = ""
    # A mounted secret file holding the database password, put into database_url at start-up,
    # so the password is never in the process environment (deploy/k8s mounts it).
    database_password_file: str = ""
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
    # HTTP limits
    max_body_bytes: int = 256 * 1024
    page_size_default: int = 50
    page_size_max: int = 200
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
        if not self.database_url:
            name = self.service.replace("-", "_")
            self.database_url = f"sqlite+aiosqlite:///{var_dir() / f'{name}.db'}"
        if self.database_password_file:
            self.database_url = with_password(self.database_url,
                                              Path(self.database_password_file))
        if self.environment is Environment.production:
            if self.jwt_issuer == DEV_ISSUER:
                raise ValueError("the development token issuer is refused in production")
            if not (self.jwks_url or self.jwks_file):
                raise ValueError("production needs RECOVERY_JWKS_URL or RECOVERY_JWKS_FILE")
            if "none" in {a.lower() for a in self.jwt_algorithms} or any(
                a.upper().startswith("HS") for a in self.jwt_algorithms
            ):
                raise ValueError("only asymmetric signature algorithms are allowed")
        elif not (self.jwks_url or self.jwks_file):
            self.jwks_file = str(var_dir() / "dev-issuer" / "jwks.json")
        return self

    @property
    def stream_name(self) -> str:
        """The JetStream stream that holds this service's events, e.g. ``GOALS``."""
        return self.service.upper().replace("-", "_")

    @property
    def subject_prefix(self) -> str:
        return f"recovery.{self.service}"
