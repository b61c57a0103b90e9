"""FHIR R4 RiskAssessment and Provenance, validated with fhir.resources: the person's view is
the basis, the clinician the performer, and there is no prediction and no qualitative risk."""

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.riskassessment import RiskAssessment as FhirRiskAssessment
from risk_api import RiskApi, area, unique


async def test_an_agreed_co_assessment_reads_as_a_final_risk_assessment_without_a_prediction(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    agreed = await api.agreed(person, team, staff="clin-7", areas=[
        area("substances", person="A drink at the weekend is fine", agree=False,
             clinician="It led to two admissions", difference="We differ on weekends")])
    response = await api.client.get(f"/fhir/RiskAssessment/{agreed['id']}",
                                    headers=api.auth(api.tokens.service_user(person)))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    resource = response.json()
    FhirRiskAssessment.model_validate(resource)
    assert resource["status"] == "final"
    assert resource["subject"] == {"reference": f"Patient/{person}"}
    assert resource["performer"] == {"reference": "Practitioner/clin-7"}
    assert "prediction" not in resource and "qualitativeRisk" not in response.text
    assert "probability" not in response.text
    (basis,) = resource["basis"]
    view = next(c for c in resource["contained"] if f"#{c['id']}" == basis["reference"])
    assert view["valueString"] == "A drink at the weekend is fine"
    assert view["performer"] == [{"reference": f"Patient/{person}"}]
    assert any("We differ on weekends" in note["text"] for note in resource["note"])


async def test_a_draft_is_preliminary(api: RiskApi) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=unique("su"), team_id=team)
    response = await api.client.get(f"/fhir/RiskAssessment/{drafted['id']}",
                                    headers=api.auth(clinician))
    assert response.json()["status"] == "preliminary"


async def test_provenance_pages_follow_their_next_link(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician, own = api.tokens.clinician("clin-8", [team]), api.tokens.service_user(person)
    agreed = await api.agreed(person, team, staff="clin-8")
    changed = await api.send("PATCH", f"/v1/risk-assessments/{agreed['id']}", clinician,
                             etag=f'"{agreed["version"]}"', json={"review_date": "2031-02-01"})
    assert changed.status_code == 200, changed.text
    for token in (own, clinician):
        assert (await api.sign(token, changed.json())).status_code == 201
    target = f"RiskAssessment/{agreed['id']}"
    first = (await api.client.get("/fhir/Provenance", params={"target": target, "_count": 1},
                                  headers=api.auth(clinician))).json()
    Bundle.model_validate(first)
    assert "total" not in first and len(first["entry"]) == 1
    (next_url,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    second = (await api.client.get(next_url, headers=api.auth(clinician))).json()
    assert [e["resource"]["target"][0]["reference"] for e in first["entry"] + second["entry"]
            ] == [f"{target}/_history/1", f"{target}/_history/2"]
    assert [link["relation"] for link in second["link"]] == ["self"]


async def test_provenance_has_one_signature_per_party_on_the_exact_version(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    agreed = await api.agreed(person, team, staff="clin-7")
    response = await api.client.get(
        "/fhir/Provenance", params={"target": f"RiskAssessment/{agreed['id']}"},
        headers=api.auth(api.tokens.clinician("clin-7", [team])))
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    (entry,) = bundle["entry"]
    provenance = entry["resource"]
    Provenance.model_validate(provenance)
    assert provenance["target"] == [{"reference": f"RiskAssessment/{agreed['id']}/_history/1"}]
    assert {s["who"]["reference"] for s in provenance["signature"]} == {
        f"Patient/{person}", "Practitioner/clin-7"}
    assert provenance["activity"]["text"] == "agreed"


async def test_the_capability_statement_is_valid_fhir(api: RiskApi) -> None:
    response = await api.client.get("/fhir/metadata")
    CapabilityStatement.model_validate(response.json())
    types = {r["type"] for r in response.json()["rest"][0]["resource"]}
    assert types == {"RiskAssessment", "Provenance", "AuditEvent"}
