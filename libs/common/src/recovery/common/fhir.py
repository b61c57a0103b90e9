"""FHIR R4 pieces every ``/fhir`` base shares: the media type and responses, the public base
URL, formats, searches (parameters, paging, totals, ``_lastUpdated``), reads with versions
(ETag, 304, history), generated narrative, SMART discovery and the CapabilityStatement.

What a service maps (Goal, CarePlan, RiskAssessment, Practitioner) stays in the service.
"""

import base64
import html
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from recovery.common.audit import Outcome
from recovery.common.auth import Verb, require_scope
from recovery.common.cosign import Signature
from recovery.common.deps import AccessDep, RecordAccess, SettingsDep
from recovery.common.problems import FHIR_MEDIA_TYPE, Problem
from recovery.common.reach import reach_condition, reach_of
from recovery.common.settings import Settings

FHIR_VERSION = "4.0.1"
#: Our own code systems, identifier systems and extensions (``docs/fhir-mapping.md``).
BASE = "https://recovery-platform.org/fhir"
TEAM_SYSTEM = f"{BASE}/team"
TEAM = f"{BASE}/StructureDefinition/team"
FHIR_JSON = FHIR_MEDIA_TYPE
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
#: The versions one page of a Provenance or history read holds: ``_count``'s default and most.
PROVENANCE_PAGE = 100
PROVENANCE_VERSIONS = 1000

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


# -- Where the caller reached us ---------------------------------------------------------------

_FORWARDED_PAIR = re.compile(r'\s*(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')


def _forwarded(header: str) -> dict[str, str]:
    """The first hop of an RFC 7239 ``Forwarded`` header, as its lower-case parameters."""
    first = header.split(",", 1)[0]
    return {name.lower(): value.strip('"') for name, value in _FORWARDED_PAIR.findall(first)}


def public_base(request: Request) -> str:
    """The FHIR base URL as the caller reached it, for every link, ``fullUrl`` and Location.

    The gateway says where that was (``Forwarded`` with ``X-Forwarded-Prefix``) when it routes
    a request here; without those headers, it is this server's own address. Trusting them is
    no more than trusting ``Host``: they only shape the links of the caller's own answer.
    """
    headers = request.headers
    hop = _forwarded(headers.get("forwarded", ""))
    scheme = hop.get("proto") or headers.get("x-forwarded-proto") or request.url.scheme
    host = hop.get("host") or headers.get("x-forwarded-host") or request.url.netloc
    prefix = headers.get("x-forwarded-prefix", "").rstrip("/")
    if scheme not in {"http", "https"} or not host or "/" in host or not _safe_path(prefix):
        scheme, host, prefix = request.url.scheme, request.url.netloc, ""
    return f"{scheme}://{host}{prefix}/fhir"


def _safe_path(prefix: str) -> bool:
    return not prefix or (prefix.startswith("/") and urlsplit(prefix).path == prefix
                          and ".." not in prefix.split("/"))


def forwarding_headers(base: str) -> dict[str, str]:
    """What the gateway tells a service about the public FHIR base ``base`` it answered at."""
    parts = urlsplit(base)
    return {"forwarded": f'proto={parts.scheme};host="{parts.netloc}"',
            "x-forwarded-prefix": parts.path.removesuffix("/fhir")}


# -- Formats -----------------------------------------------------------------------------------

#: What a client may ask for and get JSON: FHIR's own type, plain JSON, or anything.
_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir",
                 "*/*", "application/*", "text/json"}


def acceptable_format(request: Request) -> None:
    """406 for a format other than JSON (``Accept`` or ``_format``): XML and Turtle are not
    offered, and answering JSON to a client that asked for XML would break it silently."""
    asked = request.query_params.get("_format")
    if asked is not None:
        if asked.split(";")[0].strip().lower() not in _JSON_FORMATS:
            raise Problem(406, "This server speaks FHIR JSON only (_format=json).",
                          kind="not-acceptable")
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if not any(media in _JSON_FORMATS for media in offered):
        raise Problem(406, "This server speaks FHIR JSON only (application/fhir+json).",
                      kind="not-acceptable")


