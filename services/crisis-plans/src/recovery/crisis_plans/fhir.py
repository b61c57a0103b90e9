"""FHIR R4 CarePlan, Provenance and Patient: the mapping from our crisis plans, their versions
and signatures, and the ``/fhir`` read, vread, history, search and metadata routes.

Our own code systems and extensions live under ``https://recovery-platform.org/fhir/``;
``docs/fhir-mapping.md`` lists them.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from recovery.common import fhir
from recovery.common.cosign import Signature
from recovery.common.deps import AccessDep, SettingsDep
from recovery.common.fhir import (
    BASE,
    FHIR_OK,
    TEAM,
    TEAM_SYSTEM,
    FhirResponse,
    SearchParam,
    instant,
    patient_reference,
    provenance,
    signed_content,
)
from recovery.common.pagination import decode_version_cursor, encode_cursor
from recovery.common.problems import Problem, problem_responses
from recovery.common.settings import Settings
from recovery.crisis_plans import rules, service
from recovery.crisis_plans.models import (
    Party,
    PlanContent,
    PlanPublic,
    PlanStatus,
    SignaturePublic,
    VersionPublic,
)

SNOMED = "http://snomed.info/sct"
SECTION_SYSTEM = f"{BASE}/CodeSystem/crisis-plan-section"
PLAN_SECTION = f"{BASE}/StructureDefinition/crisis-plan-section"
CONTENT_HASH = f"{BASE}/StructureDefinition/content-hash"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

#: FHIR CarePlan.status for where the newest version stands.
CARE_PLAN_STATUS = {PlanStatus.draft: "draft", PlanStatus.agreed: "active",
                    PlanStatus.withdrawn: "revoked",
                    PlanStatus.entered_in_error: "entered-in-error"}
#: Every code of FHIR's request-status value set: those we never give match nothing.
REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed",
                            "entered-in-error", "unknown"})
#: ASTM E1762 signature types: the person consents, clinicians sign as verifiers.
SIGNATURE_CODES = {Party.service_user: ("1.2.840.10065.1.12.1.7", "Consent Signature"),
                   Party.care_coordinator: ("1.2.840.10065.1.12.1.5", "Verification Signature"),
                   Party.psychiatrist: ("1.2.840.10065.1.12.1.5", "Verification Signature")}

PATIENT = SearchParam("patient", "reference",
                      "The service user: Patient/<id>, a URL ending so, or <id>; "
                      "comma-separated for any of several")
SUBJECT = SearchParam("subject", "reference",
                      "The same as patient: a crisis plan's subject is its service user")
STATUS = SearchParam("status", "token",
                     "draft, active, revoked or entered-in-error; comma-separated")
#: What a CarePlan search answers to, and its CapabilityStatement lists: nothing else.
CARE_PLAN_SEARCH = (PATIENT, SUBJECT, STATUS, fhir.ID, fhir.LAST_UPDATED)
TARGET = SearchParam("target", "reference",
                     "The CarePlan whose versions were signed: CarePlan/<id>, a URL ending "
                     "so, or <id>")
PROVENANCE_SEARCH = (TARGET,)


def _who(party: Party | str, signatory: str, person: str,
         settings: Settings) -> dict[str, Any]:
    if party == Party.service_user:
        return patient_reference(person, settings)
    return {"reference": f"Practitioner/{signatory}"}


def _section_notes(content: PlanContent) -> list[dict[str, Any]]:
    """Every item of every section as a note tagged with its section, in plan order."""
    notes: list[dict[str, Any]] = []
    for section, value in content.model_dump(mode="json").items():
        if section == "review_on" or value in (None, []):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            text = item if isinstance(item, str) else "; ".join(
                f"{key}: {val}" for key, val in item.items() if val not in (None, [], False))
            notes.append({"extension": [{"url": PLAN_SECTION, "valueCoding": {
                "system": SECTION_SYSTEM, "code": section}}], "text": text})
    return notes


def _care_plan(plan: PlanPublic, *, version: int, status: PlanStatus, content: PlanContent,
               content_hash: str, signatures: Sequence[SignaturePublic],
               updated_at: datetime, settings: Settings) -> dict[str, Any]:
    """One version of a plan as a FHIR R4 CarePlan (a mental health crisis plan)."""
    person = plan.service_user_id
    contributors = [patient_reference(person, settings)]
    contributors += [_who(s.party, s.signatory, person, settings) for s in signatures
                     if s.party is not Party.service_user]
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": plan.id,
        "meta": {"versionId": str(version), "lastUpdated": instant(updated_at)},
        "extension": [
            {"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM, "value": plan.team_id}},
            {"url": CONTENT_HASH, "valueString": content_hash},
        ],
        "status": CARE_PLAN_STATUS[status],
        "intent": "plan",
        "category": [{"coding": [{"system": SNOMED, "code": "736253002",
                                  "display": "Mental health crisis plan"}]}],
        "title": "Joint crisis plan",
        "subject": patient_reference(person, settings),
        "created": instant(plan.created_at),
        "author": (patient_reference(person, settings) if plan.created_by == person
                   else {"reference": f"Practitioner/{plan.created_by}"}),
        "contributor": contributors,
        "note": _section_notes(content),
    }
    if content.review_on is not None:
        resource["period"] = {"end": content.review_on.isoformat()}
    return resource


def care_plan_resource(plan: PlanPublic, settings: Settings) -> dict[str, Any]:
    """The plan as it stands (its newest version) as a CarePlan."""
    return _care_plan(plan, version=plan.version, status=plan.status, content=plan.content,
                      content_hash=plan.content_hash, signatures=plan.signatures,
                      updated_at=plan.updated_at, settings=settings)


def _cosigned(signature: SignaturePublic) -> Signature:
    return Signature(signatory=signature.signatory, party=signature.party.value,
                     version=signature.version, content_hash=signature.content_hash,
                     signed_at=signature.signed_at, withdrawn_at=signature.withdrawn_at)


def past_care_plan_resource(plan: PlanPublic, version: VersionPublic, replaced_at: datetime,
                            settings: Settings) -> dict[str, Any]:
    """A version a later one replaced, as it stood then: its content, its signatures and the
    status they gave it, last changed by the latest of them."""
    then = rules.signatures_then([_cosigned(s) for s in version.signatures], replaced_at)
    status = rules.past_status(then, version=version.version,
                               version_hash=version.content_hash,
                               required=[p.value for p in plan.required_parties])
    changes = [version.recorded_at, *(s.signed_at for s in then),
               *(s.withdrawn_at for s in then if s.withdrawn_at)]
    return _care_plan(plan, version=version.version, status=status, content=version.content,
                      content_hash=version.content_hash,
                      signatures=[SignaturePublic.model_validate(s, from_attributes=True)
                                  for s in then],
                      updated_at=max(changes), settings=settings)


def version_resources(found: service.PlanVersions, settings: Settings) -> list[dict[str, Any]]:
    """The versions found, newest first, each as the CarePlan it was (the newest as the
    plan stands, exactly as a read gives it)."""
    return [care_plan_resource(found.plan, settings) if v.version == found.plan.version
            else past_care_plan_resource(found.plan, v, found.replaced_at[v.version], settings)
            for v in found.versions]


def provenance_resource(plan: PlanPublic, version: VersionPublic,
                        settings: Settings) -> dict[str, Any] | None:
    """The agreement of one version: one signature per party, bound to its content hash."""
    standing = [s for s in version.signatures if s.withdrawn_at is None]
    if not standing:
        return None
    digest = signed_content(version.content_hash)
    person = plan.service_user_id
    return provenance(
        f"CarePlan/{plan.id}", version.version,
        given=[_cosigned(s) for s in version.signatures],
        agents=[{"type": {"coding": [{"system": PARTICIPATION, "code": "attester"}]},
                 "role": [{"text": s.party.value}],
                 "who": _who(s.party, s.signatory, person, settings)} for s in standing],
        signatures=[{
            "type": [{"system": SIGNATURE_TYPE, "code": SIGNATURE_CODES[s.party][0],
                      "display": SIGNATURE_CODES[s.party][1]}],
            "when": instant(s.signed_at),
            "who": _who(s.party, s.signatory, person, settings),
            # The signature binds the version's content hash, carried here as its data.
            "sigFormat": "text/plain",
            "data": digest,
        } for s in standing])


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: CarePlan with its versions, Provenance, Patient."""
    return [
        {"type": "CarePlan", "versioning": "versioned", "readHistory": True,
         "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "history-instance"},
                         {"code": "search-type"}],
         "searchParam": fhir.searched_by(CARE_PLAN_SEARCH)},
        fhir.provenance_capability(PROVENANCE_SEARCH),
        fhir.patient_capability(),
    ]


