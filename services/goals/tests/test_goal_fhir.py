"""FHIR R4 Goal read, search and CapabilityStatement, validated with fhir.resources."""

from typing import Any

from conftest import GoalsApi, unique
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.goal import Goal as FhirGoal

from recovery.goals import fhir

FHIR_JSON = "application/fhir+json"


def extension_values(resource: dict[str, Any], url: str) -> list[Any]:
    values = []
    for extension in resource.get("extension", []):
        if extension["url"] == url:
            values.extend(v for k, v in extension.items() if k.startswith("value"))
    return values


async def test_a_goal_reads_as_a_valid_fhir_goal(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    life = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Get back to work", life_area="work_and_education",
                            chime_tags=["hope"], why_it_matters="Money and pride",
                            strengths=["determined"], target_date="2030-03-01")
    therapeutic = await api.create(api.tokens.clinician(), service_user_id=person,
                                   team_id="team-a", description="Sleep through the night",
                                   kind="therapeutic", serves_goal_ids=[life["id"]])

    response = await api.client.get(f"/fhir/Goal/{life['id']}", headers=api.auth(own))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.headers["etag"] == 'W/"1"'
    resource = response.json()
    FhirGoal.model_validate(resource)
    assert resource["lifecycleStatus"] == "active"
    assert resource["achievementStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
        "code": "in-progress"}
    assert resource["description"]["text"] == "Get back to work"
    assert resource["subject"] == {"reference": f"Patient/{person}"}
    assert resource["expressedBy"] == {"reference": f"Patient/{person}"}
    assert resource["target"] == [{"dueDate": "2030-03-01"}]
    assert resource["meta"]["versionId"] == "1"
    codes = {(c["coding"][0]["system"], c["coding"][0]["code"]) for c in resource["category"]}
    assert codes == {(fhir.GOAL_KIND_SYSTEM, "life"),
                     (fhir.LIFE_AREA_SYSTEM, "work_and_education"), (fhir.CHIME_SYSTEM, "hope")}
    assert extension_values(resource, fhir.WHY_IT_MATTERS) == ["Money and pride"]
    assert extension_values(resource, fhir.STRENGTH) == ["determined"]

    proposed = (await api.client.get(f"/fhir/Goal/{therapeutic['id']}",
                                     headers=api.auth(own))).json()
    FhirGoal.model_validate(proposed)
    assert proposed["lifecycleStatus"] == "proposed"
    assert "achievementStatus" not in proposed
    assert proposed["expressedBy"] == {"reference": "Practitioner/staff-1"}
    assert extension_values(proposed, fhir.SERVES_LIFE_GOAL) == [
        {"reference": f"Goal/{life['id']}"}]


async def test_fhir_search_by_patient_is_a_searchset_bundle_with_paging(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    ids = [(await api.create(own, service_user_id=person, team_id="team-a",
                             description=f"goal {n}"))["id"] for n in range(3)]
    first = await api.client.get("/fhir/Goal", params={"patient": f"Patient/{person}",
                                                       "_count": 2}, headers=api.auth(own))
    assert first.status_code == 200
    assert first.headers["content-type"].startswith(FHIR_JSON)
    bundle = first.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    assert [e["resource"]["id"] for e in bundle["entry"]] == [ids[2], ids[1]]
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
    following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    second = await api.client.get(following, headers=api.auth(own))
    assert [e["resource"]["id"] for e in second.json()["entry"]] == [ids[0]]
    assert not [link for link in second.json()["link"] if link["relation"] == "next"]
    by_status = await api.client.get("/fhir/Goal", headers=api.auth(own),
                                     params={"patient": person,
                                             "lifecycle-status": "proposed,rejected"})
    assert by_status.json()["entry"] == []


async def test_fhir_applies_the_same_access_rules_as_rest(api: GoalsApi) -> None:
    person, other = unique("su"), unique("su")
    goal = await api.create(api.tokens.service_user(person), service_user_id=person,
                            team_id="team-a", description="Mine")
    stranger = api.tokens.service_user(other)
    read = await api.client.get(f"/fhir/Goal/{goal['id']}", headers=api.auth(stranger))
    assert read.status_code == 404
    assert read.headers["content-type"].startswith("application/problem+json")
    search = await api.client.get("/fhir/Goal", params={"patient": person},
                                  headers=api.auth(stranger))
    assert search.status_code == 404
    outsider = api.tokens.clinician("staff-8", ["team-z"])
    assert (await api.client.get(f"/fhir/Goal/{goal['id']}",
                                 headers=api.auth(outsider))).status_code == 404
    assert (await api.client.get(f"/fhir/Goal/{goal['id']}")).status_code == 401
    partner = api.tokens.system("partner-1", scope="system/Goal.rs")
    assert (await api.client.get(f"/fhir/Goal/{goal['id']}",
                                 headers=api.auth(partner))).status_code == 200


async def test_bad_fhir_search_parameters_are_4xx_problems(api: GoalsApi) -> None:
    own = api.tokens.service_user("su-1")
    for params, status in (({"patient": "Patient/a/b"}, 400),
                           ({"patient": "su-1", "subject": "Patient/su-2"}, 400),
                           ({"lifecycle-status": "finished"}, 422)):
        response = await api.client.get("/fhir/Goal", params=params, headers=api.auth(own))
        assert response.status_code == status, params
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_capability_statement_describes_goal_read_and_search(api: GoalsApi) -> None:
    response = await api.client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    goal, audit = statement["rest"][0]["resource"]
    assert audit["type"] == "AuditEvent"  # every service's trail (the kit's)
    assert goal["type"] == "Goal"
    assert {i["code"] for i in goal["interaction"]} == {"read", "search-type"}
    assert {"patient", "lifecycle-status"} <= {p["name"] for p in goal["searchParam"]}
