"""FHIR R4 RiskAssessment (read, vread, history, search), Provenance, Patient and the
CapabilityStatement, each answer validated with fhir.resources (R4B): the person's view is the
basis, the clinician the performer, and there is no prediction and no qualitative risk."""

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from risk_api import RiskApi, area, fhir_valid, links, outcome, unique

from recovery.common.dev_issuer import DevIssuer
from recovery.common.settings import Settings
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.risk.main import MIGRATIONS_DIR, SERVICE, create_app

PATIENT_SYSTEM = Settings().fhir_patient_identifier_system
PUBLIC = {"Forwarded": 'proto=https;host="ehr.example.org"', "X-Forwarded-Prefix": "/gateway"}
PUBLIC_BASE = "https://ehr.example.org/gateway/fhir"


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]


def urls(bundle: dict[str, Any]) -> list[str]:
    """Every link and fullUrl of a Bundle."""
    return [*links(bundle).values(), *(entry["fullUrl"] for entry in bundle["entry"])]


async def every_page(api: RiskApi, token: str, path: str,
                     params: dict[str, Any]) -> list[dict[str, Any]]:
    """The Bundles of a search or history, following next links to the last page."""
    pages = [fhir_valid(await api.fhir(token, path, params))]
    while "next" in links(pages[-1]):
        pages.append(fhir_valid(await api.fhir(token, links(pages[-1])["next"])))
        assert len(pages) < 50
    return pages


async def a_team(api: RiskApi, people: int = 3) -> tuple[str, list[dict[str, Any]]]:
    """The clinician of a team of its own, and one draft co-assessment for each of its
    people, oldest first, each changed a little after the last."""
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafts = []
    for _ in range(people):
        drafts.append(await api.draft(clinician, service_user_id=unique("su"), team_id=team))
        await asyncio.sleep(0.005)
    return clinician, drafts


async def changed(api: RiskApi, token: str, record: dict[str, Any],
                  review_date: str) -> dict[str, Any]:
    response = await api.send("PATCH", f"/v1/risk-assessments/{record['id']}", token,
                              etag=f'"{record["version"]}"', json={"review_date": review_date})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def agreed_twice_then_edited(api: RiskApi) -> tuple[str, str, dict[str, Any]]:
    """A co-assessment agreed at version 1, changed and agreed at 2, then changed into a
    draft 3."""
    person, team = unique("su"), unique("team")
    clinician, own = api.tokens.clinician("clin-7", [team]), api.tokens.service_user(person)
    agreed = await api.agreed(person, team, staff="clin-7")
    second = await changed(api, clinician, agreed, "2031-02-01")
    for token in (own, clinician):
        assert (await api.sign(token, second)).status_code == 201
    third = await changed(api, clinician, {**second, "version": 2}, "2031-03-01")
    return own, clinician, third


# --- reads ---------------------------------------------------------------------------------


async def test_an_agreed_co_assessment_reads_as_a_final_risk_assessment_without_a_prediction(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    agreed = await api.agreed(person, team, staff="clin-7", areas=[
        area("substances", person="A drink at the weekend is fine", agree=False,
             clinician="It led to two admissions", difference="We differ on weekends")])
    response = await api.fhir(api.tokens.service_user(person), f"RiskAssessment/{agreed['id']}")
    resource = fhir_valid(response)
    assert response.headers["etag"] == 'W/"1"' and resource["meta"]["versionId"] == "1"
    assert response.headers["last-modified"].endswith(" GMT")
    assert resource["status"] == "final"
    patient = {"reference": f"Patient/{person}",
               "identifier": {"system": PATIENT_SYSTEM, "value": person}}
    assert resource["subject"] == patient
    assert resource["performer"] == {"reference": "Practitioner/clin-7"}
    assert "prediction" not in resource and "qualitativeRisk" not in response.text
    assert "probability" not in response.text
    (basis,) = resource["basis"]
    view = next(c for c in resource["contained"] if f"#{c['id']}" == basis["reference"])
    assert view["valueString"] == "A drink at the weekend is fine"
    assert view["performer"] == [patient] and view["subject"] == patient
    assert "text" not in view  # a contained resource carries no narrative (dom-1)
    assert any("We differ on weekends" in note["text"] for note in resource["note"])


async def test_a_draft_is_preliminary_and_one_made_in_error_says_so(api: RiskApi) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=unique("su"), team_id=team)
    path = f"RiskAssessment/{drafted['id']}"
    assert fhir_valid(await api.fhir(clinician, path))["status"] == "preliminary"
    marked = await api.send("POST", f"/v1/risk-assessments/{drafted['id']}/entered-in-error",
                            clinician, etag='"1"', json={"reason": "duplicate"})
    assert marked.status_code == 200, marked.text
    assert fhir_valid(await api.fhir(clinician, path))["status"] == "entered-in-error"


