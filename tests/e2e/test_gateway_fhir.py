"""One FHIR base URL at the gateway: each request reaches the service that owns its resource
type with the caller's own token, and /fhir/metadata lists every service's resources."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.access import assert_outcome
from recovery.common.testing.plugin import TokenFactory
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.testing import Platform, running_platform

PERSON, OTHER = "person-fhir-1", "person-fhir-2"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def platform(dev_issuer: DevIssuer, tokens: TokenFactory,
                   tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens) as p:
        yield p


async def test_metadata_merges_every_services_resource_types(platform: Platform) -> None:
    response = await platform.gateway.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    # cpb-14: a statement of kind `instance` names its implementation.
    assert statement["kind"] == "instance" and statement["implementation"]["description"]
    CapabilityStatement.model_validate(statement)
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Goal", "CarePlan", "RiskAssessment", "Practitioner", "PractitionerRole",
            "CareTeam", "Patient"} <= types
    # SMART: where a client gets its token, as the oauth-uris extension says it.
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    oauth = security["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert {e["url"] for e in oauth["extension"]} == {"authorize", "token"}
    assert_outcome(await platform.gateway.get("/fhir/metadata",
                                              headers={"Accept": "application/fhir+xml"}), 406)
    assert_outcome(await platform.gateway.get("/fhir/metadata", params={"_format": "xml"}), 406)


async def test_smart_discovery_is_at_the_gateway_and_every_fhir_base(platform: Platform) -> None:
    answers = [await platform.gateway.get("/fhir/.well-known/smart-configuration")]
    for service in ("goals", "crisis-plans", "risk", "workforce"):
        answers.append(await platform.services[service].get(
            "/fhir/.well-known/smart-configuration"))
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        smart = answer.json()
        assert smart == answers[0].json()
        assert {"issuer", "authorization_endpoint", "token_endpoint", "scopes_supported",
                "capabilities", "grant_types_supported"} <= set(smart)
        assert "client_credentials" in smart["grant_types_supported"]
        assert "system/*.rs" in smart["scopes_supported"]
        assert "permission-v2" in smart["capabilities"]


async def test_a_patient_is_found_by_the_ehrs_identifier_under_the_same_access(
        platform: Platform) -> None:
    own = platform.tokens.service_user(PERSON)
    await platform.rest("goals", "POST", "/v1/goals", own, json={
        "service_user_id": PERSON, "team_id": "team-a", "description": "Cook for friends"})
    system = platform.services["goals"].app.state.kit.settings.fhir_patient_identifier_system
    clinician = platform.tokens.clinician("staff-1", ["team-a"])
    for token in (own, clinician):
        read = await platform.gateway.get(f"/fhir/Patient/{PERSON}", headers=bearer(token))
        assert read.status_code == 200, read.text
        patient = Patient.model_validate(read.json())
        assert (patient.id, patient.identifier[0].system, patient.identifier[0].value) == (
            PERSON, system, PERSON)
        assert read.json()["text"]["status"] == "generated"
        assert read.headers["etag"] == 'W/"1"'
        found = await platform.gateway.get("/fhir/Patient", headers=bearer(token),
                                           params={"identifier": f"{system}|{PERSON}"})
        bundle = Bundle.model_validate(found.json())
        assert [e.resource.id for e in bundle.entry] == [PERSON] and bundle.total == 1
        assert bundle.entry[0].fullUrl == f"http://gateway/fhir/Patient/{PERSON}"
        by_id = await platform.gateway.get("/fhir/Patient", headers=bearer(token),
                                           params={"_id": f"{PERSON},nobody"})
        assert [e["resource"]["id"] for e in by_id.json()["entry"]] == [PERSON]
    other_system = await platform.gateway.get(
        "/fhir/Patient", headers=bearer(clinician),
        params={"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{PERSON}"})
    assert other_system.json()["entry"] == []
    # Someone with no claim on the person, and someone who does not exist, look the same.
    outsider = platform.tokens.clinician("staff-9", ["team-z"])
    refused = await platform.gateway.get(f"/fhir/Patient/{PERSON}", headers=bearer(outsider))
    missing = await platform.gateway.get("/fhir/Patient/nobody", headers=bearer(clinician))
    assert assert_outcome(refused, 404) == assert_outcome(missing, 404)
    unseen = await platform.gateway.get("/fhir/Patient", headers=bearer(outsider),
                                        params={"_id": PERSON})
    assert unseen.json()["entry"] == [] and unseen.json()["total"] == 0
    assert_outcome(await platform.gateway.get("/fhir/Patient", headers=bearer(clinician)), 400)


async def test_a_patient_is_not_denied_while_a_service_holding_records_is_down(
        dev_issuer: DevIssuer, tokens: TokenFactory, tmp_path: Path) -> None:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                stopped=("risk",)) as platform:
        token = platform.tokens.clinician("staff-1", ["team-a"])
        answer = await platform.gateway.get("/fhir/Patient/someone", headers=bearer(token))
        assert_outcome(answer, 503)
        assert answer.headers["retry-after"]


@pytest.mark.parametrize(("gateway", "headers", "base"), [
    (GatewaySettings(environment="test", public_url="https://recovery.example/api/"), {},
     "https://recovery.example/api/fhir"),
    (GatewaySettings(environment="test", forwarded_headers_trusted=True),
     {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ehr-gw.trust.example"},
     "https://ehr-gw.trust.example/fhir"),
    # Untrusted, such headers say nothing: the links are the gateway's own address.
    (GatewaySettings(environment="test"),
     {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "elsewhere.example"},
     "http://gateway/fhir"),
])
async def test_every_link_points_at_the_public_base(
        dev_issuer: DevIssuer, tokens: TokenFactory, tmp_path: Path,
        gateway: GatewaySettings, headers: dict[str, str], base: str) -> None:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                gateway=gateway) as platform:
        own = platform.tokens.service_user(PERSON)
        for text in ("Paint", "Run", "Sing"):
            await platform.rest("goals", "POST", "/v1/goals", own, json={
                "service_user_id": PERSON, "team_id": "team-a", "description": text})
        url: str | None = "/fhir/Goal"
        params: dict[str, str] | None = {"patient": f"Patient/{PERSON}", "_count": "2"}
        seen = []
        while url:
            page = await platform.gateway.get(url, params=params,
                                              headers={**headers, **bearer(own)})
            assert page.status_code == 200, page.text
            bundle = page.json()
            links = {link["relation"]: link["url"] for link in bundle["link"]}
            assert all(link.startswith(base + "/Goal?") for link in links.values()), links
            for entry in bundle["entry"]:
                assert entry["fullUrl"] == f"{base}/Goal/{entry['resource']['id']}"
                seen.append(entry["resource"]["id"])
            # Through the gateway alone: the next link's path and query, at the gateway.
            following = links.get("next")
            url = "/fhir" + following.removeprefix(base) if following else None
            params = None
        assert len(seen) == len(set(seen)) == 3


async def test_a_goal_is_read_through_the_gateway_with_the_callers_own_access(
        platform: Platform) -> None:
    own = platform.tokens.service_user(PERSON)
    goal = await platform.rest("goals", "POST", "/v1/goals", own, json={
        "service_user_id": PERSON, "team_id": "team-a", "description": "Swim twice a week"})
    read = await platform.gateway.get(f"/fhir/Goal/{goal['id']}",
                                      headers={"Authorization": f"Bearer {own}"})
    assert read.status_code == 200, read.text
    assert read.json()["resourceType"] == "Goal"
    assert read.json()["subject"]["reference"] == f"Patient/{PERSON}"
    other = platform.tokens.service_user(OTHER)
    refused = await platform.gateway.get(f"/fhir/Goal/{goal['id']}",
                                         headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code in {403, 404}
    anonymous = await platform.gateway.get(f"/fhir/Goal/{goal['id']}")
    assert anonymous.status_code == 401


async def test_a_resource_type_no_service_holds_is_a_404_operation_outcome(
        platform: Platform) -> None:
    assert_outcome(await platform.gateway.get("/fhir/Observation/1"), 404)


async def test_provenance_goes_to_the_service_of_its_target(platform: Platform) -> None:
    token = platform.tokens.clinician("staff-1", ["team-a"])
    for wrong in ({"target": "Goal/1"}, {}, {"target": "CarePlan/1,RiskAssessment/2"},
                  {"target": "https://x.example/fhir/Observation/1"}):
        assert_outcome(await platform.gateway.get("/fhir/Provenance", params=wrong,
                                                  headers=bearer(token)), 400)
    before = dict(platform.upstreams.calls)
    for target in ("CarePlan/no-such-plan", "https://elsewhere.example/fhir/CarePlan/no-plan"):
        care_plan = await platform.gateway.get("/fhir/Provenance", params={"target": target},
                                               headers=bearer(token))
        assert_outcome(care_plan, 404)
    assert platform.upstreams.calls["crisis-plans"] == before.get("crisis-plans", 0) + 2
    assert platform.upstreams.calls["risk"] == before.get("risk", 0)
    # Provenance is made by signing, never written.
    refused = await platform.gateway.post("/fhir/Provenance", json={}, headers=bearer(token))
    assert_outcome(refused, 405)
    assert refused.headers["allow"] == "GET"


async def agreed(platform: Platform, service: str, path: str, body: dict[str, Any]) -> str:
    """A record of ``service`` signed by PERSON and staff-1 of team-a: its id."""
    own, staff = platform.tokens.service_user(PERSON), platform.tokens.clinician(
        "staff-1", ["team-a"])
    record = await platform.rest(service, "POST", path, staff,
                                 json={"service_user_id": PERSON, "team_id": "team-a", **body})
    for signer in (own, staff):
        await platform.rest(service, "POST", f"{path}/{record['id']}/signatures", signer,
                            json={"content_hash": record["content_hash"]},
                            etag=f'"{record["version"]}"')
    return str(record["id"])


async def test_a_provenance_full_url_is_read_through_the_gateway_whichever_service_holds_it(
        platform: Platform) -> None:
    base = "http://gateway/fhir"
    plan_id = await agreed(platform, "crisis-plans", "/v1/crisis-plans",
                           {"triggers": ["Crowded trains"]})
    assessment_id = await agreed(platform, "risk", "/v1/risk-assessments", {"areas": [{
        "area": "safety_of_self", "service_user_view": "I know my signs now",
        "clinician_view": "Fewer crises since spring", "views_agree": True}]})
    own = platform.tokens.service_user(PERSON)
    for kind, record_id in (("CarePlan", plan_id), ("RiskAssessment", assessment_id)):
        for target in (f"{base}/{kind}/{record_id}", f"{kind}/{record_id}", record_id):
            searched = await platform.gateway.get("/fhir/Provenance", headers=bearer(own),
                                                  params={"target": target})
            assert searched.status_code == 200, searched.text
            Bundle.model_validate(searched.json())
            entries = searched.json()["entry"]
            assert len(entries) == 1, target
            assert entries[0]["fullUrl"] == f"{base}/Provenance/{record_id}-v1"
            for entry in entries:
                read = await platform.gateway.get("/fhir" + entry["fullUrl"].removeprefix(base),
                                                  headers=bearer(own))
                assert read.status_code == 200, read.text
                assert read.json() == entry["resource"]
                Provenance.model_validate(read.json())
                assert read.headers["etag"] == f'W/"{entry["resource"]["meta"]["versionId"]}"'
                target_read = await platform.gateway.get(
                    "/fhir/" + entry["resource"]["target"][0]["reference"], headers=bearer(own))
                assert target_read.status_code == 200 and target_read.json()["id"] == record_id
    outsider = platform.tokens.clinician("staff-9", ["team-z"])
    for path in (f"{plan_id}-v1", f"{assessment_id}-v1", f"{plan_id}-v2", "nonsense",
                 f"{plan_id}-v1/_history/1"):
        token = outsider if path.endswith("-v1") else own
        assert_outcome(await platform.gateway.get(f"/fhir/Provenance/{path}",
                                                  headers=bearer(token)), 404)


async def test_a_provenance_is_not_denied_while_a_service_that_may_hold_it_is_down(
        dev_issuer: DevIssuer, tokens: TokenFactory, tmp_path: Path) -> None:
    async with running_platform(databases=lambda n: f"sqlite+aiosqlite:///{tmp_path / n}.db",
                                jwks_file=dev_issuer.jwks_path, tokens=tokens,
                                stopped=("risk",)) as platform:
        plan_id = await agreed(platform, "crisis-plans", "/v1/crisis-plans",
                               {"triggers": ["Crowded trains"]})
        own = platform.tokens.service_user(PERSON)
        found = await platform.gateway.get(f"/fhir/Provenance/{plan_id}-v1",
                                           headers=bearer(own))
        assert found.status_code == 200, found.text
        by_id = await platform.gateway.get("/fhir/Provenance", params={"target": plan_id},
                                           headers=bearer(own))
        assert by_id.status_code == 200 and len(by_id.json()["entry"]) == 1
        for answer in (await platform.gateway.get("/fhir/Provenance/someone-v1",
                                                  headers=bearer(own)),
                       await platform.gateway.get("/fhir/Provenance", params={"target": "x"},
                                                  headers=bearer(own))):
            assert_outcome(answer, 503)
            assert answer.headers["retry-after"]


async def test_a_path_that_would_climb_out_of_the_services_fhir_base_is_a_400(
        platform: Platform) -> None:
    token = platform.tokens.clinician("staff-1", ["team-a"])
    before = dict(platform.upstreams.calls)
    # Encoded dots reach the router as "..", as a client that sends the path as-is would.
    response = await platform.gateway.get("/fhir/Goal/%2E%2E/%2E%2E/v1/goals",
                                          headers={"Authorization": f"Bearer {token}"})
    assert_outcome(response, 400)
    assert platform.upstreams.calls == before
