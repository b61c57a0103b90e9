"""FHIR R4 RiskAssessment, Provenance and Patient: the mapping from our co-assessments, their
versions and signatures, and the ``/fhir`` routes. No ``prediction.probability`` and no
``qualitativeRisk``: risk is not a number (NICE NG225). The person's view of each area is the
assessment's basis.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Request
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
from recovery.risk import rules, service
from recovery.risk.models import (
    AssessmentContent,
    AssessmentPublic,
    AssessmentStatus,
    Party,
    SignaturePublic,
    VersionPublic,
    VersionStatus,
)
from recovery.risk.routes import refuse_predictive_scores

AREA_SYSTEM = f"{BASE}/CodeSystem/risk-area"
VIEWS_DIFFER = f"{BASE}/StructureDefinition/views-differ"
SIGNATURE_SYSTEM = "urn:iso-astm:E1762-95:2013"
CO_ASSESSMENT = {"text": "Risk co-assessment with the service user (no predictive score)"}

#: FHIR RiskAssessment.status (observation-status) for where the latest version stands.
RISK_STATUS = {service.Standing.draft: "preliminary", service.Standing.agreed: "final",
               service.Standing.entered_in_error: "entered-in-error"}
#: Every code of FHIR's observation-status value set: those we never give match nothing.
OBSERVATION_STATUS = frozenset({"registered", "preliminary", "final", "amended", "corrected",
                                "cancelled", "entered-in-error", "unknown"})

PATIENT = SearchParam("patient", "reference",
                      "The service user: Patient/<id>, a URL ending so, or <id>; "
                      "comma-separated for any of several")
SUBJECT = SearchParam("subject", "reference",
                      "The same as patient: a co-assessment's subject is its service user")
STATUS = SearchParam("status", "token",
                     "preliminary (not agreed, or no longer in force), final (agreed by both "
                     "and in force) or entered-in-error; comma-separated")
#: What a RiskAssessment search answers to, and its CapabilityStatement lists: nothing else.
RISK_ASSESSMENT_SEARCH = (PATIENT, SUBJECT, STATUS, fhir.ID, fhir.LAST_UPDATED)
TARGET = SearchParam("target", "reference",
                     "The RiskAssessment whose versions were signed: RiskAssessment/<id>, a "
                     "URL ending so, or <id>")
PROVENANCE_SEARCH = (TARGET,)


def _who(party: Party | str, signatory: str, service_user_id: str,
         settings: Settings) -> dict[str, Any]:
    if party == Party.service_user:
        return patient_reference(service_user_id, settings)
    return {"reference": f"Practitioner/{signatory}"}


def _risk_assessment(record: AssessmentPublic, *, version: int, status: str,
                     content: AssessmentContent, signatures: Sequence[SignaturePublic],
                     updated_at: datetime, settings: Settings) -> dict[str, Any]:
    """One version of a co-assessment as a FHIR R4 RiskAssessment."""
    person = patient_reference(record.service_user_id, settings)
    contained: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    mitigation: list[str] = []
    for index, area in enumerate(content.areas):
        code = {"coding": [{"system": AREA_SYSTEM, "code": area.area.value}],
                "text": area.area_name or area.area.value.replace("_", " ")}
        if area.service_user_view is not None:
            # Contained: no narrative and no meta of its own (FHIR's dom-1 and dom-4).
            contained.append({
                "resourceType": "Observation", "id": f"view-{index}", "status": "final",
                "code": code, "subject": person, "performer": [person],
                "valueString": area.service_user_view})
        if area.clinician_view is not None:
            notes.append({"text": f"{code['text']}: {area.clinician_view}"})
        if area.difference is not None:
            notes.append({"text": f"{code['text']} (views differ): {area.difference}"})
        mitigation.extend(area.strengths + area.protective_factors)
    clinicians = [s.signatory for s in signatures if s.party is Party.clinician]
    performer = clinicians[0] if clinicians else record.created_by
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": record.id,
        "meta": {"versionId": str(version), "lastUpdated": instant(updated_at)},
        "extension": [
            {"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM, "value": record.team_id}},
            *({"url": VIEWS_DIFFER,
               "valueCodeableConcept": {"coding": [{"system": AREA_SYSTEM, "code": a.value}]}}
              for a in rules.differences(content.areas)),
        ],
        "status": status,
        "code": CO_ASSESSMENT,
        "subject": person,
        "occurrenceDateTime": instant(updated_at),
        "performer": {"reference": f"Practitioner/{performer}"},
        "basis": [{"reference": f"#{item['id']}"} for item in contained],
    }
    if contained:
        resource["contained"] = contained
    else:
        resource.pop("basis")
    if mitigation:
        resource["mitigation"] = "; ".join(mitigation)
    if notes:
        resource["note"] = notes
    return resource


def risk_assessment_resource(assessment: AssessmentPublic,
                             settings: Settings) -> dict[str, Any]:
    """Our co-assessment as it stands (its latest version) as a FHIR R4 RiskAssessment."""
    standing = (service.Standing.entered_in_error
                if assessment.status is AssessmentStatus.entered_in_error
                else service.Standing.draft if assessment.version_status is VersionStatus.draft
                else service.Standing.agreed)
    return _risk_assessment(assessment, version=assessment.version,
                            status=RISK_STATUS[standing], content=assessment.content,
                            signatures=assessment.signatures,
                            updated_at=assessment.updated_at, settings=settings)


def _cosigned(signature: SignaturePublic) -> Signature:
    return Signature(signatory=signature.signatory, party=signature.party.value,
                     version=signature.version, content_hash=signature.content_hash,
                     signed_at=signature.signed_at, withdrawn_at=signature.withdrawn_at)


def past_risk_assessment_resource(assessment: AssessmentPublic, version: VersionPublic,
                                  replaced_at: datetime,
                                  settings: Settings) -> dict[str, Any]:
    """A version a later one replaced, as it stood then: its content, its signatures and the
    status they gave it, last changed by the latest of them."""
    then = rules.signatures_then([_cosigned(s) for s in version.signatures], replaced_at)
    status = rules.past_status(then, version=version.version,
                               version_hash=version.content_hash, areas=version.content.areas)
    standing = service.Standing.draft if status is VersionStatus.draft else (
        service.Standing.agreed)
    changes = [version.recorded_at, *(s.signed_at for s in then),
               *(s.withdrawn_at for s in then if s.withdrawn_at)]
    return _risk_assessment(assessment, version=version.version, status=RISK_STATUS[standing],
                            content=version.content,
                            signatures=[SignaturePublic.model_validate(s, from_attributes=True)
                                        for s in then],
                            updated_at=max(changes), settings=settings)


def version_resources(found: service.AssessmentVersions,
                      settings: Settings) -> list[dict[str, Any]]:
    """The versions found, newest first, each as the RiskAssessment it was (the latest as
    the record stands, exactly as a read gives it)."""
    latest = found.assessment.version
    return [risk_assessment_resource(found.assessment, settings) if v.version == latest
            else past_risk_assessment_resource(found.assessment, v,
                                               found.replaced_at[v.version], settings)
            for v in found.versions]


def provenance_resource(assessment_id: str, service_user_id: str, version: VersionPublic,
                        settings: Settings) -> dict[str, Any] | None:
    """One version's signatures as a Provenance: one agent and one signature per party (none
    while no signature stands)."""
    standing = [s for s in version.signatures if s.withdrawn_at is None]
    if not standing:
        return None
    return provenance(
        f"RiskAssessment/{assessment_id}", version.version,
        given=[_cosigned(s) for s in version.signatures],
        activity="agreed" if version.status is not VersionStatus.draft else "signed",
        agents=[{"type": {"text": s.party.value.replace("_", " ")},
                 "who": _who(s.party, s.signatory, service_user_id, settings)}
                for s in standing],
        signatures=[{
            "type": [{"system": SIGNATURE_SYSTEM, "code": "1.2.840.10065.1.12.1.7",
                      "display": "Consent Signature"}],
            "when": instant(s.signed_at),
            "who": _who(s.party, s.signatory, service_user_id, settings),
            "targetFormat": "application/json",
            "sigFormat": "text/plain",
            # What was signed: the version's canonical content hash.
            "data": signed_content(s.content_hash),
        } for s in standing])


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: RiskAssessment with its versions, Provenance,
    Patient."""
    return [
        {"type": "RiskAssessment", "versioning": "versioned", "readHistory": True,
         "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "history-instance"},
                         {"code": "search-type"}],
         "searchParam": fhir.searched_by(RISK_ASSESSMENT_SEARCH)},
        fhir.provenance_capability(PROVENANCE_SEARCH),
        fhir.patient_capability(),
    ]


