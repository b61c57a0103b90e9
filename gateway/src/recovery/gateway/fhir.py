"""One FHIR R4 base URL for EHRs: each request goes, with the caller's token, to the service
that owns its resource type; ``/fhir/metadata`` merges the services' CapabilityStatements.

Every service answers with links at the public base the gateway tells it (``Forwarded``), so
no link leads to a service's internal address.
"""

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from recovery.common import fhir
from recovery.common.fhir import FHIR_JSON
from recovery.common.problems import RETRY_AFTER_SECONDS, Problem
from recovery.common.settings import Settings
from recovery.common.timeutil import utcnow
from recovery.gateway import fanout, fhir_audit
from recovery.gateway.fhir_subscriptions.resources import with_subscription_topics
from recovery.gateway.settings import UPSTREAMS, GatewaySettings
from recovery.gateway.upstream import Upstreams

#: Resource type -> the service that owns it.
OWNERS = {
    "Goal": "goals",
    "CarePlan": "crisis-plans",
    "RiskAssessment": "risk",
    "Practitioner": "workforce",
    "PractitionerRole": "workforce",
    "CareTeam": "workforce",
}
#: A person's Patient is served by each service holding records of them: asked of all three.
PATIENT_HOLDERS = ("goals", "crisis-plans", "risk")
#: Provenance (the signatures agreeing a version) lives with the record it is about.
PROVENANCE_TARGETS = ("CarePlan", "RiskAssessment")
PROVENANCE_HOLDERS = tuple(OWNERS[target] for target in PROVENANCE_TARGETS)
#: Request headers passed to the service as they came.
FORWARDED = ("authorization", "accept", "content-type", "if-match", "if-none-match",
             "if-none-exist", "prefer", "idempotency-key")
#: Response headers passed back to the client as the service gave them.
RETURNED = ("content-type", "etag", "last-modified", "location", "www-authenticate",
            "retry-after", "allow", "idempotent-replayed")


