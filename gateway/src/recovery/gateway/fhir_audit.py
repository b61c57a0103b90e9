"""The audit trail at the gateway's FHIR base. Every service keeps its own, so a search naming
one record (``entity=CarePlan/<id>``) goes to the service that owns it, and any other goes to
all of them, merged newest first into one searchset; a read by id asks them all.

Each service pages its trail newest first by (recorded, id), and its ``_cursor`` is the position
just after an entry (``audit_export.cursor_after``). The merged page's next link carries the
position after its own last entry: every entry newer than that, in every service, is on this
page or an earlier one, so each service goes on from the same place, and following next links
visits every entry once. Entries recorded meanwhile (reading the trail records some) are newer
than any position and never shift a page, as counting entries from the top would.
"""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from fastapi import Request, Response

from recovery.common import fhir
from recovery.common.audit_export import cursor_after
from recovery.common.problems import RETRY_AFTER_SECONDS, Problem
from recovery.common.settings import Settings
from recovery.gateway.settings import UPSTREAMS

#: Every service keeps an audit trail (training's is about staff development records).
AUDIT_HOLDERS = UPSTREAMS
PATH = "/fhir/AuditEvent"


class Send(Protocol):
    """The gateway's call of a service with the caller's token and the public base."""

    async def __call__(self, request: Request, service: str, path: str,
                       params: Sequence[tuple[str, str]] | None = None) -> httpx.Response: ...


class Returned(Protocol):
    def __call__(self, response: httpx.Response) -> Response: ...


def entity_owner(search: fhir.Search, owners: Mapping[str, str]) -> str | None:
    """The one service owning every record the ``entity`` values name, if there is one; a
    Patient, a bare id or a type no service owns can be in any trail."""
    found: set[str | None] = set()
    for value in search.values.get("entity", []):
        for part in value.split(","):
            kind = part.rstrip("/").rpartition("/")[0].rsplit("/", 1)[-1]
            found.add(owners.get(kind))
    return found.pop() if len(found) == 1 and None not in found else None


def _position(resource: Mapping[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(resource["recorded"]), resource["id"]


def _has_next(bundle: Mapping[str, Any]) -> bool:
    return any(link.get("relation") == "next" for link in bundle.get("link") or [])


def merged_page(bundles: Sequence[Mapping[str, Any]], count: int
                ) -> tuple[list[dict[str, Any]], str | None]:
    """The newest ``count`` entries of the services' pages and the cursor after the last one
    while anything is left. Nothing older than a service's last entry is taken while that
    service has more: its next entries could come first."""
    resources: list[dict[str, Any]] = []
    boundary: tuple[datetime, str] | None = None
    for bundle in bundles:
        page = [entry["resource"] for entry in bundle.get("entry") or []]
        resources += page
        if page and _has_next(bundle):
            last = _position(page[-1])
            boundary = last if boundary is None or last > boundary else boundary
    resources.sort(key=_position, reverse=True)
    taken = [r for r in resources if boundary is None or _position(r) >= boundary][:count]
    more = boundary is not None or len(resources) > len(taken)
    return taken, cursor_after(taken[-1]) if more and taken else None


def _unavailable(services: Sequence[str]) -> Problem:
    return Problem(503, f"The audit trail of {', '.join(services)} is unavailable just now; "
                        "try again shortly.", kind="upstream-unavailable",
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _failed(answers: Mapping[str, httpx.Response | BaseException]) -> list[str]:
    return [service for service, answer in answers.items()
            if not isinstance(answer, httpx.Response) or answer.status_code >= 500]


async def _ask_all(request: Request, send: Send, path: str,
                   params: Sequence[tuple[str, str]] | None = None
                   ) -> dict[str, httpx.Response | BaseException]:
    """Every service's answer, or the problem ``send`` made of not reaching it."""
    answers = await asyncio.gather(*(send(request, service, path, params)
                                     for service in AUDIT_HOLDERS), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, Problem):
            raise answer  # our own fault, not a service's unavailability
    return dict(zip(AUDIT_HOLDERS, answers, strict=True))


async def search(request: Request, *, send: Send, returned: Returned, base: str,
                 settings: Settings, owners: Mapping[str, str]) -> Response:
    """``GET /fhir/AuditEvent``: at the owner of the record it names, else merged from all."""
    wanted = fhir.parse_search(request, "AuditEvent", fhir.AUDIT_EVENT_SEARCH,
                               default_count=settings.page_size_default,
                               max_count=settings.page_size_max)
    wanted.base = base
    owner = entity_owner(wanted, owners)
    if owner is not None:
        return returned(await send(request, owner, PATH))
    # Only what the search understood goes on, with the page size every service must use.
    params = [(name, value) for name, value in wanted.kept if name != "_count"]
    params.append(("_count", str(wanted.count)))
    if wanted.cursor:
        params.append(("_cursor", wanted.cursor))
    answers = await _ask_all(request, send, PATH, params)
    refusal = next((a for a in answers.values() if isinstance(a, httpx.Response)
                    and a.status_code != 200 and a.status_code < 500), None)
    if refusal is not None:
        return returned(refusal)
    if failed := _failed(answers):
        # Part of the trail is not a smaller answer but a wrong one: say so.
        raise _unavailable(failed)
    bundles = [a.json() for a in answers.values() if isinstance(a, httpx.Response)]
    total = sum(b.get("total", 0) for b in bundles) if wanted.wants_total else None
    page, following = ([], None) if wanted.count_only else merged_page(bundles, wanted.count)
    return fhir.FhirResponse(wanted.bundle(page, next_cursor=following, total=total))


async def read(request: Request, event_id: str, *, send: Send,
               returned: Returned) -> Response:
    """``GET /fhir/AuditEvent/<id>``: ids are unique across services, so the one holding it
    answers. Not found means every service said so: while one cannot be asked, 503."""
    # Quoted: an id is one path segment at the service, whatever the caller encoded in it.
    answers = await _ask_all(request, send, f"{PATH}/{quote(event_id, safe='')}")
    responses = [a for a in answers.values() if isinstance(a, httpx.Response)]
    found = next((a for a in responses if a.status_code == 200), None)
    if found is not None:
        return returned(found)
    refusal = next((a for a in responses if a.status_code not in {200, 404}
                    and a.status_code < 500), None)
    if refusal is not None:
        return returned(refusal)
    if failed := _failed(answers):
        raise _unavailable(failed)
    return returned(responses[0])