async def test_a_read_is_304_when_the_client_holds_its_version(api: RiskApi) -> None:
    team = unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    drafted = await api.draft(clinician, service_user_id=unique("su"), team_id=team)
    path = f"RiskAssessment/{drafted['id']}"
    same = await api.fhir(clinician, path, if_none_match='W/"1"')
    assert same.status_code == 304 and same.headers["etag"] == 'W/"1"' and not same.content
    assert (await api.fhir(clinician, path, if_none_match='"5"')).status_code == 200
    await changed(api, clinician, drafted, "2031-04-01")
    assert fhir_valid(await api.fhir(clinician, path, if_none_match='W/"1"'))[
        "meta"]["versionId"] == "2"


async def test_json_only_an_xml_client_gets_406(api: RiskApi) -> None:
    clinician, drafts = await a_team(api, people=1)
    path = f"RiskAssessment/{drafts[0]['id']}"
    outcome(await api.fhir(clinician, path, accept="application/fhir+xml"), 406)
    outcome(await api.fhir(clinician, "RiskAssessment", {"_format": "xml"}), 406)
    outcome(await api.fhir(clinician, f"{path}/_history/1", {"_format": "text/turtle"}), 406)
    fhir_valid(await api.fhir(clinician, path, accept="application/fhir+json"))


async def test_a_score_in_a_fhir_query_is_refused_as_in_rest(api: RiskApi) -> None:
    clinician, drafts = await a_team(api, people=1)
    record = drafts[0]
    for path, params in (("RiskAssessment", {"risk_score": "3"}),
                         (f"RiskAssessment/{record['id']}", {"riskLevel": "high"}),
                         (f"RiskAssessment/{record['id']}/_history", {"probability": "0.2"}),
                         ("Patient", {"_id": record["service_user_id"], "rag": "red"}),
                         ("Provenance", {"target": record["id"], "severity": "1"}),
                         (f"Provenance/{record['id']}-v1", {"risk_score": "2"})):
        refused = outcome(await api.fhir(clinician, path, params), 422)
        assert "NG225" in refused["issue"][0]["diagnostics"], path


# --- versions ------------------------------------------------------------------------------


async def test_each_version_reads_as_it_was_and_a_missing_one_is_404(api: RiskApi) -> None:
    own, _, record = await agreed_twice_then_edited(api)
    seen = {}
    for version in (1, 2, 3):
        response = await api.fhir(own, f"RiskAssessment/{record['id']}/_history/{version}")
        seen[version] = fhir_valid(response)
        assert response.headers["etag"] == f'W/"{version}"'
        assert seen[version]["meta"]["versionId"] == str(version)
    assert [seen[v]["status"] for v in (1, 2, 3)] == ["final", "final", "preliminary"]
    assert seen[1]["meta"]["lastUpdated"] < seen[2]["meta"]["lastUpdated"]
    newest = fhir_valid(await api.fhir(own, f"RiskAssessment/{record['id']}"))
    assert newest == seen[3]
    for missing in ("4", "0", "x"):
        outcome(await api.fhir(own, f"RiskAssessment/{record['id']}/_history/{missing}"), 404)
    held = await api.fhir(own, f"RiskAssessment/{record['id']}/_history/2",
                          if_none_match='W/"2"')
    assert held.status_code == 304