# -- Narrative ---------------------------------------------------------------------------------

#: Elements the generated narrative leaves out: bookkeeping, and what it could not say briefly.
_UNSAID = {"resourceType", "id", "meta", "text", "extension", "contained", "signature"}


def _said(value: Any) -> str:
    """An element's value in a few words, for the narrative."""
    if isinstance(value, list):
        return "; ".join(filter(None, (_said(item) for item in value)))
    if not isinstance(value, dict):
        return str(value)
    for key in ("text", "display", "reference", "value", "code"):
        if isinstance(value.get(key), str):
            return str(value[key])
    if "coding" in value:
        return _said(value["coding"])
    if "identifier" in value:
        return _said(value["identifier"])
    if "start" in value or "end" in value:
        return f"{value.get('start', '…')} to {value.get('end', '…')}"
    return ", ".join(filter(None, (_said(v) for k, v in value.items() if k != "extension")))


def narrative(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A generated narrative: the resource's type and id, then each element in a few words."""
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(said)}</td></tr>"
        for name, value in resource.items()
        if name not in _UNSAID and (said := _said(value)))
    title = html.escape(f"{resource['resourceType']} {resource.get('id', '')}".strip())
    return {"status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p><b>{title}</b></p>'
                   f"<table>{rows}</table></div>"}