def fhir_base(request: Request, settings: GatewaySettings) -> str:
    """The public FHIR base: configured, else from our ingress's forwarded headers when they
    are trusted, else this gateway's own address as the caller reached it."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/fhir"
    if settings.forwarded_headers_trusted:
        return fhir.public_base(request)
    return str(request.base_url).rstrip("/") + "/fhir"


def owner_of(resource_type: str) -> str:
    if resource_type in OWNERS:
        return OWNERS[resource_type]
    raise Problem(404, f"No service here holds {resource_type} resources.", kind="not-found")


def provenance_holders(request: Request) -> tuple[str, ...]:
    """Where a Provenance search goes: to the owner of the type its target names, in any
    form (``CarePlan/<id>``, any base's URL ending so); a bare id may be either type's, as
    FHIR reads it, so it goes to both."""
    targets = [part for value in request.query_params.getlist("target")
               for part in value.split(",")]
    kinds = {fhir.reference_type(target) for target in targets} - {""}
    if not targets or not kinds <= set(PROVENANCE_TARGETS) or len(kinds) > 1:
        raise Problem(400, "Provenance is searched by one target: CarePlan/<id>, "
                           "RiskAssessment/<id>, a URL ending so, or <id>.",
                      kind="invalid-search")
    return (OWNERS[kinds.pop()],) if kinds else PROVENANCE_HOLDERS


def fhir_router(upstreams: Upstreams, settings: Settings,
                gateway: GatewaySettings) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fhir"],
                       dependencies=[Depends(fhir.acceptable_format)])

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
        return JSONResponse(merged_capability(statements, settings), media_type=FHIR_JSON)

    @router.get("/.well-known/smart-configuration",
                summary="SMART on FHIR discovery: the authorization server and scopes")
    async def smart_configuration() -> JSONResponse:
        return JSONResponse(fhir.smart_configuration(settings))

    async def send(request: Request, service: str, path: str,
                   params: Sequence[tuple[str, str]] | None = None) -> httpx.Response:
        """The request to ``service`` at ``path``, with its own query or ``params``."""
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        headers.update(fhir.forwarding_headers(fhir_base(request, gateway)))
        upstreams.calls[service] += 1
        try:
            return await upstreams.clients[service].request(
                request.method, path, headers=headers, content=await request.body(),
                params=request.query_params if params is None else tuple(params))
        except httpx.TimeoutException as exc:
            raise Problem(504, f"The {service} service did not answer in time.",
                          kind="upstream-timeout") from exc
        except httpx.HTTPError as exc:
            raise Problem(503, f"The {service} service is unavailable; try again shortly.",
                          kind="upstream-unavailable",
                          headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from exc

    def returned(response: httpx.Response) -> Response:
        kept = {k: v for k, v in response.headers.items() if k.lower() in RETURNED}
        return Response(response.content, status_code=response.status_code, headers=kept)

    @router.api_route("/Patient/{rest:path}", methods=["GET"], include_in_schema=False)
    @router.api_route("/Patient", methods=["GET"], include_in_schema=False)
    async def patient(request: Request, rest: str = "") -> Response:
        """A person's Patient from whichever services hold their records: the first that
        answers it, or the union of their searches."""
        if rest and ("/" in rest or rest in {".", ".."}):
            raise Problem(404, "Patient is read as Patient/<id>.", kind="not-found")
        if rest:
            return await fanout.read_from_any(request, send=send, returned=returned,
                                              services=PATIENT_HOLDERS,
                                              path=f"/fhir/Patient/{quote(rest, safe='')}")
        answers = await fanout.ask_each(request, send, PATIENT_HOLDERS, "/fhir/Patient")
        if down := fanout.failed(answers):
            # Without every holder's answer the person might be missed: say so.
            raise fanout.unavailable(down)
        good = fanout.found(answers)
        if not good:
            return fanout.nothing_found(answers, returned)
        return JSONResponse(merged_search([a.json() for a in good]), media_type=FHIR_JSON)

    @router.api_route("/Provenance/{rest:path}", methods=["GET", "POST", "PUT"],
                      include_in_schema=False)
    @router.api_route("/Provenance", methods=["GET", "POST"], include_in_schema=False)
    async def provenance(request: Request, rest: str = "") -> Response:
        """The signatures agreeing a version, kept by the service of the record signed: a
        search goes where its target says; a read by id, which does not say, asks both."""
        if request.method != "GET":
            raise Problem(405, "Provenance is read only: it is made by signing.",
                          headers={"Allow": "GET"})
        if rest and ("/" in rest or rest in {".", ".."}):
            raise Problem(404, "Provenance is read as Provenance/<id>.", kind="not-found")
        if rest:
            return await fanout.read_from_any(request, send=send, returned=returned,
                                              services=PROVENANCE_HOLDERS,
                                              path=f"/fhir/Provenance/{quote(rest, safe='')}")
        holders = provenance_holders(request)
        if len(holders) == 1:
            return returned(await send(request, holders[0], "/fhir/Provenance"))
        # A bare id: the service holding the record answers, the other has no such record.
        answers = await fanout.ask_each(request, send, holders, "/fhir/Provenance")
        good = fanout.found(answers)
        if len(good) == 1:
            return returned(good[0])  # its own paging links and total, as they are
        if not good:
            return fanout.nothing_found(answers, returned)
        return JSONResponse(merged_search([a.json() for a in good]), media_type=FHIR_JSON)

    @router.api_route("/AuditEvent/{rest:path}", methods=["GET", "POST", "PUT"],
                      include_in_schema=False)
    @router.api_route("/AuditEvent", methods=["GET", "POST"], include_in_schema=False)
    async def audit_event(request: Request, rest: str = "") -> Response:
        """Every service's audit trail: searched at the owner of the record named, else at
        all of them and merged; read at whichever holds the entry (``fhir_audit``)."""
        if request.method != "GET":
            raise Problem(405, "The audit trail is read only.", headers={"Allow": "GET"})
        if rest and ("/" in rest or rest in {".", ".."}):
            raise Problem(404, "AuditEvent is read as AuditEvent/<id>.", kind="not-found")
        if rest:
            return await fhir_audit.read(request, rest, send=send, returned=returned)
        return await fhir_audit.search(request, send=send, returned=returned,
                                       base=fhir_base(request, gateway), settings=settings,
                                       owners=OWNERS)

    @router.api_route("/{resource_type}/{rest:path}", methods=["GET", "POST", "PUT"],
                      include_in_schema=False)
    @router.api_route("/{resource_type}", methods=["GET", "POST"], include_in_schema=False)
    async def forward(request: Request, resource_type: str, rest: str = "") -> Response:
        service = owner_of(resource_type)
        if any(part in {".", ".."} for part in rest.split("/")):
            # The client would resolve them, and the call leave the service's /fhir.
            raise Problem(400, "A FHIR path holds no '.' or '..' segments.",
                          kind="invalid-path")
        path = f"/fhir/{resource_type}" + (f"/{rest}" if rest else "")
        return returned(await send(request, service, path))

    return router


def merged_search(bundles: list[dict[str, Any]]) -> dict[str, Any]:
    """Several services' searchsets for the same search as one, each resource once."""
    entries = {entry["fullUrl"]: entry for bundle in bundles for entry in bundle.get("entry", [])}
    first = bundles[0]
    merged = {**first, "entry": list(entries.values())}
    if "total" in first:
        merged["total"] = len(entries)
    return merged


def merged_capability(statements: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
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
    return with_subscription_topics({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": utcnow().isoformat(),
        "kind": "instance",
        "software": {"name": "Recovery Platform gateway"},
        # kind `instance` describes this deployment: FHIR's cpb-14 requires it be named.
        "implementation": {"description": "Recovery Platform gateway: the services' FHIR "
                                          "resources at one base"},
        "fhirVersion": first.get("fhirVersion", "4.0.1"),
        "format": ["json"],
        "rest": [{"mode": "server",
                  "security": fhir.security(settings),
                  "resource": sorted(resources.values(), key=lambda r: r["type"])}],
    })
