"""One FHIR base URL at the gateway: each request reaches the service that owns its resource
type with the caller's own token, and /fhir/metadata lists every service's resources."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.plugin import TokenFactory
from recovery.gateway.testing import Platform, running_platform

PERSON, OTHER = "person-fhir-1", "person-fhir-2"


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
            "CareTeam"} <= types


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


async def test_a_resource_type_no_service_holds_is_a_404_problem(platform: Platform) -> None:
    response = await platform.gateway.get("/fhir/Observation/1")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_provenance_goes_to_the_service_of_its_target(platform: Platform) -> None:
    token = platform.tokens.clinician("staff-1", ["team-a"])
    unknown = await platform.gateway.get("/fhir/Provenance", params={"target": "Goal/1"},
                                         headers={"Authorization": f"Bearer {token}"})
    assert unknown.status_code == 400
    care_plan = await platform.gateway.get("/fhir/Provenance",
                                           params={"target": "CarePlan/no-such-plan"},
                                           headers={"Authorization": f"Bearer {token}"})
    assert care_plan.status_code == 404
    assert platform.upstreams.calls["crisis-plans"] >= 1


async def test_a_path_that_would_climb_out_of_the_services_fhir_base_is_a_400(
        platform: Platform) -> None:
    token = platform.tokens.clinician("staff-1", ["team-a"])
    before = dict(platform.upstreams.calls)
    # Encoded dots reach the router as "..", as a client that sends the path as-is would.
    response = await platform.gateway.get("/fhir/Goal/%2E%2E/%2E%2E/v1/goals",
                                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert platform.upstreams.calls == before