router = fhir.fhir_router("risk", capability_statement)
# Every route added from here on refuses a score first, as REST does; the CapabilityStatement
# and SMART discovery, added by the kit above, stay open to callers without a token.
router.dependencies.append(Depends(refuse_predictive_scores))
fhir.add_patient_routes(router, service.holds_assessments_of)

AssessmentId = Annotated[str, Path(min_length=1, max_length=64)]
#: Any text: an id that is not ``<assessment id>-v<version>`` is a 404, as FHIR reads answer.
ProvenanceId = Annotated[str, Path(description="<assessment id>-v<version>")]
VersionId = Annotated[str, Path(min_length=1, max_length=12,
                                description="The version (meta.versionId)")]
_READ = {**FHIR_OK, 304: {"description": "Not Modified: If-None-Match names this version"},
         **problem_responses(404, 406, 422)}
_SEARCH = {**FHIR_OK, **problem_responses(400, 406, 422)}


def _assessment_search(search: fhir.Search) -> service.AssessmentSearch:
    """The co-assessments a RiskAssessment search asks for (entered-in-error included, so an
    EHR that follows ``_lastUpdated`` learns of a retraction)."""
    codes = search.codes(STATUS.name)
    if codes is not None and not codes <= OBSERVATION_STATUS:
        raise Problem(400, "status holds RiskAssessment status codes: preliminary, final, "
                           "entered-in-error.", kind="invalid-search")
    standing = (None if codes is None else
                frozenset(s for s, code in RISK_STATUS.items() if code in codes))
    people = search.referenced((PATIENT.name, SUBJECT.name), "Patient",
                               at_most=fhir.PATIENTS_AT_MOST)
    return service.AssessmentSearch(
        people=None if people is None else frozenset(people), standing=standing,
        ids=None if search.ids is None else frozenset(search.ids),
        changed_since=search.since, changed_before=search.before,
        include_entered_in_error=True)


