"""FHIR R4 CarePlan and Provenance: the mapping from our crisis plans and their signatures,
and the ``/fhir`` read, search and metadata routes.

Our own code systems and extensions live under ``https://recovery-platform.org/fhir/``;
``docs/fhir-mapping.md`` lists them.
"""

from typing import Annotated, Any

from fastapi import Path, Query, Request

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
from recovery.crisis_plans import service
from recovery.crisis_plans.models import Party, PlanPublic, PlanStatus, VersionPublic

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
#: ASTM E1762 signature types: the person consents, clinicians sign as verifiers.
SIGNATURE_CODES = {Party.service_user: ("1.2.840.10065.1.12.1.7", "Consent Signature"),
                   Party.care_coordinator: ("1.2.840.10065.1.12.1.5", "Verification Signature"),
                   Party.psychiatrist: ("1.2.840.10065.1.12.1.5", "Verification Signature")}


def _who(party: Party, signatory: str) -> dict[str, str]:
    kind = "Patient" if party is Party.service_user else "Practitioner"
    return {"reference": f"{kind}/{signatory}"}


def _section_notes(plan: PlanPublic) -> list[dict[str, Any]]:
    """Every item of every section as a note tagged with its section, in plan order."""
    notes: list[dict[str, Any]] = []
    for section, value in plan.content.model_dump(mode="json").items():
        if section == "review_on" or value in (None, []):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            text = item if isinstance(item, str) else "; ".join(
                f"{key}: {val}" for key, val in item.items() if val not in (None, [], False))
            notes.append({"extension": [{"url": PLAN_SECTION, "valueCoding": {
                "system": SECTION_SYSTEM, "code": section}}], "text": text})
    return notes


def care_plan_resource(plan: PlanPublic) -> dict[str, Any]:
    """The newest version of a plan as a FHIR R4 CarePlan (a mental health crisis plan)."""
    contributors = [{"reference": f"Patient/{plan.service_user_id}"}]
    contributors += [_who(s.party, s.signatory) for s in plan.signatures
                     if s.party is not Party.service_user]
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": plan.id,
        "meta": {"versionId": str(plan.version), "lastUpdated": instant(plan.updated_at)},
        "extension": [
            {"url": TEAM, "valueIdentifier": {"system": TEAM_SYSTEM, "value": plan.team_id}},
            {"url": CONTENT_HASH, "valueString": plan.content_hash},
        ],
        "status": CARE_PLAN_STATUS[plan.status],
        "intent": "plan",
        "category": [{"coding": [{"system": SNOMED, "code": "736253002",
                                  "display": "Mental health crisis plan"}]}],
        "title": "Joint crisis plan",
        "subject": {"reference": f"Patient/{plan.service_user_id}"},
        "created": instant(plan.created_at),
        "author": ({"reference": f"Patient/{plan.service_user_id}"}
                   if plan.created_by == plan.service_user_id
                   else {"reference": f"Practitioner/{plan.created_by}"}),
        "contributor": contributors,
        "note": _section_notes(plan),
    }
    if plan.content.review_on is not None:
        resource["period"] = {"end": plan.content.review_on.isoformat()}
    return resource


def provenance_resource(plan_id: str, version: VersionPublic) -> dict[str, Any] | None:
    """The agreement of one version: one signature per party, bound to its content hash."""
    standing = [s for s in version.signatures if s.withdrawn_at is None]
    if not standing:
        return None
    digest = signed_content(version.content_hash)
    return provenance(
        f"CarePlan/{plan_id}", version.version,
        recorded=max(s.signed_at for s in standing),
        agents=[{"type": {"coding": [{"system": PARTICIPATION, "code": "attester"}]},
                 "role": [{"text": s.party.value}],
                 "who": _who(s.party, s.signatory)} for s in standing],
        signatures=[{
            "type": [{"system": SIGNATURE_TYPE, "code": SIGNATURE_CODES[s.party][0],
                      "display": SIGNATURE_CODES[s.party][1]}],
            "when": instant(s.signed_at),
            "who": _who(s.party, s.signatory),
            # The signature binds the version's content hash, carried here as its data.
            "sigFormat": "text/plain",
            "data": digest,
        } for s in standing])


def capability_statement(settings: Settings) -> list[dict[str, Any]]:
    """What this service offers over FHIR: CarePlan read, Provenance search."""
    return [
        {"type": "CarePlan", "versioning": "versioned", "interaction": [{"code": "read"}]},
        {"type": "Provenance", "interaction": [{"code": "search-type"}],
         "searchParam": [{"name": "target", "type": "reference",
                          "documentation": "CarePlan/<id>"}]},
    ]


router = fhir.fhir_router("crisis-plans", capability_statement)


@router.get("/CarePlan/{plan_id}", response_model=None,
            responses={**FHIR_OK, **problem_responses(404)}, summary="Read a CarePlan")
async def read_care_plan(plan_id: Annotated[str, Path(min_length=1, max_length=64)],
                         access: AccessDep) -> FhirResponse:
    version, document = await service.read_plan_document(access, plan_id)
    return FhirResponse(care_plan_resource(PlanPublic.model_validate_json(document)),
                        headers={"ETag": f'W/"{version}"'})


@router.get("/Provenance", response_model=None,
            responses={**FHIR_OK, **problem_responses(400, 404)},
            summary="The signatures agreeing each version of a CarePlan (searchset Bundle)")
async def search_provenance(
    request: Request, access: AccessDep,
    target: Annotated[str, Query(min_length=10, max_length=80,
                                 description="CarePlan/<id>")],
    count: fhir.SearchCount = fhir.PROVENANCE_PAGE, cursor: fhir.SearchCursor = None,
) -> FhirResponse:
    plan_id = target.removeprefix("CarePlan/")
    if plan_id == target or not plan_id or "/" in plan_id:
        raise Problem(400, "target must be CarePlan/<id>.", kind="invalid-search")
    page = await service.list_versions(access, plan_id, cursor=cursor, limit=count)
    resources = [provenance_resource(plan_id, v) for v in page.items]
    base = fhir.public_base(request)
    return FhirResponse(fhir.paged_searchset(
        [fhir.match(r, f"{base}/Provenance/{r['id']}") for r in resources if r],
        url=f"{base}/Provenance?{request.url.query}",
        next_cursor=page.next_cursor, first_page=cursor is None))
