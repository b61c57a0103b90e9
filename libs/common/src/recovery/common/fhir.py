"""FHIR R4 pieces every service's ``/fhir`` routes share: the media type and response class,
the OpenAPI answer, instants, codings, the CapabilityStatement and searchset Bundles.

What a service maps (Goal, CarePlan, RiskAssessment, Practitioner) stays in the service.
"""

import base64
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.datastructures import URL

FHIR_VERSION = "4.0.1"
#: Our own code systems, identifier systems and extensions (``docs/fhir-mapping.md``).
BASE = "https://recovery-platform.org/fhir"
TEAM_SYSTEM = f"{BASE}/team"
TEAM = f"{BASE}/StructureDefinition/team"
FHIR_JSON = "application/fhir+json"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
#: The versions one page of a Provenance search reads: ``_count``'s default and its most.
PROVENANCE_PAGE = 100
PROVENANCE_VERSIONS = 1000

#: A search's page size (``_count``) and where it goes on (``_cursor``, from a next link).
SearchCount = Annotated[int, Query(alias="_count", ge=1, le=PROVENANCE_VERSIONS,
                                   description="Versions read for this page")]
SearchCursor = Annotated[str | None, Query(alias="_cursor", min_length=1, max_length=200,
                                           description="From the Bundle's next link")]

#: The OpenAPI answer of a FHIR route: some resource, in FHIR's media type.
FHIR_OK: dict[int | str, dict[str, Any]] = {200: {
    "description": "A FHIR resource",
    "content": {FHIR_JSON: {"schema": {"type": "object", "required": ["resourceType"],
                                       "properties": {"resourceType": {"type": "string"}}}}}}}


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def instant(value: datetime) -> str:
    """A FHIR instant in UTC with milliseconds, as ``2026-01-01T09:00:00.000Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def concept(system: str, code: str, display: str | None = None, *,
            text: bool = False) -> dict[str, Any]:
    """A CodeableConcept of one coding (its display repeated as the text when asked)."""
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display and text else {})}


def capability_statement(*, service: str, scopes_on: str,
                         resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What one service offers over FHIR: a server of ``resources``, secured by SMART."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "Recovery Platform",
        "kind": "instance",
        "software": {"name": f"recovery-{service}"},
        "implementation": {"description": f"Recovery Platform {service} service"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [concept(SECURITY_SERVICE, "SMART-on-FHIR")],
                "description": f"Bearer JWT with SMART v2 scopes ({scopes_on})",
            },
            "resource": list(resources),
        }],
    }


def match(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    """A searchset entry for a resource that matched the search."""
    entry: dict[str, Any] = {"resource": resource, "search": {"mode": "match"}}
    if full_url is not None:
        entry = {"fullUrl": full_url, **entry}
    return entry


def searchset(entries: Iterable[dict[str, Any]], *, links: Sequence[dict[str, str]] = (),
              total: int | None = None) -> dict[str, Any]:
    """A searchset Bundle of ``match`` entries, with its links and total when known."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "timestamp": instant(datetime.now(UTC))}
    if links:
        bundle["link"] = list(links)
    if total is not None:
        bundle["total"] = total
    bundle["entry"] = list(entries)
    return bundle


def paged_searchset(entries: Sequence[dict[str, Any]], *, url: URL,
                    next_cursor: str | None, first_page: bool) -> dict[str, Any]:
    """One page of a searchset: a self link, a next link while there is more (the same
    search with ``_cursor``), and the total when this one page holds everything."""
    links = [{"relation": "self", "url": str(url)}]
    if next_cursor is not None:
        links.append({"relation": "next",
                      "url": str(url.include_query_params(_cursor=next_cursor))})
    whole = first_page and next_cursor is None
    return searchset(entries, links=links, total=len(entries) if whole else None)


def signed_content(content_hash: str) -> str:
    """A Provenance signature's data: the canonical content hash the signatory agreed to."""
    return base64.b64encode(content_hash.encode()).decode()


def provenance(target: str, version: int, *, recorded: datetime,
               agents: Sequence[dict[str, Any]], signatures: Sequence[dict[str, Any]],
               activity: str | None = None) -> dict[str, Any]:
    """The signatures agreeing one version of ``target`` (``Type/id``) as a Provenance."""
    record_id = target.rsplit("/", 1)[-1]
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": f"{record_id[:36]}-v{version}",
        "target": [{"reference": f"{target}/_history/{version}"}],
        "recorded": instant(recorded),
    }
    if activity is not None:
        resource["activity"] = {"text": activity}
    return {**resource, "agent": list(agents), "signature": list(signatures)}


def fhir_router(service: str, capability: Callable[[], dict[str, Any]]) -> APIRouter:
    """A service's ``/fhir`` router, answering ``/metadata`` with its CapabilityStatement."""
    router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse)

    @router.get("/metadata", response_model=None, responses=FHIR_OK,
                summary=f"CapabilityStatement of the {service} service")
    async def metadata() -> FhirResponse:
        return FhirResponse(capability())

    return router