@router.get("/RiskAssessment", response_model=None, responses=_SEARCH,
            openapi_extra=fhir.search_openapi(RISK_ASSESSMENT_SEARCH),
            summary="Search RiskAssessments (searchset Bundle of each one's latest version)")
async def search_risk_assessments(request: Request, access: AccessDep,
                                  settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "RiskAssessment", RISK_ASSESSMENT_SEARCH,
                               default_count=settings.page_size_default,
                               max_count=settings.page_size_max)
    found = await service.search_assessments(access, _assessment_search(search),
                                             cursor=search.cursor, limit=search.page_size,
                                             total=search.wants_total)
    records = (AssessmentPublic.model_validate_json(d) for d in found.documents)
    return FhirResponse(search.bundle((risk_assessment_resource(r, settings) for r in records),
                                      next_cursor=found.next_cursor, total=found.total))


@router.get("/RiskAssessment/{assessment_id}", response_model=None, responses=_READ,
            summary="Read a RiskAssessment (its latest version)")
async def read_risk_assessment(request: Request, assessment_id: AssessmentId,
                               access: AccessDep, settings: SettingsDep) -> Response:
    _, document = await service.read_document(access, assessment_id)
    return fhir.read_response(request, risk_assessment_resource(
        AssessmentPublic.model_validate_json(document), settings))


@router.get("/RiskAssessment/{assessment_id}/_history/{version_id}", response_model=None,
            responses=_READ, summary="Read one version of a RiskAssessment as it was (vread)")