router = fhir.fhir_router("crisis-plans", capability_statement)
fhir.add_patient_routes(router, service.holds_plans_of)

PlanId = Annotated[str, Path(min_length=1, max_length=64)]
#: Any text: an id that is not ``<plan id>-v<version>`` is a 404, as FHIR reads answer.
ProvenanceId = Annotated[str, Path(description="<plan id>-v<version>")]
VersionId = Annotated[str, Path(min_length=1, max_length=12,
                                description="The version (meta.versionId)")]
_READ = {**FHIR_OK, 304: {"description": "Not Modified: If-None-Match names this version"},
         **problem_responses(404, 406)}
_SEARCH = {**FHIR_OK, **problem_responses(400, 406)}


def _plan_search(search: fhir.Search) -> service.PlanSearch:
    """The plans a CarePlan search asks for (every status, entered-in-error included, so an
    EHR that follows ``_lastUpdated`` learns of a retraction)."""
    codes = search.codes(STATUS.name)
    if codes is not None and not codes <= REQUEST_STATUS:
        raise Problem(400, "status holds CarePlan status codes: draft, active, revoked, "
                           "entered-in-error.", kind="invalid-search")
    statuses = (None if codes is None else
                frozenset(s for s, code in CARE_PLAN_STATUS.items() if code in codes))
    people = search.referenced((PATIENT.name, SUBJECT.name), "Patient",
                               at_most=fhir.PATIENTS_AT_MOST)
    return service.PlanSearch(
        people=None if people is None else frozenset(people), statuses=statuses,
        ids=None if search.ids is None else frozenset(search.ids),
        changed_since=search.since, changed_before=search.before,
        include_entered_in_error=True)


