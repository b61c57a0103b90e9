"""FHIR R4 CarePlan read, Provenance of agreement and CapabilityStatement, validated with
fhir.resources."""

import base64
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.provenance import Provenance
from plans_api import PLAN_CONTENT, PlansApi, unique

FHIR_JSON = "application/fhir+json"


async def test_an_agreed_plan_reads_as_a_valid_mental_health_crisis_care_plan(
        api: PlansApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    plan = await api.agreed(api.tokens.clinician("staff-1"), person, own)
    response = await api.client.get(f"/fhir/CarePlan/{plan['id']}", headers=api.auth(own))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.headers["etag"] == 'W/"1"'
    resource = response.json()
    CarePlan.model_validate(resource)
    assert resource["status"] == "active" and resource["intent"] == "plan"
    assert resource["category"][0]["coding"][0]["code"] == "736253002"
    assert resource["subject"]["reference"] == f"Patient/{person}"
    assert {c["reference"] for c in resource["contributor"]} == {
        f"Patient/{person}", "Practitioner/staff-1"}
    notes = [n["text"] for n in resource["note"]]
    assert PLAN_CONTENT["early_warning_signs"][0] in notes
    assert resource["period"]["end"] == PLAN_CONTENT["review_on"]


async def test_agreement_is_a_provenance_with_one_signature_per_party_on_the_hash(
        api: PlansApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    plan = await api.agreed(api.tokens.clinician("staff-1"), person, own)
    await api.edit(own, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]})
    response = await api.client.get("/fhir/Provenance",
                                    params={"target": f"CarePlan/{plan['id']}"},
                                    headers=api.auth(own))
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    (entry,) = bundle["entry"]  # the unsigned draft has no provenance yet
    provenance = entry["resource"]
    Provenance.model_validate(provenance)
    assert entry["fullUrl"] == f"http://test/fhir/Provenance/{provenance['id']}"
    assert provenance["target"][0]["reference"] == f"CarePlan/{plan['id']}/_history/1"
    assert {s["who"]["reference"] for s in provenance["signature"]} == {
        f"Patient/{person}", "Practitioner/staff-1"}
    assert {base64.b64decode(s["data"]).decode() for s in provenance["signature"]} == {
        plan["content_hash"]}


async def test_provenance_is_paged_with_next_links_an_ehr_can_follow(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician("staff-1"), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    edited = await api.edit(own, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]})
    for token in (own, staff):
        assert (await api.sign(token, edited.json())).status_code == 201
    target = {"target": f"CarePlan/{plan['id']}"}
    whole = (await api.client.get("/fhir/Provenance", params=target,
                                  headers=api.auth(own))).json()
    assert whole["total"] == 2 and len(whole["entry"]) == 2
    assert [link["relation"] for link in whole["link"]] == ["self"]

    seen: list[str] = []
    url: str | None = "/fhir/Provenance"
    params: dict[str, Any] | None = {**target, "_count": 1}
    while url is not None:
        page = await api.client.get(url, params=params, headers=api.auth(own))
        assert page.status_code == 200, page.text
        bundle = page.json()
        Bundle.model_validate(bundle)
        assert "total" not in bundle  # one page of several does not know the whole count
        seen += [e["resource"]["target"][0]["reference"] for e in bundle["entry"]]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url, params = links.get("next"), None
    assert seen == [f"CarePlan/{plan['id']}/_history/1", f"CarePlan/{plan['id']}/_history/2"]
    for wrong in ({"_count": 0}, {"_count": 1001}, {"_cursor": "not-a-cursor"}):
        refused = await api.client.get("/fhir/Provenance", params={**target, **wrong},
                                       headers=api.auth(own))
        assert 400 <= refused.status_code < 500, (wrong, refused.text)


async def test_fhir_reads_follow_the_same_access_rules(api: PlansApi) -> None:
    person = unique("su")
    plan = await api.draft(api.tokens.clinician(), person)
    stranger = api.auth(api.tokens.service_user(unique("su")))
    assert (await api.client.get(f"/fhir/CarePlan/{plan['id']}",
                                 headers=stranger)).status_code == 404
    assert (await api.client.get("/fhir/Provenance",
                                 params={"target": f"CarePlan/{plan['id']}"},
                                 headers=stranger)).status_code == 404
    bad = await api.client.get("/fhir/Provenance", params={"target": "Patient/su-1"},
                               headers=api.auth(api.tokens.clinician()))
    assert bad.status_code == 400


async def test_the_capability_statement_is_valid_and_public(api: PlansApi) -> None:
    response = await api.client.get("/fhir/metadata")
    assert response.status_code == 200
    CapabilityStatement.model_validate(response.json())