def with_text(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with its generated narrative (after ``meta``, where FHIR puts it)."""
    if "text" in resource:
        return resource
    text = narrative(resource)
    head: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id", "meta")
                            if k in resource}
    return {**head, "text": text, **{k: v for k, v in resource.items() if k not in head}}


# -- Reads and versions ------------------------------------------------------------------------


def etag(version: int | str) -> str:
    return f'W/"{version}"'


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}


def version_headers(resource: Mapping[str, Any]) -> dict[str, str]:
    """``ETag`` (its ``meta.versionId``) and ``Last-Modified`` of a resource, as a read and
    a write (create, update) answer them."""
    meta = resource.get("meta") or {}
    headers: dict[str, str] = {}
    if "versionId" in meta:
        headers["ETag"] = etag(meta["versionId"])
    if "lastUpdated" in meta:
        changed = datetime.fromisoformat(meta["lastUpdated"].replace("Z", "+00:00"))
        headers["Last-Modified"] = changed.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


def read_response(request: Request, resource: dict[str, Any], *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    """One resource with its narrative, ``ETag`` (its ``meta.versionId``) and
    ``Last-Modified``; 304 when the client's ``If-None-Match`` already names this version."""
    meta = resource.get("meta") or {}
    wanted = request.headers.get("if-none-match")
    if ("versionId" in meta and wanted and status == 200
            and ({"*", str(meta["versionId"])} & _tags(wanted))):
        return Response(status_code=304,
                        headers={**(headers or {}), "ETag": etag(meta["versionId"])})
    return FhirResponse(with_text(resource), status_code=status,
                        headers={**(headers or {}), **version_headers(resource)})


def version_number(text: str) -> int:
    """A version id from a path or an ``If-Match`` (``W/"3"``, ``"3"`` or ``3``)."""
    bare = text.strip().removeprefix("W/").strip('"')
    if not bare.isdigit() or len(bare) > 9 or int(bare) < 1:
        raise Problem(404 if text == bare else 400, "No such version.", kind="not-found")
    return int(bare)


def history(base: str, resource_type: str, versions: Sequence[dict[str, Any]], *,
            self_url: str, next_url: str | None = None,
            total: int | None = None) -> dict[str, Any]:
    """A history Bundle of one resource's versions, newest first, each with the interaction
    that made it (version 1 a create, later ones updates)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    entries = []
    for resource in versions:
        meta = resource.get("meta") or {}
        first = str(meta.get("versionId")) == "1"
        entries.append({
            "fullUrl": f"{base}/{resource_type}/{resource['id']}",
            "resource": with_text(resource),
            "request": {"method": "POST" if first else "PUT",
                        "url": resource_type if first else f"{resource_type}/{resource['id']}"},
            "response": {"status": "201 Created" if first else "200 OK",
                         "etag": etag(meta.get("versionId", "")),
                         **({"lastModified": meta["lastUpdated"]}
                            if "lastUpdated" in meta else {})},
        })
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history",
                              "timestamp": instant(datetime.now(UTC)), "link": links}
    if total is not None:
        bundle["total"] = total
    bundle["entry"] = entries
    return bundle


# -- Searches ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchParam:
    """A search parameter a resource type answers to, as its CapabilityStatement lists it."""

    name: str
    type: str
    documentation: str

    def declared(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "documentation": self.documentation}


ID = SearchParam("_id", "token", "Logical ids, comma-separated")
LAST_UPDATED = SearchParam(
    "_lastUpdated", "date",
    "When the resource last changed; prefixes eq, gt, ge, lt, le, sa, eb; repeat for a range")
#: Parameters that shape the answer rather than select: always understood.
_RESULT_PARAMS = {"_count", "_summary", "_total", "_format", "_cursor"}


@dataclass
class Search:
    """A search as understood: the values of each known parameter, the page asked for, and
    what the ``self`` link repeats (the parameters used, never one that was ignored)."""

    resource_type: str
    base: str
    values: dict[str, list[str]] = field(default_factory=dict)
    kept: list[tuple[str, str]] = field(default_factory=list)
    count: int = 50
    cursor: str | None = None
    #: ``_summary=count`` (or ``_count=0``): the total only, no entries.
    count_only: bool = False
    #: ``_total`` as asked: ``none``, ``estimate``, ``accurate``, or "" when not asked.
    total: str = ""
    ids: list[str] | None = None
    since: datetime | None = None
    before: datetime | None = None

    def first(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[0] if values else None

    def codes(self, name: str) -> set[str] | None:
        """The codes a token parameter asks for: any of a comma list, each repetition
        narrowing further (None when the parameter is not given)."""
        found: set[str] | None = None
        for value in self.values.get(name, []):
            asked = {code for code in value.split(",") if code}
            found = asked if found is None else found & asked
        return found

    def referenced(self, names: Sequence[str], resource_type: str, *,
                   at_most: int = 100) -> set[str] | None:
        """The ids reference parameters ``names`` name (``Type/id``, a URL ending so, or
        ``id``): any of a comma list, each parameter and repetition narrowing further (None
        when none is given); 400 beyond ``at_most`` ids."""
        found: set[str] | None = None
        for name in names:
            for value in self.values.get(name, []):
                asked = {reference_id(ref, resource_type, name)
                         for ref in value.split(",") if ref}
                if len(asked) > at_most:
                    raise Problem(400, f"{name} names at most {at_most} {resource_type}s.",
                                  kind="invalid-search")
                found = asked if found is None else found & asked
        return found

    @property
    def page_size(self) -> int:
        """How many matches the page holds: none when only the count is asked for."""
        return 0 if self.count_only else self.count

    @property
    def wants_total(self) -> bool:
        """Whether the Bundle must carry ``total`` (a count the service must make)."""
        return self.count_only or self.total in {"accurate", "estimate"}

    def url(self, **extra: str) -> str:
        return f"{self.base}/{self.resource_type}?{urlencode([*self.kept, *extra.items()])}"

    def history_url(self, record_id: str, **extra: str) -> str:
        """A link to one record's history with the parameters used (and ``extra``)."""
        query = urlencode([*self.kept, *extra.items()])
        return (f"{self.base}/{self.resource_type}/{record_id}/_history"
                + (f"?{query}" if query else ""))

    def bundle(self, resources: Iterable[dict[str, Any]], *, next_cursor: str | None = None,
               total: int | None = None) -> dict[str, Any]:
        """The searchset: a ``self`` link, a ``next`` link while there is more, an entry with
        ``fullUrl`` and narrative per match, and ``total`` when asked for or plain."""
        links = [{"relation": "self", "url": self.url()}]
        if next_cursor is not None and not self.count_only:
            links.append({"relation": "next", "url": self.url(_cursor=next_cursor)})
        entries = [] if self.count_only else [
            match(with_text(r), f"{self.base}/{self.resource_type}/{r['id']}") for r in resources]
        if total is None and self.cursor is None and next_cursor is None and not self.count_only:
            total = len(entries)  # one page holds them all
        if self.total == "none" and not self.count_only:
            total = None
        return searchset(entries, links=links, total=total)


def search_openapi(params: Sequence[SearchParam] = ()) -> dict[str, Any]:
    """A search route's ``openapi_extra``: its parameters and the paging ones, described for
    clients but read by ``parse_search`` (so a bad value is FHIR's 400, never a 422)."""
    paging = [("_count", "integer", "Matches a page (0: the count only); capped at the most"),
              ("_summary", "string", "count: the total only"),
              ("_total", "string", "accurate: the Bundle says how many match"),
              ("_cursor", "string", "From the Bundle's next link")]
    return {"parameters": [
        *({"name": p.name, "in": "query", "required": False, "description": p.documentation,
           "schema": {"type": "string"}} for p in params),
        *({"name": name, "in": "query", "required": False, "description": about,
           "schema": {"type": kind}} for name, kind, about in paging)]}


def strict_handling(request: Request) -> bool:
    """``Prefer: handling=strict``: an unknown parameter is an error, not ignored."""
    return any(part.strip().lower() == "handling=strict"
               for part in request.headers.get("prefer", "").replace(",", ";").split(";"))


def parse_search(request: Request, resource_type: str, params: Sequence[SearchParam], *,
                 default_count: int, max_count: int) -> Search:
    """The query of a search as a ``Search``: the parameters ``params`` names, ``_count``
    honoured up to ``max_count`` (capped beyond it), ``_summary``, ``_total`` and the cursor.
    An unknown parameter is dropped, or refused with 400 under ``Prefer: handling=strict``."""
    known = {p.name for p in params}
    search = Search(resource_type, public_base(request), count=default_count)
    strict = strict_handling(request)
    for name, value in request.query_params.multi_items():
        if name in known:
            if not value:
                raise Problem(400, f"{name} has no value.", kind="invalid-search")
            search.values.setdefault(name, []).append(value)
            search.kept.append((name, value))
        elif name == "_count":
            search.count = _count(value, max_count)
            search.count_only = search.count_only or search.count == 0
            search.kept.append((name, str(search.count)))
        elif name == "_summary":
            if value == "count":
                search.count_only = True
            elif value != "false":
                _unsupported(strict, "_summary is offered as count or false.")
                continue
            search.kept.append((name, value))
        elif name == "_total":
            if value not in {"none", "estimate", "accurate"}:
                raise Problem(400, "_total is none, estimate or accurate.", kind="invalid-search")
            search.total = value
            search.kept.append((name, value))
        elif name == "_cursor":
            search.cursor = value or None
        elif name == "_format":
            search.kept.append((name, value))
        else:
            _unsupported(strict, f"{resource_type} is not searched by {name}.")
    if ids := search.values.get(ID.name):
        search.ids = [i for value in ids for i in value.split(",") if i]
    if dates := search.values.get(LAST_UPDATED.name):
        search.since, search.before = date_bounds(dates, LAST_UPDATED.name)
    return search


def _unsupported(strict: bool, detail: str) -> None:
    if strict:
        raise Problem(400, f"{detail} (Prefer: handling=strict)", kind="invalid-search")


def _count(value: str, max_count: int) -> int:
    if not value.isdigit():
        raise Problem(400, "_count is a whole number, 0 or more.", kind="invalid-search")
    return min(int(value), max_count)


_DATE_VALUE = re.compile(
    r"(eq|ne|gt|ge|lt|le|sa|eb|ap)?"
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?")


def _period(match: re.Match[str]) -> tuple[datetime, datetime]:
    """The span a FHIR date value of any precision (year to fraction of a second) stands for."""
    year, month, day, clock = match.group(2, 3, 4, 5)
    if clock:
        text = f"{year}-{month}-{day}{clock}".replace("Z", "+00:00")
        start = datetime.fromisoformat(text)
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        # As precise as it is written: ``.123`` is that whole millisecond, as a client read
        # it in ``meta.lastUpdated``.
        fraction = re.search(r"\.(\d+)", clock)
        seconds = clock.count(":") >= 2
        step = (timedelta(microseconds=10 ** (6 - len(fraction[1]))) if fraction else
                timedelta(seconds=1) if seconds else timedelta(minutes=1))
        return start.astimezone(UTC), start.astimezone(UTC) + step
    if day:
        start = datetime(int(year), int(month), int(day), tzinfo=UTC)
        return start, start + timedelta(days=1)
    if month:
        start = datetime(int(year), int(month), 1, tzinfo=UTC)
        following = date(int(year) + (int(month) == 12), int(month) % 12 + 1, 1)
        return start, datetime(following.year, following.month, 1, tzinfo=UTC)
    return datetime(int(year), 1, 1, tzinfo=UTC), datetime(int(year) + 1, 1, 1, tzinfo=UTC)


def date_bounds(values: Sequence[str], name: str = "date"
                ) -> tuple[datetime | None, datetime | None]:
    """FHIR date search values (``ge2026-01``, ``lt2026-02-01T00:00:00Z``, repeated for a
    range) as one half-open range [since, before)."""
    since: datetime | None = None
    before: datetime | None = None
    for value in values:
        match = _DATE_VALUE.fullmatch(value)
        if match is None:
            raise Problem(400, f"{name} must look like ge2026-01-31 or lt2026-01-31T12:00:00Z.",
                          kind="invalid-search")
        prefix = match.group(1) or "eq"
        if prefix in {"ne", "ap"}:
            raise Problem(400, f"{name} is searched with eq, gt, ge, lt, le, sa or eb.",
                          kind="invalid-search")
        try:
            start, end = _period(match)
        except (ValueError, OverflowError) as exc:
            raise Problem(400, f"{name} is not a valid date or time.",
                          kind="invalid-search") from exc
        lower = {"eq": start, "ge": start, "gt": end, "sa": end}.get(prefix)
        upper = {"eq": end, "le": end, "lt": start, "eb": start}.get(prefix)
        if lower is not None and (since is None or lower > since):
            since = lower
        if upper is not None and (before is None or upper < before):
            before = upper
    return since, before


def reference_type(value: str) -> str:
    """The type a reference search value names (``Type/id`` or a URL ending so); "" for a
    bare id, which may be of any type."""
    return value.rstrip("/").rpartition("/")[0].rsplit("/", 1)[-1]


def reference_id(value: str, resource_type: str, name: str) -> str:
    """The id a reference search value names: ``Type/id``, a URL ending so, or a bare id."""
    kind, _, ident = value.rstrip("/").rpartition("/")
    if (kind and reference_type(value) != resource_type) or not ident or len(ident) > 64:
        raise Problem(400, f"{name} must be {resource_type}/<id> or <id>.", kind="invalid-search")
    return ident


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


# -- Provenance --------------------------------------------------------------------------------


def signed_content(content_hash: str) -> str:
    """A Provenance signature's data: the canonical content hash the signatory agreed to."""
    return base64.b64encode(content_hash.encode()).decode()


#: A Provenance id, ``<record id>-v<version>``: the record and the version its signatures agree.
_PROVENANCE_ID = re.compile(r"([A-Za-z0-9.-]{1,36})-v([1-9][0-9]{0,8})")


def provenance_id(record_id: str, version: int) -> str:
    return f"{record_id[:36]}-v{version}"


def provenance_target(provenance: str) -> tuple[str, int]:
    """The record id and version a Provenance id names; 404 for an id we never make."""
    found = _PROVENANCE_ID.fullmatch(provenance)
    if found is None:
        raise Problem(404, "No Provenance with that id is available to you.", kind="not-found")
    return found[1], int(found[2])


def provenance(target: str, version: int, *, given: Sequence[Signature],
               agents: Sequence[dict[str, Any]], signatures: Sequence[dict[str, Any]],
               activity: str | None = None) -> dict[str, Any]:
    """The signatures agreeing one version of ``target`` (``Type/id``) as a Provenance.

    ``given`` is every signature the version was given, withdrawn ones too; ``agents`` and
    ``signatures`` show those still standing, so ``recorded`` is the latest of those. A
    signature is only ever made and withdrawn, once each, so counting those changes gives a
    version id that moves whenever what the Provenance says does, and never goes back.
    """
    standing = [s for s in given if not s.withdrawn]
    changes = [*(s.signed_at for s in given), *(s.withdrawn_at for s in given if s.withdrawn_at)]
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_id(target.rsplit("/", 1)[-1], version),
        "meta": {"versionId": str(len(changes)), "lastUpdated": instant(max(changes))},
        "target": [{"reference": f"{target}/_history/{version}"}],
        "recorded": instant(max(s.signed_at for s in standing)),
    }
    if activity is not None:
        resource["activity"] = {"text": activity}
    return {**resource, "agent": list(agents), "signature": list(signatures)}


def provenance_capability(params: Sequence[SearchParam]) -> dict[str, Any]:
    """Provenance in a service of co-signed records: read by id and searched by ``params``.
    Its version id is kept current (see ``provenance``); past versions are not."""
    return {"type": "Provenance", "versioning": "versioned", "readHistory": False,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": searched_by(params)}


# -- Patients ----------------------------------------------------------------------------------


def patient_reference(person: str, settings: Settings) -> dict[str, Any]:
    """A reference to a person as both a literal reference and the EHR's identifier, so an
    EHR can match them by its own id whether or not it resolves the reference."""
    return {"reference": f"Patient/{person}",
            "identifier": {"system": settings.fhir_patient_identifier_system, "value": person}}


def patient_resource(person: str, settings: Settings) -> dict[str, Any]:
    """The platform's Patient: the person's id and the EHR identifier it is, nothing more (the
    EHR is the master index and holds everything demographic)."""
    return {"resourceType": "Patient", "id": person,
            # Nothing about the person changes here: there is one version.
            "meta": {"versionId": "1"},
            "identifier": [{"use": "usual", "system": settings.fhir_patient_identifier_system,
                            "value": person}],
            "active": True}


IDENTIFIER = SearchParam("identifier", "token",
                         "The EHR's identifier, system|value (the system the deployment "
                         "configures)")
PATIENT_SEARCH = (ID, IDENTIFIER)
#: The most people one Patient search may name (ids and identifiers together).
PATIENTS_AT_MOST = 100
#: Whether this service holds records of the person that the caller may read.
HoldsPerson = Callable[[RecordAccess, str], Awaitable[bool]]


def patient_capability() -> dict[str, Any]:
    return {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": searched_by(PATIENT_SEARCH)}


def _people(search: Search, settings: Settings) -> list[str]:
    """The people a Patient search names, by ``_id`` or ``identifier`` in our system."""
    people = list(search.ids or [])
    for value in search.values.get(IDENTIFIER.name, []):
        system, bar, person = value.rpartition("|")
        if not bar or system == settings.fhir_patient_identifier_system:
            people.append(person)
        # An identifier in another system names nobody here: the EHR's ids are the only ones.
    if ID.name not in search.values and IDENTIFIER.name not in search.values:
        raise Problem(400, "Patients are searched by _id or identifier=system|value.",
                      kind="invalid-search")
    if len(people) > PATIENTS_AT_MOST:
        raise Problem(400, f"A Patient search names at most {PATIENTS_AT_MOST} people.",
                      kind="invalid-search")
    return list(dict.fromkeys(p for p in people if p and len(p) <= 64))


async def holds_records_of(access: RecordAccess, person: str, *, resource: str,
                           person_column: Any, team_column: Any) -> bool:
    """Whether the caller may read at least one of the person's ``resource`` records (rows of
    ``person_column``'s table, kept to the caller's reach as a list is): what makes a
    service answer for that person's Patient. Needs the Patient read scope; audited."""
    principal = access.principal
    require_scope(principal, "Patient", Verb.read)
    reach = reach_condition(reach_of(principal, resource, Verb.read),
                            person_column=person_column, team_column=team_column,
                            service_user_id=person, team_id=None)
    held = False
    if reach is not False:
        query = select(person_column).where(person_column == person)
        if reach is not None:
            query = query.where(reach)
        held = bool(await access.kit.reads.all(query.limit(1)))
    access.audit(record_type="Patient", record_id=person[:64], service_user_id=person,
                 action="read", outcome=Outcome.allowed if held else Outcome.denied)
    return held


def add_patient_routes(router: APIRouter, holds: HoldsPerson) -> None:
    """``Patient`` read and search (by ``_id`` and ``identifier``) for each person this service
    holds records of, under the same access rules as those records: a person the caller may
    not read is answered as one that does not exist."""

    @router.get("/Patient/{person}", response_model=None, responses=FHIR_OK,
                summary="Read a Patient: a person whose records this service holds")
    async def read_patient(request: Request, access: AccessDep, settings: SettingsDep,
                           person: Annotated[str, Path(min_length=1, max_length=64)]
                           ) -> Response:
        if not await holds(access, person):
            raise Problem(404, "No Patient with that id is available to you.",
                          kind="not-found")
        return read_response(request, patient_resource(person, settings))

    @router.get("/Patient", response_model=None, responses=FHIR_OK,
                summary="Search Patients by _id or identifier (searchset Bundle)")
    async def search_patients(request: Request, access: AccessDep,
                              settings: SettingsDep) -> FhirResponse:
        search = parse_search(request, "Patient", PATIENT_SEARCH,
                              default_count=PATIENTS_AT_MOST, max_count=PATIENTS_AT_MOST)
        found = [p for p in _people(search, settings) if await holds(access, p)]
        return FhirResponse(search.bundle(
            (patient_resource(p, settings) for p in found[:search.count]),
            total=len(found)))


# -- The audit trail -----------------------------------------------------------------------------

#: What every service's audit trail answers to as ``AuditEvent`` (``audit_export.py``), and
#: what the gateway fans out: the one list the search parses and the statements declare.
AUDIT_EVENT_SEARCH = (
    ID,
    SearchParam("entity", "reference",
                "The record accessed, as Type/id (CarePlan, Goal, RiskAssessment, "
                "Practitioner, CareTeam, AuditEvent); Patient/<id> finds every entry about "
                "that person"),
    SearchParam("patient", "reference", "The person the record is about (Patient/<id> or <id>)"),
    SearchParam("agent", "reference",
                "Who acted: their token's sub, bare or as Practitioner/<sub> or Patient/<sub>"),
    SearchParam("date", "date",
                "When it was recorded; prefixes eq, gt, ge, lt, le, sa, eb; repeat for a range"),
    SearchParam("outcome", "token", "0 (allowed) or 4 (denied)"),
)


def audit_capability() -> dict[str, Any]:
    return {"type": "AuditEvent", "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": searched_by(AUDIT_EVENT_SEARCH)}


# -- Discovery ---------------------------------------------------------------------------------

#: The SMART v2 scopes the platform understands (``auth.py``), for clients to ask for.
SMART_SCOPES = ["openid", "fhirUser", "launch", "launch/patient", "offline_access",
                "patient/*.rs", "user/*.rs", "user/*.cruds", "system/*.rs",
                "patient/Goal.rs", "patient/Goal.cu", "patient/CarePlan.rs",
                "patient/RiskAssessment.rs", "patient/Patient.rs", "user/Goal.cruds",
                "user/CarePlan.rs", "user/RiskAssessment.rs", "user/Patient.rs",
                "user/AuditEvent.rs", "system/Goal.rs", "system/CarePlan.rs",
                "system/RiskAssessment.rs", "system/Patient.rs", "system/AuditEvent.rs"]


def oauth_endpoints(settings: Settings) -> tuple[str, str]:
    """The identity provider's authorization and token endpoints, as configured."""
    issuer = settings.jwt_issuer.rstrip("/")
    return (settings.smart_authorization_endpoint or f"{issuer}/authorize",
            settings.smart_token_endpoint or f"{issuer}/token")


def smart_configuration(settings: Settings) -> dict[str, Any]:
    """SMART App Launch 2.0 discovery: where to get a token and what may be asked for."""
    authorize, token = oauth_endpoints(settings)
    document: dict[str, Any] = {
        "issuer": settings.jwt_issuer,
        "authorization_endpoint": authorize,
        "token_endpoint": token,
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SMART_SCOPES,
        "capabilities": ["launch-standalone", "launch-ehr", "client-public",
                         "client-confidential-symmetric", "client-confidential-asymmetric",
                         "context-standalone-patient", "context-ehr-patient",
                         "permission-patient", "permission-user", "permission-v2",
                         "sso-openid-connect"],
    }
    if settings.jwks_url:
        document["jwks_uri"] = settings.jwks_url
    return document


def security(settings: Settings) -> dict[str, Any]:
    """A CapabilityStatement's ``rest.security``: SMART on FHIR, with its OAuth endpoints."""
    authorize, token = oauth_endpoints(settings)
    return {
        "extension": [{"url": OAUTH_URIS, "extension": [
            {"url": "authorize", "valueUri": authorize},
            {"url": "token", "valueUri": token}]}],
        "service": [concept(SECURITY_SERVICE, "SMART-on-FHIR")],
        "description": "OAuth 2 bearer tokens (JWT) with SMART v2 scopes: patient/, user/ and, "
                       "for backend services (client_credentials), system/.",
    }


def capability_statement(*, service: str, resources: Sequence[dict[str, Any]],
                         settings: Settings) -> dict[str, Any]:
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
        "rest": [{"mode": "server", "security": security(settings),
                  "resource": list(resources)}],
    }


def searched_by(params: Sequence[SearchParam]) -> list[dict[str, str]]:
    """A CapabilityStatement's ``searchParam`` list: exactly what a search answers to."""
    return [p.declared() for p in params]


def fhir_router(service: str,
                capability: Callable[[Settings], Sequence[dict[str, Any]]]) -> APIRouter:
    """A service's ``/fhir`` router: JSON only (406 otherwise), ``/metadata`` with the
    resources ``capability`` lists and the audit trail (every service app serves it, see
    ``app.py``), and SMART discovery."""
    router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse,
                       dependencies=[Depends(acceptable_format)])

    @router.get("/metadata", response_model=None, responses=FHIR_OK,
                summary=f"CapabilityStatement of the {service} service")
    async def metadata(settings: SettingsDep) -> FhirResponse:
        return FhirResponse(capability_statement(service=service, settings=settings,
                                                 resources=[*capability(settings),
                                                            audit_capability()]))

    @router.get("/.well-known/smart-configuration", response_model=None,
                response_class=JSONResponse,
                summary="SMART on FHIR discovery: the authorization server and scopes")
    async def smart(settings: SettingsDep) -> JSONResponse:
        return JSONResponse(smart_configuration(settings))

    return router