@router.get("/CarePlan", response_model=None, responses=_SEARCH,
            openapi_extra=fhir.search_openapi(CARE_PLAN_SEARCH),
            summary="Search CarePlans (searchset Bundle of each plan's newest version)")
async def search_care_plans(request: Request, access: AccessDep,
                            settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "CarePlan", CARE_PLAN_SEARCH,
                               default_count=settings.page_size_default,
                               max_count=settings.page_size_max)
    found = await service.search_plans(access, _plan_search(search), cursor=search.cursor,
                                       limit=search.page_size, total=search.wants_total)
    plans = (PlanPublic.model_validate_json(document) for document in found.documents)
    return FhirResponse(search.bundle((care_plan_resource(p, settings) for p in plans),
                                      next_cursor=found.next_cursor, total=found.total))


@router.get("/CarePlan/{plan_id}", response_model=None, responses=_READ,
            summary="Read a CarePlan (its newest version)")
async def read_care_plan(request: Request, plan_id: PlanId, access: AccessDep,
                         settings: SettingsDep) -> Response:
    _, document = await service.read_plan_document(access, plan_id)
    return fhir.read_response(
        request, care_plan_resource(PlanPublic.model_validate_json(document), settings))


@router.get("/CarePlan/{plan_id}/_history/{version_id}", response_model=None,
            responses=_READ, summary="Read one version of a CarePlan as it was (vread)")
