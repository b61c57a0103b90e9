"""FHIR R4 Goal reads, versions, history, Patient and the CapabilityStatement, on SQLite and
PostgreSQL; every resource and Bundle validated with fhir.resources (R4B)."""

from typing import Any

import httpx
from conftest import FHIR_JSON, GoalsApi, assert_outcome, unique
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.goal import Goal as FhirGoal
from fhir.resources.R4B.patient import Patient

from recovery.common.settings import Settings
from recovery.goals import fhir

PATIENT_IDS = Settings().fhir_patient_identifier_system
#: Where the gateway says the caller reached the platform.
FORWARDED = {"Forwarded": 'proto=https;host="ehr-link.example.org"',
             "X-Forwarded-Prefix": "/recovery"}
PUBLIC_BASE = "https://ehr-link.example.org/recovery/fhir"


def extension_values(resource: dict[str, Any], url: str) -> list[Any]:
    values = []
    for extension in resource.get("extension", []):
        if extension["url"] == url:
            values.extend(v for k, v in extension.items() if k.startswith("value"))
    return values


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def assert_narrative(resource: dict[str, Any]) -> None:
    assert resource["text"]["status"] == "generated"
    assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')


async def fhir_read(api: GoalsApi, token: str, path: str,
                    **headers: str) -> httpx.Response:
    return await api.client.get(path, headers={**api.auth(token), **headers})


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

    response = await fhir_read(api, own, f"/fhir/Goal/{life['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith(" GMT")
    resource = response.json()
    FhirGoal.model_validate(resource)
    assert_narrative(resource)
    assert "Get back to work" in resource["text"]["div"]
    assert resource["lifecycleStatus"] == "active"
    assert resource["achievementStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
        "code": "in-progress"}
    assert resource["description"]["text"] == "Get back to work"
    # The literal reference, and the EHR's own identifier for the person beside it.
    patient = {"reference": f"Patient/{person}",
               "identifier": {"system": PATIENT_IDS, "value": person}}
    assert resource["subject"] == patient
    assert resource["expressedBy"] == patient
    assert resource["target"] == [{"dueDate": "2030-03-01"}]
    assert resource["meta"]["versionId"] == "1"
    codes = {(c["coding"][0]["system"], c["coding"][0]["code"]) for c in resource["category"]}
    assert codes == {(fhir.GOAL_KIND_SYSTEM, "life"),
                     (fhir.LIFE_AREA_SYSTEM, "work_and_education"), (fhir.CHIME_SYSTEM, "hope")}
    assert extension_values(resource, fhir.WHY_IT_MATTERS) == ["Money and pride"]
    assert extension_values(resource, fhir.STRENGTH) == ["determined"]

    proposed = (await fhir_read(api, own, f"/fhir/Goal/{therapeutic['id']}")).json()
    FhirGoal.model_validate(proposed)
    assert proposed["lifecycleStatus"] == "proposed"
    assert "achievementStatus" not in proposed
    assert proposed["expressedBy"] == {"reference": "Practitioner/staff-1"}
    assert extension_values(proposed, fhir.SERVES_LIFE_GOAL) == [
        {"reference": f"Goal/{life['id']}"}]


async def test_a_read_answers_304_while_if_none_match_names_its_version(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a", description="Bake")
    path = f"/fhir/Goal/{goal['id']}"
    for tag in ('W/"1"', '"1"', '"7", W/"1"', "*"):
        unchanged = await fhir_read(api, own, path, **{"If-None-Match": tag})
        assert unchanged.status_code == 304, tag
        assert unchanged.content == b"" and unchanged.headers["etag"] == 'W/"1"'
    changed = await api.send("PATCH", f"/v1/goals/{goal['id']}", own, etag='"1"',
                             json={"description": "Bake bread"})
    assert changed.status_code == 200
    fresh = await fhir_read(api, own, path, **{"If-None-Match": 'W/"1"'})
    assert fresh.status_code == 200 and fresh.headers["etag"] == 'W/"2"'
    assert fresh.json()["description"]["text"] == "Bake bread"


async def test_every_version_of_a_goal_reads_as_it_was(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a",
                            description="Walk the dog", target_date="2030-01-01")
    for version, change in enumerate(({"description": "Walk the dog daily"},
                                      {"target_date": "2031-06-30"}), start=1):
        done = await api.send("PATCH", f"/v1/goals/{goal['id']}", own, etag=f'"{version}"',
                              json=change)
        assert done.status_code == 200, done.text
    expected = {1: ("Walk the dog", "2030-01-01"), 2: ("Walk the dog daily", "2030-01-01"),
                3: ("Walk the dog daily", "2031-06-30")}
    for version, (description, due) in expected.items():
        response = await fhir_read(api, own, f"/fhir/Goal/{goal['id']}/_history/{version}")
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'W/"{version}"'
        resource = response.json()
        FhirGoal.model_validate(resource)
        assert_narrative(resource)
        assert resource["meta"]["versionId"] == str(version)
        assert (resource["description"]["text"], resource["target"][0]["dueDate"]) == (
            description, due)
    not_modified = await fhir_read(api, own, f"/fhir/Goal/{goal['id']}/_history/2",
                                   **{"If-None-Match": 'W/"2"'})
    assert not_modified.status_code == 304
    for missing in (4, 0):
        assert_outcome(await fhir_read(api, own, f"/fhir/Goal/{goal['id']}/_history/{missing}"),
                       404, f"version {missing}")


async def test_a_goals_history_pages_every_version_newest_first(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a", description="Sing")
    for version in range(1, 5):
        done = await api.send("PATCH", f"/v1/goals/{goal['id']}", own, etag=f'"{version}"',
                              json={"description": f"Sing, take {version + 1}"})
        assert done.status_code == 200, done.text
    base = f"{PUBLIC_BASE}/Goal/{goal['id']}"
    url: str | None = f"/fhir/Goal/{goal['id']}/_history?_count=2"
    pages = []
    while url is not None:
        response = await api.client.get(url, headers={**api.auth(own), **FORWARDED})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == FHIR_JSON
        bundle = response.json()
        Bundle.model_validate(bundle)
        assert bundle["type"] == "history" and bundle["total"] == 5
        assert links(bundle)["self"].startswith(f"{base}/_history?")
        for entry in bundle["entry"]:
            assert entry["fullUrl"] == base
            assert_narrative(entry["resource"])
            first = entry["resource"]["meta"]["versionId"] == "1"
            assert entry["request"]["method"] == ("POST" if first else "PUT")
            assert entry["response"]["etag"] == f'W/"{entry["resource"]["meta"]["versionId"]}"'
        pages.append([int(e["resource"]["meta"]["versionId"]) for e in bundle["entry"]])
        following = links(bundle).get("next")
        assert following is None or following.startswith(f"{base}/_history?")
        # The link is at the public base; this client talks to the service itself.
        url = following.replace(PUBLIC_BASE, "/fhir") if following else None
    assert pages == [[5, 4], [3, 2], [1]]
    counted = await fhir_read(api, own, f"/fhir/Goal/{goal['id']}/_history?_summary=count")
    assert (counted.json()["total"], counted.json()["entry"]) == (5, [])
    Bundle.model_validate(counted.json())


async def test_only_fhir_json_is_offered_other_formats_are_406(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    goal = await api.create(own, service_user_id=person, team_id="team-a", description="Run")
    paths = [f"/fhir/Goal/{goal['id']}", f"/fhir/Goal/{goal['id']}/_history/1",
             f"/fhir/Goal/{goal['id']}/_history", f"/fhir/Goal?patient={person}",
             f"/fhir/Patient/{person}", "/fhir/metadata"]
    for path in paths:
        for refused in ({"Accept": "application/fhir+xml"}, {"Accept": "text/turtle"}):
            assert_outcome(await fhir_read(api, own, path, **refused), 406, f"{path} {refused}")
        glue = "&" if "?" in path else "?"
        assert_outcome(await fhir_read(api, own, f"{path}{glue}_format=xml"), 406, path)
        for accepted in ({"Accept": "application/fhir+json"}, {"Accept": "application/json"},
                         {"Accept": "*/*"}):
            assert (await fhir_read(api, own, path, **accepted)).status_code == 200, path
        assert (await fhir_read(api, own, f"{path}{glue}_format=json")).status_code == 200


async def test_a_person_with_goals_reads_and_searches_as_a_patient(api: GoalsApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    await api.create(own, service_user_id=person, team_id="team-a", description="Paint")
    staff = api.tokens.clinician()
    read = await fhir_read(api, staff, f"/fhir/Patient/{person}")
    assert read.status_code == 200, read.text
    patient = read.json()
    Patient.model_validate(patient)
    assert_narrative(patient)
    assert patient["id"] == person
    assert patient["identifier"][0] == {"use": "usual", "system": PATIENT_IDS, "value": person}
    for params in ({"_id": person}, {"identifier": f"{PATIENT_IDS}|{person}"},
                   {"identifier": person}):
        found = await api.client.get("/fhir/Patient", params=params,
                                     headers={**api.auth(staff), **FORWARDED})
        assert found.status_code == 200, found.text
        bundle = found.json()
        Bundle.model_validate(bundle)
        assert [e["resource"]["id"] for e in bundle["entry"]] == [person], params
        assert bundle["entry"][0]["fullUrl"] == f"{PUBLIC_BASE}/Patient/{person}"
    elsewhere = await api.client.get("/fhir/Patient", headers=api.auth(staff),
                                     params={"identifier": f"urn:oid:1.2.3|{person}"})
    assert elsewhere.json()["entry"] == []
    # Someone of whom the service holds no goal is no Patient here.
    assert_outcome(await fhir_read(api, staff, f"/fhir/Patient/{unique('su')}"), 404)


async def test_the_capability_statement_says_what_the_goal_routes_do(api: GoalsApi) -> None:
    response = await api.client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Goal", "Patient", "AuditEvent"}
    goal = resources["Goal"]
    assert {i["code"] for i in goal["interaction"]} == {
        "read", "vread", "history-instance", "search-type", "create", "update"}
    assert goal["versioning"] == "versioned-update" and goal["readHistory"] is True
    assert goal["conditionalCreate"] is True and goal["updateCreate"] is False
    # Declared from the very parameters the search reads, and nothing else.
    assert [p["name"] for p in goal["searchParam"]] == [p.name for p in fhir.GOAL_SEARCH]
    assert {p["name"] for p in goal["searchParam"]} == {
        "_id", "_lastUpdated", "patient", "subject", "lifecycle-status"}
    assert {p["name"] for p in resources["Patient"]["searchParam"]} == {"_id", "identifier"}