async def vread_risk_assessment(request: Request, assessment_id: AssessmentId,
                                version_id: VersionId, access: AccessDep,
                                settings: SettingsDep) -> Response:
    version = fhir.version_number(version_id)
    found = await service.read_versions(access, assessment_id, newest=version, count=1,
                                        action="vread")
    if not found.versions or found.versions[0].version != version:
        raise Problem(404, "This RiskAssessment has no such version.", kind="not-found")
    return fhir.read_response(request, version_resources(found, settings)[0])


@router.get("/RiskAssessment/{assessment_id}/_history", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404, 406, 422)},
            openapi_extra=fhir.search_openapi(),
            summary="Every version of a RiskAssessment, newest first (history Bundle)")
async def risk_assessment_history(request: Request, assessment_id: AssessmentId,
                                  access: AccessDep, settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "RiskAssessment", (),
                               default_count=fhir.PROVENANCE_PAGE,
                               max_count=fhir.PROVENANCE_VERSIONS)
    top = decode_version_cursor(search.cursor) if search.cursor else None
    found = await service.read_versions(access, assessment_id, newest=top, count=search.page_size,
                                        action="read-history")
    lowest = found.versions[-1].version if found.versions else 1
    following = (encode_cursor(lowest - 1, assessment_id)
                 if found.versions and lowest > 1 else None)
    return FhirResponse(fhir.history(
        search.base, "RiskAssessment", version_resources(found, settings),
        self_url=search.history_url(assessment_id, **(
            {"_cursor": search.cursor} if search.cursor else {})),
        next_url=following and search.history_url(assessment_id, _cursor=following),
        total=found.assessment.version))


@router.get("/Provenance", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404, 406, 422)},
            openapi_extra=fhir.search_openapi(PROVENANCE_SEARCH),
            summary="Signatures of a RiskAssessment's versions (searchset Bundle)")
async def search_provenance(request: Request, access: AccessDep,
                            settings: SettingsDep) -> FhirResponse:
    search = fhir.parse_search(request, "Provenance", PROVENANCE_SEARCH,
                               default_count=fhir.PROVENANCE_PAGE,
                               max_count=fhir.PROVENANCE_VERSIONS)
    targets = search.values.get(TARGET.name, [])
    if len(targets) != 1 or "," in targets[0]:
        raise Problem(400, "Provenance is searched by one target: RiskAssessment/<id>.",
                      kind="invalid-search")
    assessment_id = fhir.reference_id(targets[0], "RiskAssessment", TARGET.name)
    document = (await service.read_document(access, assessment_id))[1]
    person = AssessmentPublic.model_validate_json(document).service_user_id
    resources: list[dict[str, Any]] = []
    next_cursor = None
    if search.page_size:
        page = await service.list_versions(access, assessment_id, cursor=search.cursor,
                                           limit=search.page_size)
        resources = [r for v in page.items
                     if (r := provenance_resource(assessment_id, person, v, settings))]
        next_cursor = page.next_cursor
    total = (await service.signed_versions(access, assessment_id) if search.wants_total
             else None)
    return FhirResponse(search.bundle(resources, next_cursor=next_cursor, total=total))


@router.get("/Provenance/{provenance_id}", response_model=None, responses=_READ,
            summary="Read the Provenance of one RiskAssessment version: its standing signatures")
async def read_provenance(request: Request, provenance_id: ProvenanceId, access: AccessDep,
                          settings: SettingsDep) -> Response:
    assessment_id, version = fhir.provenance_target(provenance_id)
    # The vread's own reading, under the same reach as a Provenance search.
    found = await service.read_versions(access, assessment_id, newest=version, count=1,
                                        action="read-provenance")
    person = found.assessment.service_user_id
    signed = next((provenance_resource(found.assessment.id, person, v, settings)
                   for v in found.versions if v.version == version), None)
    if signed is None:
        raise Problem(404, "No Provenance with that id is available to you.", kind="not-found")
    return fhir.read_response(request, signed)
