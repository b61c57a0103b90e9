"""A service's operations, read from its own OpenAPI document, so the security tests cover a
new endpoint the day it is added; only the public routes a service names are left out."""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
PROBLEM = "application/problem+json"

#: The audit trail is the kit's, in every service; its access rules are tested in the kit.
AUDIT_PATHS = ("/v1/audit-events", "/fhir/AuditEvent")
AUDIT_EVENT_ID = "0b0e7c1e-4b1c-4c55-9a51-4ad2e0f5d6a1"

#: Routes that answer without a token in every service, and why.
OPERATIONAL_ROUTES: dict[str, str] = {
    "/healthz": "liveness probe",
    "/readyz": "readiness probe",
    "/metrics": "Prometheus scrape",
    "/openapi.json": "the API description",
    "/docs": "the API description",
}

#: FHIR clients read the CapabilityStatement and SMART discovery before they have a token, to
#: learn how to get one; they describe the server and hold no record.
FHIR_METADATA: dict[str, str] = {
    "/fhir/metadata": "FHIR CapabilityStatement",
    "/fhir/.well-known/smart-configuration": "SMART on FHIR discovery",
}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    reads_only: bool = field(default=False, compare=False)  # a POST that only reads

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template}"

    @property
    def changes(self) -> bool:
        return self.method != "get" and not self.reads_only

    @property
    def is_audit(self) -> bool:
        return self.template.startswith(AUDIT_PATHS)


def protected_operations(openapi: Mapping[str, Any], *, public: Mapping[str, str],
                         reading_posts: Iterable[str] = ()) -> list[Operation]:
    """Every documented operation except the ``public`` routes."""
    reading = frozenset(reading_posts)
    return [Operation(method, path, reads_only=f"{method.upper()} {path}" in reading)
            for path, item in openapi["paths"].items()
            for method in item if method in HTTP_METHODS and path not in public]


def paths_without_security(openapi: Mapping[str, Any]) -> set[str]:
    """Paths with an operation that declares no bearer security."""
    return {path for path, item in openapi["paths"].items()
            for method, operation in item.items()
            if method in HTTP_METHODS and not operation.get("security")}


def undeclared_security(openapi: Mapping[str, Any], operations: Iterable[Operation]) -> list[str]:
    return [str(op) for op in operations
            if not openapi["paths"][op.template][op.method].get("security")]


def fill_path(template: str, **values: str) -> str:
    """The template with each ``{name}`` replaced by ``values[name]`` (audit events by a
    made-up id); a name without a value stays as it was, for ``unfilled`` to report."""
    values = {"audit_event_id": AUDIT_EVENT_ID, **values}
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match[1], match[0]), template)


def unfilled(operations: Iterable[Operation], path: Callable[[Operation], str]) -> list[str]:
    """Operations whose path still names a parameter once filled: a matrix must not skip one."""
    return [str(op) for op in operations if "{" in path(op)]
