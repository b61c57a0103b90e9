"""The training service's ``/fhir`` base: no resources of its own (a course or a learning
record is no FHIR resource, see docs/fhir-mapping.md), only what every service's base has,
its audit trail as AuditEvent (the kit's) and discovery."""

from typing import Any

from recovery.common import fhir
from recovery.common.settings import Settings


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """Nothing beyond the audit trail, which the kit's router declares for every service."""
    return []


router = fhir.fhir_router("training", capability_statement)
