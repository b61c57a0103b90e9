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

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request, Response

from recovery.common import fhir
from recovery.common.audit_export import cursor_after
from recovery.common.settings import Settings
from recovery.gateway.fanout import (
    Returned,
    Send,
    ask_each,
    failed,
    read_from_any,
    unavailable,
)
from recovery.gateway.settings import UPSTREAMS

#: Every service keeps an audit trail (training's is about staff development records).
AUDIT_HOLDERS = UPSTREAMS
PATH = "/fhir/AuditEvent"


def entity_owner(search: fhir.Search, owners: Mapping[str, str]) -> str | None:
    """The one service owning every record the ``entity`` values name, if there is one; a
    Patient, a bare id or a type no service owns can be in any trail."""
    found: set[str | None] = set()
    for value in search.values.get("entity", []):
        for part in value.split(","):
            found.add(owners.get(fhir.reference_type(part)))
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
    answers = await ask_each(request, send, AUDIT_HOLDERS, PATH, params)
    refusal = next((a for a in answers.values() if isinstance(a, httpx.Response)
                    and a.status_code != 200 and a.status_code < 500), None)
    if refusal is not None:
        return returned(refusal)
    if down := failed(answers):
        # Part of the trail is not a smaller answer but a wrong one: say so.
        raise unavailable(down)
    bundles = [a.json() for a in answers.values() if isinstance(a, httpx.Response)]
    total = sum(b.get("total", 0) for b in bundles) if wanted.wants_total else None
    page, following = ([], None) if wanted.count_only else merged_page(bundles, wanted.count)
    return fhir.FhirResponse(wanted.bundle(page, next_cursor=following, total=total))


async def read(request: Request, event_id: str, *, send: Send,
               returned: Returned) -> Response:
    """``GET /fhir/AuditEvent/<id>``: ids are unique across services, so the one holding it
    answers. Not found means every service said so: while one cannot be asked, 503."""
    # Quoted: an id is one path segment at the service, whatever the caller encoded in it.
    return await read_from_any(request, send=send, returned=returned, services=AUDIT_HOLDERS,
                               path=f"{PATH}/{quote(event_id, safe='')}")
