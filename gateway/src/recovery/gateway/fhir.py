"""One FHIR R4 base URL for EHRs: each request goes, with the caller's token, to the service
that owns its resource type; ``/fhir/metadata`` merges the services' CapabilityStatements."""

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from recovery.common.problems import Problem
from recovery.common.timeutil import utcnow
from recovery.gateway.settings import UPSTREAMS
from recovery.gateway.upstream import Upstreams

FHIR_JSON = "application/fhir+json"
#: Resource type -> the service that owns it.
OWNERS = {
    "Goal": "goals",
    "CarePlan": "crisis-plans",
    "RiskAssessment": "risk",
    "Practitioner": "workforce",
    "PractitionerRole": "workforce",
    "CareTeam": "workforce",
}
#: Provenance (the signatures agreeing a version) lives with the record it is about.
PROVENANCE_TARGETS = frozenset({"CarePlan", "RiskAssessment"})
#: Request headers passed to the service as they came.
FORWARDED = ("authorization", "accept", "content-type", "if-match", "if-none-match")


def owner_of(resource_type: str, request: Request) -> str:
    if resource_type in OWNERS:
        return OWNERS[resource_type]
    if resource_type == "Provenance":
        target = request.query_params.get("target", "").partition("/")[0]
        if target in PROVENANCE_TARGETS:
            return OWNERS[target]
        raise Problem(400, "Provenance is searched by target: CarePlan/<id> or "
                           "RiskAssessment/<id>.", kind="invalid-search")
    raise Problem(404, f"No service here holds {resource_type} resources.", kind="not-found")


def fhir_router(upstreams: Upstreams) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fhir"])

    @router.get("/metadata", summary="One CapabilityStatement for the whole platform")
    async def metadata() -> JSONResponse:
        async def one(service: str) -> dict[str, Any] | None:
            try:
                answer = await upstreams.call(service, "GET", "/fhir/metadata", None)
            except Exception:  # a service down leaves its types out, not the statement
                return None
            body: dict[str, Any] = answer.body
            return body

        statements = [s for s in await asyncio.gather(*(one(s) for s in UPSTREAMS)) if s]
        return JSONResponse(merged_capability(statements), media_type=FHIR_JSON)

    @router.api_route("/{resource_type}/{rest:path}", methods=["GET", "POST", "PUT"],
                      include_in_schema=False)
    @router.api_route("/{resource_type}", methods=["GET", "POST"], include_in_schema=False)
    async def forward(request: Request, resource_type: str, rest: str = "") -> Response:
        service = owner_of(resource_type, request)
        if any(part in {".", ".."} for part in rest.split("/")):
            # The client would resolve them, and the call leave the service's /fhir.
            raise Problem(400, "A FHIR path holds no '.' or '..' segments.",
                          kind="invalid-path")
        path = f"/fhir/{resource_type}" + (f"/{rest}" if rest else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        upstreams.calls[service] += 1
        try:
            response = await upstreams.clients[service].request(
                request.method, path, params=request.query_params, headers=headers,
                content=await request.body())
        except httpx.TimeoutException as exc:
            raise Problem(504, f"The {service} service did not answer in time.",
                          kind="upstream-timeout") from exc
        except httpx.HTTPError as exc:
            raise Problem(502, f"The {service} service is unavailable.",
                          kind="upstream-unavailable") from exc
        kept = {k: v for k, v in response.headers.items()
                if k.lower() in {"content-type", "etag", "location", "www-authenticate"}}
        return Response(response.content, status_code=response.status_code, headers=kept)

    return router


def merged_capability(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The services' server capabilities as one: every resource type each one supports."""
    resources: dict[str, dict[str, Any]] = {}
    for statement in statements:
        for rest in statement.get("rest") or []:
            for resource in rest.get("resource") or []:
                held = resources.setdefault(resource["type"], {**resource})
                if held is not resource:
                    interactions = {i["code"]: i for i in held.get("interaction") or []}
                    interactions.update({i["code"]: i for i in resource.get("interaction") or []})
                    held["interaction"] = list(interactions.values())
                    params = {p["name"]: p for p in held.get("searchParam") or []}
                    params.update({p["name"]: p for p in resource.get("searchParam") or []})
                    if params:
                        held["searchParam"] = list(params.values())
    first = statements[0] if statements else {}
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": utcnow().isoformat(),
        "kind": "instance",
        "software": {"name": "Recovery Platform gateway"},
        # kind `instance` describes this deployment: FHIR's cpb-14 requires it be named.
        "implementation": {"description": "Recovery Platform gateway: the services' FHIR "
                                          "resources at one base"},
        "fhirVersion": first.get("fhirVersion", "4.0.1"),
        "format": ["application/fhir+json", "json"],
        "rest": [{"mode": "server",
                  "security": (first.get("rest") or [{}])[0].get("security", {}),
                  "resource": sorted(resources.values(), key=lambda r: r["type"])}],
    }
