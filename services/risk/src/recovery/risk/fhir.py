"""FHIR R4 RiskAssessment and Provenance: the mapping from our co-assessments and the
``/fhir`` routes. No ``prediction.probability`` and no ``qualitativeRisk``: risk is not a
number (NICE NG225). The person's view of each area is the assessment's basis.
"""

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from recovery.common import fhir
from recovery.common.deps import AccessDep
from recovery.common.fhir import (
    BASE,
    FHIR_OK,
    TEAM,
    TEAM_SYSTEM,
    FhirResponse,
    instant,
    provenance,
    signed_content,
)
from recovery.common.problems import Problem, problem_responses
from recovery.common.settings import Settings
from recovery.risk import service
from recovery.risk.models import AssessmentPublic, Party, VersionPublic, VersionStatus
from recovery.risk.routes import refuse_predictive_scores

AREA_SYSTEM = f"{BASE}/CodeSystem/risk-area"
VIEWS_DIFFER = f"{BASE}/StructureDefinition/views-differ"
SIGNATURE_SYSTEM = "urn:iso-astm:E1762-95:2013"
CO_ASSESSMENT = {"text": "Risk co-assessment with the service user (no predictive score)"}


def _who(party: Party, signatory: str, service_user_id: str) -> dict[str, str]:
    if party is Party.service_user:
        return {"reference": f"Patient/{service_user_id}"}
    return {"reference": f"Practitioner/{signatory}"}


def risk_assessment_resource(assessment: AssessmentPublic) -> dict[str, Any]:
    """Our co-assessment (its latest version) as a FHIR R4 RiskAssessment."""
    content = assessment.content
    person = {"reference": f"Patient/{assessment.service_user_id}"}
    contained: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    mitigation: list[str] = []
    for index, area in enumerate(content.areas):
        code = {"coding": [{"system": AREA_SYSTEM, "code": area.area.value}],
                "text": area.area_name or area.area.value.replace("_", " ")}
        if area.service_user_view is not None:
            contained.append({
                "resourceType": "Observation", "id": f"view-{index}", "status": "final",
                "code": code, "subject": person, "performer": [person],
                "valueString": area.service_user_view})
        if area.clinician_view is not None:
            notes.append({"text": f"{code['text']}: {area.clinician_view}"})
        if area.difference is not None:
            notes.append({"text": f"{code['text']} (views differ): {area.difference}"})
        mitigation.extend(area.strengths + area.protective_factors)
    clinicians = [s.signatory for s in assessment.signatures if s.party is Party.clinician]
    performer = clinicians[0] if clinicians else assessment.created_by
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": assessment.id,
        "meta": {"versionId": str(assessment.version),
                 "lastUpdated": instant(assessment.updated_at)},
        "extension": [
            {"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM,
                                              "value": assessment.team_id}},
            *({"url": VIEWS_DIFFER,
               "valueCodeableConcept": {"coding": [{"system": AREA_SYSTEM, "code": a.value}]}}
              for a in assessment.differences),
        ],
        "status": ("final" if assessment.version_status is not VersionStatus.draft
                   else "preliminary"),
        "code": CO_ASSESSMENT,
        "subject": person,
        "occurrenceDateTime": instant(assessment.updated_at),
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


def provenance_resource(assessment_id: str, service_user_id: str,
                        version: VersionPublic) -> dict[str, Any]:
    """One version's signatures as a Provenance: one agent and one signature per party."""
    standing = [s for s in version.signatures if s.withdrawn_at is None]
    return provenance(
        f"RiskAssessment/{assessment_id}", version.version,
        recorded=max(s.signed_at for s in standing),
        activity="agreed" if version.status is not VersionStatus.draft else "signed",
        agents=[{"type": {"text": s.party.value.replace("_", " ")},
                 "who": _who(s.party, s.signatory, service_user_id)} for s in standing],
        signatures=[{
            "type": [{"system": SIGNATURE_SYSTEM, "code": "1.2.840.10065.1.12.1.7",
                      "display": "Consent Signature"}],
            "when": instant(s.signed_at),
            "who": _who(s.party, s.signatory, service_user_id),
            "targetFormat": "application/json",
            "sigFormat": "text/plain",
            # What was signed: the version's canonical content hash.
            "data": signed_content(s.content_hash),
        } for s in standing])


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: RiskAssessment read, Provenance search."""
    return [
        {"type": "RiskAssessment", "versioning": "versioned", "interaction": [{"code": "read"}]},
        {"type": "Provenance", "interaction": [{"code": "search-type"}],
         "searchParam": [{"name": "target", "type": "reference",
                          "documentation": "RiskAssessment/<id>"}]},
    ]


router = fhir.fhir_router("risk", capability_statement)
_checked = [Depends(refuse_predictive_scores)]


@router.get("/RiskAssessment/{assessment_id}", response_model=None, dependencies=_checked,
            responses={**FHIR_OK, **problem_responses(404)}, summary="Read a RiskAssessment")
async def read_risk_assessment(assessment_id: Annotated[str, Path(min_length=1, max_length=64)],
                               access: AccessDep) -> FhirResponse:
    version, document = await service.read_document(access, assessment_id)
    return FhirResponse(risk_assessment_resource(AssessmentPublic.model_validate_json(document)),
                        headers={"ETag": f'W/"{version}"'})


@router.get("/Provenance", response_model=None, dependencies=_checked,
            responses={**FHIR_OK, **problem_responses(404)},
            summary="Signatures of a RiskAssessment's versions (searchset Bundle)")
async def search_provenance(
    request: Request, access: AccessDep,
    target: Annotated[str, Query(min_length=1, max_length=100,
                                 description="RiskAssessment/<id>")],
    count: fhir.SearchCount = fhir.PROVENANCE_PAGE, cursor: fhir.SearchCursor = None,
) -> FhirResponse:
    assessment_id = target.removeprefix("RiskAssessment/")
    if not assessment_id or "/" in assessment_id:
        raise Problem(400, "target must be RiskAssessment/<id>.", kind="invalid-search")
    page = await service.list_versions(access, assessment_id, cursor=cursor, limit=count)
    document = (await service.read_document(access, assessment_id))[1]
    person = AssessmentPublic.model_validate_json(document).service_user_id
    base = fhir.public_base(request)
    entries = [provenance_resource(assessment_id, person, v) for v in page.items
               if any(s.withdrawn_at is None for s in v.signatures)]
    return FhirResponse(fhir.paged_searchset(
        [fhir.match(e, f"{base}/Provenance/{e['id']}") for e in entries],
        url=f"{base}/Provenance?{request.url.query}", next_cursor=page.next_cursor,
        first_page=cursor is None))
