"""FHIR R4 Practitioner, PractitionerRole (peer specialists coded NUCC 175T00000X) and
CareTeam reads and the CapabilityStatement, validated with fhir.resources; access decisions
on staff records are audited, allowed and denied."""

from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from sqlmodel import col, select
from workforce_api import WorkforceApi, auth, unique

from recovery.common.audit import AuditEvent
from recovery.common.testing.access import assert_outcome
from recovery.workforce import fhir


async def test_staff_and_teams_read_as_valid_fhir_without_lived_experience(
        api: WorkforceApi) -> None:
    team = await api.team(name="Community recovery")
    peer = await api.staff(team, role_type="peer_specialist", profession="peer_support",
                           staff_id=unique("staff"), fte=0.6)
    nurse = await api.staff(team)
    own = api.tokens.peer_specialist(peer["id"], [team])
    await api.client.put(f"/v1/staff/{peer['id']}/lived-experience", json={"declared": True},
                         headers=auth(own))
    colleague = api.tokens.clinician("c-1", [team])

    practitioner = await api.client.get(f"/fhir/Practitioner/{peer['id']}",
                                        headers=auth(colleague))
    assert practitioner.headers["content-type"].startswith("application/fhir+json")
    resource = Practitioner.model_validate(practitioner.json())
    assert resource.id == peer["id"] and resource.active is True

    role = (await api.client.get(f"/fhir/PractitionerRole/{peer['id']}",
                                 headers=auth(colleague))).json()
    PractitionerRole.model_validate(role)
    codes = {(c["coding"][0]["system"], c["coding"][0]["code"]) for c in role["code"]}
    assert (fhir.NUCC, "175T00000X") in codes
    assert role["practitioner"]["reference"] == f"Practitioner/{peer['id']}"
    nurse_role = (await api.client.get(f"/fhir/PractitionerRole/{nurse['id']}",
                                       headers=auth(colleague))).json()
    assert (fhir.NUCC, "175T00000X") not in {
        (c["coding"][0]["system"], c["coding"][0]["code"]) for c in nurse_role["code"]}

    care_team = (await api.client.get(f"/fhir/CareTeam/{team}", headers=auth(colleague))).json()
    CareTeam.model_validate(care_team)
    assert care_team["name"] == "Community recovery"
    assert {p["member"]["reference"] for p in care_team["participant"]} == {
        f"PractitionerRole/{peer['id']}", f"PractitionerRole/{nurse['id']}"}
    for body in (practitioner.text, str(role), str(care_team)):
        assert "lived" not in body.lower() and "declared" not in body

    outsider = api.tokens.clinician("c-out", [unique("team")])
    assert_outcome(await api.client.get(f"/fhir/Practitioner/{peer['id']}",
                                        headers=auth(outsider)), 404)
    assert_outcome(await api.client.get(f"/fhir/CareTeam/{team}", headers=auth(outsider)), 404)


async def test_each_read_carries_its_version_narrative_and_answers_304(
        api: WorkforceApi) -> None:
    team = await api.team(name="Early intervention")
    nurse = await api.staff(team)
    colleague = auth(api.tokens.clinician("c-2", [team]))
    for path in (f"/fhir/Practitioner/{nurse['id']}", f"/fhir/PractitionerRole/{nurse['id']}",
                 f"/fhir/CareTeam/{team}"):
        first = await api.client.get(path, headers=colleague)
        body = first.json()
        assert first.headers["etag"] == f'W/"{body["meta"]["versionId"]}"', path
        assert body["text"]["status"] == "generated" and "Early" not in path
        again = await api.client.get(path, headers={**colleague,
                                                    "If-None-Match": first.headers["etag"]})
        assert (again.status_code, again.content) == (304, b""), path
        assert_outcome(await api.client.get(path, headers={**colleague,
                                                           "Accept": "application/fhir+xml"}),
                       406, path)
    # A new member changes the CareTeam a client holds, though not the team record.
    before = (await api.client.get(f"/fhir/CareTeam/{team}", headers=colleague)).headers["etag"]
    await api.staff(team)
    changed = await api.client.get(f"/fhir/CareTeam/{team}",
                                   headers={**colleague, "If-None-Match": before})
    assert changed.status_code == 200 and len(changed.json()["participant"]) == 2


async def test_the_capability_statement_offers_the_three_reads(api: WorkforceApi) -> None:
    response = await api.client.get("/fhir/metadata")
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    assert {r["type"] for r in response.json()["rest"][0]["resource"]} == {
        "Practitioner", "PractitionerRole", "CareTeam", "AuditEvent"}


async def test_access_decisions_on_staff_records_are_audited_allowed_and_denied(
        api: WorkforceApi) -> None:
    team = await api.team()
    person = await api.staff(team)
    colleague, stranger = "c-audit", unique("c")
    await api.get(f"/v1/staff/{person['id']}", api.tokens.clinician(colleague, [team]))
    refused = await api.client.get(f"/v1/staff/{person['id']}/lived-experience",
                                   headers=auth(api.tokens.clinician(stranger, [team])))
    assert refused.status_code == 404
    kit = api.client.app.state.kit  # type: ignore[attr-defined]
    await kit.audit.flush()
    async with kit.sessions() as session:
        rows = (await session.exec(select(AuditEvent).where(
            col(AuditEvent.record_id) == person["id"]))).all()
    decisions = {(row.actor, row.record_type, row.action, row.outcome) for row in rows}
    assert (colleague, "Staff", "read", "allowed") in decisions
    assert (stranger, "LivedExperience", "read", "denied") in decisions
