"""Gateway-only configuration (prefix ``RECOVERY_``): where the services are, and limits."""

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recovery.common.settings import LOCAL_PORTS, Environment

UPSTREAMS = ("goals", "crisis-plans", "risk", "training", "workforce")


def _local(service: str) -> str:
    return f"http://127.0.0.1:{LOCAL_PORTS[service]}"


class GatewaySettings(BaseSettings):
    """Upstream base URLs, the per-call timeout and the GraphQL limits."""

    model_config = SettingsConfigDict(env_prefix="RECOVERY_", extra="ignore")

    environment: Environment = Environment.development
    goals_url: str = _local("goals")
    crisis_plans_url: str = _local("crisis-plans")
    risk_url: str = _local("risk")
    training_url: str = _local("training")
    workforce_url: str = _local("workforce")
    # One upstream call may take this long; a slow service costs at most this much.
    upstream_timeout_seconds: float = 2.0
    upstream_max_connections: int = 100
    # GraphQL limits
    max_depth: int = 10
    max_tokens: int = 2000
    max_aliases: int = 30
    # Static cost (cost.py): the most one operation may cost, and each token's budget over
    # time, a bucket of this capacity filling at this rate (held per replica).
    cost_limit: int = Field(default=250_000, gt=0)
    cost_budget: int = Field(default=1_250_000, gt=0)
    cost_budget_per_second: float = Field(default=50_000, gt=0)
    # None means the environment decides: on in development, off elsewhere.
    graphiql: bool | None = None
    introspection: bool | None = None
    # Trusted documents: the manifest (hash → document) a request may name by hash, and
    # whether nothing else may run (production, once the web app registers its operations).
    trusted_documents_path: Path | None = None
    trusted_documents_only: bool = False
    # Where EHRs reach the platform (e.g. https://recovery.trust.example): every FHIR link,
    # fullUrl and Location is made from it. Empty: from trusted forwarded headers (below),
    # else the gateway's own address as the request reached it.
    public_url: str = ""
    # Whether Forwarded / X-Forwarded-Host, -Proto and -Prefix come from our own ingress (which
    # sets them) and so may say where the caller reached us.
    forwarded_headers_trusted: bool = False
    # The foundation course on recovery principles, as the training service creates it.
    foundation_course_id: str = "00000000-0000-4000-8000-000000000001"
    # FHIR subscriptions (fhir_subscriptions/): the endpoint prefixes a subscriber may name
    # (comma-separated or a JSON list; empty allows any in development and none elsewhere),
    # and the pauses between a notification's attempts (one attempt more than pauses).
    fhir_subscription_endpoints: Annotated[list[str], NoDecode] = []
    fhir_subscription_retry_seconds: list[float] = [1.0, 5.0, 30.0]

    @model_validator(mode="after")
    def _budget_holds_an_operation(self) -> "GatewaySettings":
        if self.cost_budget < self.cost_limit:
            raise ValueError("RECOVERY_COST_BUDGET must hold at least one operation of "
                             "RECOVERY_COST_LIMIT")
        return self

    @field_validator("fhir_subscription_endpoints", mode="before")
    @classmethod
    def _comma_separated_or_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def url_of(self, service: str) -> str:
        return str(getattr(self, f"{service.replace('-', '_')}_url")).rstrip("/")

    @property
    def development(self) -> bool:
        return self.environment is Environment.development

    @property
    def graphiql_on(self) -> bool:
        return self.development if self.graphiql is None else self.graphiql

    @property
    def introspection_on(self) -> bool:
        return self.environment is not Environment.production if self.introspection is None \
            else self.introspection