async def test_a_past_version_shows_the_withdrawal_made_while_it_was_the_latest(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician, own = api.tokens.clinician("clin-1", [team]), api.tokens.service_user(person)
    agreed = await api.agreed(person, team)
    withdrawn = await api.send("POST", f"/v1/risk-assessments/{agreed['id']}/withdraw-agreement",
                               own, etag='"1"')
    assert withdrawn.status_code == 200, withdrawn.text
    await changed(api, clinician, agreed, "2031-05-01")
    assert fhir_valid(await api.fhir(own, f"RiskAssessment/{agreed['id']}/_history/1"))[
        "status"] == "preliminary"

    other = unique("su")
    later = await api.agreed(other, team)
    await changed(api, clinician, later, "2031-05-01")
    other_own = api.tokens.service_user(other)
    assert (await api.send("POST", f"/v1/risk-assessments/{later['id']}/withdraw-agreement",
                           other_own, etag='"2"')).status_code == 200
    # Withdrawn after version 2 replaced it: version 1 stood agreed until then.
    assert fhir_valid(await api.fhir(other_own, f"RiskAssessment/{later['id']}/_history/1"))[
        "status"] == "final"


async def test_history_pages_every_version_newest_first(api: RiskApi) -> None:
    own, _, record = await agreed_twice_then_edited(api)
    path = f"RiskAssessment/{record['id']}/_history"
    pages = await every_page(api, own, path, {"_count": 1})
    assert len(pages) == 3 and all(p["type"] == "history" and p["total"] == 3 for p in pages)
    entries = [entry for page in pages for entry in page["entry"]]
    assert [e["resource"]["meta"]["versionId"] for e in entries] == ["3", "2", "1"]
    assert [e["request"]["method"] for e in entries] == ["PUT", "PUT", "POST"]
    assert {e["fullUrl"] for e in entries} == {f"http://test/fhir/RiskAssessment/{record['id']}"}
    for entry in entries:
        version = entry["resource"]["meta"]["versionId"]
        assert entry["resource"] == fhir_valid(await api.fhir(own, f"{path}/{version}"))
    counted = fhir_valid(await api.fhir(own, path, {"_count": 0}))
    assert counted["total"] == 3 and counted["entry"] == []
    outcome(await api.fhir(own, path, {"_cursor": "garbage"}), 400)


# --- Provenance ----------------------------------------------------------------------------


async def test_provenance_has_one_signature_per_party_and_its_target_resolves(
        api: RiskApi) -> None:
    own, _, record = await agreed_twice_then_edited(api)
    person = record["service_user_id"]
    bundle = fhir_valid(await api.fhir(own, "Provenance",
                                       {"target": f"RiskAssessment/{record['id']}"}))
    assert bundle["total"] == 2
    for entry in bundle["entry"]:
        provenance = entry["resource"]
        assert entry["fullUrl"] == f"http://test/fhir/Provenance/{provenance['id']}"
        assert provenance["activity"]["text"] == "agreed"
        assert {s["who"]["reference"] for s in provenance["signature"]} == {
            f"Patient/{person}", "Practitioner/clin-7"}
        patient = next(s["who"] for s in provenance["signature"]
                       if s["who"]["reference"].startswith("Patient/"))
        assert patient["identifier"] == {"system": PATIENT_SYSTEM, "value": person}
        target = provenance["target"][0]["reference"]
        version = fhir_valid(await api.fhir(own, target))
        assert target == (f"RiskAssessment/{record['id']}/_history/"
                          f"{version['meta']['versionId']}")
        signed = await api.send(
            "GET", f"/v1/risk-assessments/{record['id']}/versions/"
                   f"{version['meta']['versionId']}", own)
        assert {base64.b64decode(s["data"]).decode() for s in provenance["signature"]} == {
            signed.json()["content_hash"]}


async def test_provenance_is_searched_by_target_in_pages_an_ehr_can_follow(
        api: RiskApi) -> None:
    own, _, record = await agreed_twice_then_edited(api)
    for target in (f"RiskAssessment/{record['id']}", record["id"],
                   f"https://elsewhere.example/fhir/RiskAssessment/{record['id']}"):
        pages = await every_page(api, own, "Provenance", {"target": target, "_count": 1})
        seen = [e["resource"]["target"][0]["reference"] for p in pages for e in p["entry"]]
        assert seen == [f"RiskAssessment/{record['id']}/_history/1",
                        f"RiskAssessment/{record['id']}/_history/2"], target
    summary = fhir_valid(await api.fhir(own, "Provenance", {"target": record["id"],
                                                            "_summary": "count"}))
    assert summary["total"] == 2 and summary["entry"] == []
    for wrong in ({"target": f"CarePlan/{record['id']}"}, {}, {"target": "a,b"},
                  {"target": record["id"], "_count": "-2"}):
        outcome(await api.fhir(own, "Provenance", wrong), 400)
    outcome(await api.fhir(own, "Provenance", {"target": record["id"], "patient": "x"},
                           prefer="handling=strict"), 400)


async def test_every_provenance_full_url_reads_as_the_same_resource(api: RiskApi) -> None:
    own, clinician, record = await agreed_twice_then_edited(api)
    for params in ({"target": f"RiskAssessment/{record['id']}"},
                   {"target": record["id"], "_count": 1}):
        for page in await every_page(api, own, "Provenance", params):
            for entry in page["entry"]:
                for token in (own, clinician):
                    read = await api.fhir(token, entry["fullUrl"])
                    assert fhir_valid(read) == entry["resource"], entry["fullUrl"]
                    version = entry["resource"]["meta"]["versionId"]
                    assert read.headers["etag"] == f'W/"{version}"'
                    assert read.headers["last-modified"].endswith(" GMT")
                same = await api.fhir(own, entry["fullUrl"], if_none_match=f'W/"{version}"')
                assert same.status_code == 304 and not same.content


async def test_a_withdrawal_is_a_new_version_of_the_provenance(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    own = api.tokens.service_user(person)
    record = await api.agreed(person, team, staff="clin-7")
    path = f"Provenance/{record['id']}-v1"
    agreed = fhir_valid(await api.fhir(own, path))
    assert (agreed["meta"]["versionId"], agreed["activity"]["text"]) == ("2", "agreed")
    withdrawn = await api.send("POST", f"/v1/risk-assessments/{record['id']}/withdraw-agreement",
                               own, etag='"1"')
    assert withdrawn.status_code == 200, withdrawn.text
    stale = await api.fhir(own, path, if_none_match='W/"2"')
    standing = fhir_valid(stale)
    assert (standing["meta"]["versionId"], standing["activity"]["text"]) == ("3", "signed")
    assert stale.headers["etag"] == 'W/"3"'
    assert [s["who"]["reference"] for s in standing["signature"]] == ["Practitioner/clin-7"]
    searched = fhir_valid(await api.fhir(own, "Provenance", {"target": record["id"]}))
    assert [e["resource"] for e in searched["entry"]] == [standing]


async def test_a_version_without_a_standing_signature_or_a_malformed_id_is_a_404(
        api: RiskApi) -> None:
    own, _, record = await agreed_twice_then_edited(api)
    record_id = record["id"]
    # Version 3 is a draft nobody has signed; there is no version 4.
    for path in (f"{record_id}-v3", f"{record_id}-v4", f"{record_id}-v0", f"{record_id}-v01",
                 f"{record_id}-vx", record_id, f"{record_id}-v1-v", "nonsense",
                 f"{'a' * 40}-v1", f"{unique('ra')}-v1", f"{record_id}-v1.json"):
        outcome(await api.fhir(own, f"Provenance/{path}"), 404)
    fhir_valid(await api.fhir(own, f"Provenance/{record_id}-v2"))


# --- search --------------------------------------------------------------------------------


async def test_search_by_patient_or_subject_in_every_form(api: RiskApi) -> None:
    clinician, drafts = await a_team(api)
    first = drafts[0]
    person = first["service_user_id"]
    for name in ("patient", "subject"):
        for value in (f"Patient/{person}", person, f"https://ehr.example/fhir/Patient/{person}"):
            bundle = fhir_valid(await api.fhir(clinician, "RiskAssessment", {name: value}))
            assert ids(bundle) == [first["id"]] and bundle["total"] == 1, (name, value)
    both = fhir_valid(await api.fhir(clinician, "RiskAssessment", {
        "subject": f"{person},Patient/{drafts[1]['service_user_id']}"}))
    assert set(ids(both)) == {first["id"], drafts[1]["id"]}
    outcome(await api.fhir(clinician, "RiskAssessment", {"patient": f"Group/{person}"}), 400)
    own = fhir_valid(await api.fhir(api.tokens.service_user(person), "RiskAssessment"))
    assert ids(own) == [first["id"]]
    assert ids(fhir_valid(await api.fhir(clinician, "RiskAssessment"))) == [
        d["id"] for d in reversed(drafts)]


async def test_search_by_status_codes(api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    clinician = api.tokens.clinician("clin-1", [team])
    final = await api.agreed(person, team)
    draft = await api.draft(clinician, service_user_id=unique("su"), team_id=team)
    wrong = await api.draft(clinician, service_user_id=unique("su"), team_id=team)
    assert (await api.send("POST", f"/v1/risk-assessments/{wrong['id']}/entered-in-error",
                           clinician, etag='"1"', json={"reason": "duplicate"})
            ).status_code == 200

    async def found(status: str) -> set[str]:
        return set(ids(fhir_valid(await api.fhir(clinician, "RiskAssessment",
                                                 {"status": status}))))

    assert await found("final") == {final["id"]}
    assert await found("preliminary") == {draft["id"]}
    assert await found("entered-in-error") == {wrong["id"]}
    assert await found("final,preliminary") == {final["id"], draft["id"]}
    assert await found("amended") == set()
    assert {e["resource"]["status"] for e in fhir_valid(
        await api.fhir(clinician, "RiskAssessment"))["entry"]} == {
        "final", "preliminary", "entered-in-error"}
    # An edit after agreement is a preliminary draft again (the agreed one stays in force).
    await changed(api, clinician, final, "2031-06-01")
    assert await found("final") == set()
    for bad in ("agreed", "final,bogus"):
        outcome(await api.fhir(clinician, "RiskAssessment", {"status": bad}), 400)


async def test_search_by_id_and_each_record_once_as_its_latest_version(api: RiskApi) -> None:
    clinician, drafts = await a_team(api)
    await changed(api, clinician, drafts[1], "2031-07-01")
    bundle = fhir_valid(await api.fhir(clinician, "RiskAssessment", [
        ("_id", f"{drafts[1]['id']},{drafts[2]['id']}")]))
    versions = {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in bundle["entry"]}
    assert versions == {drafts[1]["id"]: "2", drafts[2]["id"]: "1"}
    stranger = api.tokens.clinician("clin-9", [unique("team")])
    assert ids(fhir_valid(await api.fhir(stranger, "RiskAssessment",
                                         {"_id": drafts[1]["id"]}))) == []


async def test_search_by_last_updated_with_every_prefix(api: RiskApi) -> None:
    clinician, drafts = await a_team(api, people=2)
    first, second = [fhir_valid(await api.fhir(clinician, f"RiskAssessment/{d['id']}"))
                     for d in drafts]
    one, two = first["meta"]["lastUpdated"], second["meta"]["lastUpdated"]
    assert one < two

    async def found(*values: str, **more: str) -> set[str]:
        params = [("_lastUpdated", value) for value in values] + list(more.items())
        return set(ids(fhir_valid(await api.fhir(clinician, "RiskAssessment", params))))

    a, b = drafts[0]["id"], drafts[1]["id"]
    assert await found(f"eq{one}") == await found(one) == {a}
    assert await found(f"gt{one}") == await found(f"sa{one}") == await found(f"ge{two}") == {b}
    assert await found(f"lt{two}") == await found(f"eb{two}") == await found(f"le{one}") == {a}
    assert await found(f"ge{one}", f"le{two}") == {a, b}
    day = one[:10]
    assert await found(day) == await found(f"eq{day[:4]}") == {a, b}
    after = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    assert await found(f"ge{after}") == set()
    assert await found(f"ge{one}", status="final") == set()
    await changed(api, clinician, drafts[0], "2031-08-01")
    assert await found(f"gt{two}") == {a}
    assert await found(f"gt{two}", patient=drafts[1]["service_user_id"]) == set()
    for bad in ("soon", f"ap{one}", "2026-02-30"):
        outcome(await api.fhir(clinician, "RiskAssessment", {"_lastUpdated": bad}), 400)


async def test_next_links_lead_to_every_match_once_and_totals_count_them(
        api: RiskApi) -> None:
    clinician, drafts = await a_team(api, people=5)
    pages = await every_page(api, clinician, "RiskAssessment", {"_count": 2,
                                                                "_total": "accurate"})
    assert [len(page["entry"]) for page in pages] == [2, 2, 1]
    assert all(page["total"] == 5 for page in pages)
    assert [i for page in pages for i in ids(page)] == [d["id"] for d in reversed(drafts)]
    for counted in ({"_summary": "count"}, {"_count": "0"}):
        bundle = fhir_valid(await api.fhir(clinician, "RiskAssessment", counted))
        assert bundle["total"] == 5 and bundle["entry"] == [], counted
    for bad in ({"_count": "1.5"}, {"_total": "all"}, {"_cursor": "%%%"}, {"patient": ""}):
        outcome(await api.fhir(clinician, "RiskAssessment", bad), 400)


async def test_unknown_parameters_are_dropped_unless_handling_is_strict(api: RiskApi) -> None:
    clinician, drafts = await a_team(api, people=1)
    params = {"patient": drafts[0]["service_user_id"], "code": "x"}
    lenient = fhir_valid(await api.fhir(clinician, "RiskAssessment", params))
    assert ids(lenient) == [drafts[0]["id"]] and "code" not in links(lenient)["self"]
    strict = outcome(await api.fhir(clinician, "RiskAssessment", params,
                                    prefer="handling=strict"), 400)
    assert "code" in strict["issue"][0]["diagnostics"]


async def test_every_link_and_full_url_is_at_the_public_base(api: RiskApi) -> None:
    own, _, record = await agreed_twice_then_edited(api)
    person = record["service_user_id"]
    answers = [fhir_valid(await api.fhir(own, path, params, **PUBLIC)) for path, params in (
        ("RiskAssessment", {"patient": person}),
        (f"RiskAssessment/{record['id']}/_history", {"_count": 1}),
        ("Provenance", {"target": record["id"], "_count": 1}),
        ("Patient", {"identifier": f"{PATIENT_SYSTEM}|{person}"}))]
    for bundle in answers:
        found = urls(bundle)
        assert bundle["entry"] and len(found) > len(bundle["entry"]), bundle
        assert all(url.startswith(f"{PUBLIC_BASE}/") for url in found), found
    assert all("next" in links(bundle) for bundle in answers[1:3])


# --- Patient and access --------------------------------------------------------------------


async def test_a_person_with_a_co_assessment_reads_and_searches_as_a_patient(
        api: RiskApi) -> None:
    person, team = unique("su"), unique("team")
    await api.draft(api.tokens.clinician("clin-1", [team]), service_user_id=person,
                    team_id=team)
    own = api.tokens.service_user(person)
    patient = fhir_valid(await api.fhir(own, f"Patient/{person}"))
    assert patient["identifier"][0] == {"use": "usual", "system": PATIENT_SYSTEM,
                                        "value": person}
    for params in ({"_id": person}, {"identifier": f"{PATIENT_SYSTEM}|{person}"}):
        assert ids(fhir_valid(await api.fhir(own, "Patient", params))) == [person]
    assert ids(fhir_valid(await api.fhir(own, "Patient", {
        "identifier": f"urn:other|{person}"}))) == []
    system = api.tokens.system()
    assert ids(fhir_valid(await api.fhir(system, "Patient", {"_id": person}))) == [person]
    outcome(await api.fhir(api.tokens.clinician("clin-1", [team]), f"Patient/{unique('su')}"),
            404)


async def test_another_person_or_team_finds_nothing_on_any_fhir_path(api: RiskApi) -> None:
    own, clinician, record = await agreed_twice_then_edited(api)
    person, record_id = record["service_user_id"], record["id"]
    strangers = {"another person": api.tokens.service_user(unique("su")),
                 "another team": api.tokens.clinician("clin-out", [unique("team")])}
    for who, token in strangers.items():
        for path in (f"RiskAssessment/{record_id}", f"RiskAssessment/{record_id}/_history/1",
                     f"RiskAssessment/{record_id}/_history", f"Patient/{person}"):
            outcome(await api.fhir(token, path), 404)
        outcome(await api.fhir(token, "Provenance", {"target": record_id}), 404)
        for version in (1, 2):
            outcome(await api.fhir(token, f"Provenance/{record_id}-v{version}"), 404)
        for path, params in (("RiskAssessment", {"patient": person}),
                             ("RiskAssessment", {"_id": record_id}), ("RiskAssessment", {}),
                             ("Patient", {"_id": person})):
            bundle = fhir_valid(await api.fhir(token, path, {**params, "_total": "accurate"}))
            assert bundle["entry"] == [] and bundle["total"] == 0, (who, path, params)
    for token in (own, clinician):
        assert ids(fhir_valid(await api.fhir(token, "RiskAssessment",
                                             {"patient": person}))) == [record_id]
        fhir_valid(await api.fhir(token, f"Provenance/{record_id}-v1"))


async def test_the_capability_statement_says_what_is_offered_and_is_public(
        api: RiskApi) -> None:
    statement = fhir_valid(await api.fhir(None, "metadata"))
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"RiskAssessment", "Provenance", "Patient", "AuditEvent"}
    assessment = resources["RiskAssessment"]
    assert (assessment["versioning"], assessment["readHistory"]) == ("versioned", True)
    assert [i["code"] for i in assessment["interaction"]] == [
        "read", "vread", "history-instance", "search-type"]
    assert [p["name"] for p in assessment["searchParam"]] == [
        "patient", "subject", "status", "_id", "_lastUpdated"]
    provenance = resources["Provenance"]
    assert [i["code"] for i in provenance["interaction"]] == ["read", "search-type"]
    assert (provenance["versioning"], provenance["readHistory"]) == ("versioned", False)
    assert [p["name"] for p in provenance["searchParam"]] == ["target"]


# --- a service whose pages are small -----------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
async def small_pages(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                      dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[RiskApi]:
    database_url = module_database_url(request, tmp_path_factory, "risk_small_pages")
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, page_size_default=2,
                             page_size_max=3)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield RiskApi(client, tokens)


async def test_count_is_honoured_up_to_the_page_size_maximum_and_capped_beyond(
        small_pages: RiskApi) -> None:
    clinician, drafts = await a_team(small_pages, people=4)
    assert len(fhir_valid(await small_pages.fhir(clinician, "RiskAssessment"))["entry"]) == 2
    capped = fhir_valid(await small_pages.fhir(clinician, "RiskAssessment", {"_count": 99}))
    assert len(capped["entry"]) == 3 and "_count=3" in links(capped)["self"]
    pages = await every_page(small_pages, clinician, "RiskAssessment", {"_count": 99})
    assert [i for page in pages for i in ids(page)] == [d["id"] for d in reversed(drafts)]