async def vread_care_plan(request: Request, plan_id: PlanId, version_id: VersionId,
                          access: AccessDep, settings: SettingsDep) -> Response:
    version = fhir.version_number(version_id)
    found = await service.read_versions(access, plan_id, newest=version, count=1,
                                        action="vread")
    if not found.versions or found.versions[0].version != version:
        raise Problem(404, "This CarePlan has no such version.", kind="not-found")
    return fhir.read_response(request, version_resources(found, settings)[0])


@router.get("/CarePlan/{plan_id}/_history", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404, 406)},
            openapi_extra=fhir.search_openapi(),
            summary="Every version of a CarePlan, newest first (history Bundle)")
async def care_plan_history(request: Request, plan_id: PlanId, access: AccessDep,
                            settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "CarePlan", (), default_count=fhir.PROVENANCE_PAGE,
                               max_count=fhir.PROVENANCE_VERSIONS)
    top = decode_version_cursor(search.cursor) if search.cursor else None
    found = await service.read_versions(access, plan_id, newest=top, count=search.page_size,
                                        action="read-history")
    lowest = found.versions[-1].version if found.versions else 1
    following = (encode_cursor(lowest - 1, plan_id)
                 if found.versions and lowest > 1 else None)
    return FhirResponse(fhir.history(
        search.base, "CarePlan", version_resources(found, settings),
        self_url=search.history_url(plan_id, **(
            {"_cursor": search.cursor} if search.cursor else {})),
        next_url=following and search.history_url(plan_id, _cursor=following),
        total=found.plan.version))


@router.get("/Provenance", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404, 406)},
            openapi_extra=fhir.search_openapi(PROVENANCE_SEARCH),
            summary="The signatures agreeing each version of a CarePlan (searchset Bundle)")
async def search_provenance(request: Request, access: AccessDep,
                            settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "Provenance", PROVENANCE_SEARCH,
                               default_count=fhir.PROVENANCE_PAGE,
                               max_count=fhir.PROVENANCE_VERSIONS)
    targets = search.values.get(TARGET.name, [])
    if len(targets) != 1 or "," in targets[0]:
        raise Problem(400, "Provenance is searched by one target: CarePlan/<id>.",
                      kind="invalid-search")
    plan_id = fhir.reference_id(targets[0], "CarePlan", TARGET.name)
    document = (await service.read_plan_document(access, plan_id))[1]
    plan = PlanPublic.model_validate_json(document)
    resources: list[dict[str, Any]] = []
    next_cursor = None
    if search.page_size:
        page = await service.list_versions(access, plan_id, cursor=search.cursor,
                                           limit=search.page_size)
        resources = [r for v in page.items if (r := provenance_resource(plan, v, settings))]
        next_cursor = page.next_cursor
    total = await service.signed_versions(access, plan_id) if search.wants_total else None
    return FhirResponse(search.bundle(resources, next_cursor=next_cursor, total=total))


@router.get("/Provenance/{provenance_id}", response_model=None, responses=_READ,
            summary="Read the Provenance of one CarePlan version: its standing signatures")
async def read_provenance(request: Request, provenance_id: ProvenanceId, access: AccessDep,
                          settings: SettingsDep) -> Response:
    plan_id, version = fhir.provenance_target(provenance_id)
    # The vread's own reading, under the same reach as a Provenance search.
    found = await service.read_versions(access, plan_id, newest=version, count=1,
                                        action="read-provenance")
    signed = next((provenance_resource(found.plan, v, settings) for v in found.versions
                   if v.version == version), None)
    if signed is None:
        raise Problem(404, "No Provenance with that id is available to you.", kind="not-found")
    return fhir.read_response(request, signed)
