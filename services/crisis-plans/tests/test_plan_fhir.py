"""FHIR R4 CarePlan (read, vread, history, search), Provenance of agreement, Patient and the
CapabilityStatement, each answer validated with fhir.resources (R4B)."""

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from plans_api import PLAN_CONTENT, PlansApi, fhir_valid, links, outcome, unique

from recovery.common.dev_issuer import DevIssuer
from recovery.common.settings import Settings
from recovery.common.testing.plugin import (
    BACKENDS,
    TokenFactory,
    make_settings,
    module_database_url,
    running_service,
)
from recovery.crisis_plans.main import MIGRATIONS_DIR, SERVICE, create_app

PATIENT_SYSTEM = Settings().fhir_patient_identifier_system
PUBLIC = {"Forwarded": 'proto=https;host="ehr.example.org"', "X-Forwarded-Prefix": "/gateway"}
PUBLIC_BASE = "https://ehr.example.org/gateway/fhir"


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]


def urls(bundle: dict[str, Any]) -> list[str]:
    """Every link and fullUrl of a Bundle."""
    return [*links(bundle).values(), *(entry["fullUrl"] for entry in bundle["entry"])]


async def every_page(api: PlansApi, token: str, path: str,
                     params: dict[str, Any]) -> list[dict[str, Any]]:
    """The Bundles of a search or history, following next links to the last page."""
    pages = [fhir_valid(await api.fhir(token, path, params))]
    while "next" in links(pages[-1]):
        pages.append(fhir_valid(await api.fhir(token, links(pages[-1])["next"])))
        assert len(pages) < 50
    return pages


async def a_team(api: PlansApi, people: int = 3) -> tuple[str, list[dict[str, Any]]]:
    """The clinician of a team of its own, and one draft plan for each of its people,
    oldest first, each changed a little after the last."""
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    plans = []
    for _ in range(people):
        plans.append(await api.draft(staff, unique("su"), team))
        await asyncio.sleep(0.005)
    return staff, plans


# --- reads ---------------------------------------------------------------------------------


async def test_an_agreed_plan_reads_as_a_valid_mental_health_crisis_care_plan(
        api: PlansApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    plan = await api.agreed(api.tokens.clinician("staff-1"), person, own)
    response = await api.fhir(own, f"CarePlan/{plan['id']}")
    resource = fhir_valid(response)
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith(" GMT")
    assert resource["meta"]["versionId"] == "1"
    assert resource["status"] == "active" and resource["intent"] == "plan"
    assert resource["category"][0]["coding"][0]["code"] == "736253002"
    patient = {"reference": f"Patient/{person}",
               "identifier": {"system": PATIENT_SYSTEM, "value": person}}
    assert resource["subject"] == patient and resource["contributor"][0] == patient
    assert {c["reference"] for c in resource["contributor"]} == {
        f"Patient/{person}", "Practitioner/staff-1"}
    notes = [n["text"] for n in resource["note"]]
    assert PLAN_CONTENT["early_warning_signs"][0] in notes
    assert resource["period"]["end"] == PLAN_CONTENT["review_on"]
    assert PLAN_CONTENT["early_warning_signs"][0] in resource["text"]["div"]


async def test_a_read_is_304_when_the_client_holds_its_version(api: PlansApi) -> None:
    staff = api.tokens.clinician()
    plan = await api.draft(staff, unique("su"))
    path = f"CarePlan/{plan['id']}"
    same = await api.fhir(staff, path, if_none_match='W/"1"')
    assert same.status_code == 304 and same.headers["etag"] == 'W/"1"' and not same.content
    assert (await api.fhir(staff, path, if_none_match='W/"7"')).status_code == 200
    await api.edit(staff, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]})
    changed = await api.fhir(staff, path, if_none_match='W/"1"')
    assert fhir_valid(changed)["meta"]["versionId"] == "2"


async def test_json_only_an_xml_client_gets_406(api: PlansApi) -> None:
    staff = api.tokens.clinician()
    plan = await api.draft(staff, unique("su"))
    outcome(await api.fhir(staff, f"CarePlan/{plan['id']}", accept="application/fhir+xml"), 406)
    outcome(await api.fhir(staff, "CarePlan", {"_format": "xml"}), 406)
    outcome(await api.fhir(staff, f"CarePlan/{plan['id']}/_history", {"_format": "xml"}), 406)
    fhir_valid(await api.fhir(staff, f"CarePlan/{plan['id']}", {"_format": "json"}))


# --- versions ------------------------------------------------------------------------------


async def agreed_twice_then_edited(api: PlansApi) -> tuple[str, str, dict[str, Any]]:
    """A plan agreed at version 1, edited and agreed at 2, then edited into a draft 3."""
    person = unique("su")
    staff, own = api.tokens.clinician("staff-1"), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    second = (await api.edit(own, plan["id"], '"1"', **{**PLAN_CONTENT,
                                                        "triggers": ["Noise"]})).json()
    for token in (own, staff):
        assert (await api.sign(token, second)).status_code == 201
    third = await api.edit(staff, plan["id"], '"2"', **{**PLAN_CONTENT, "triggers": ["Crowds"]})
    return own, staff, third.json()


async def test_each_version_reads_as_it_was_and_a_missing_one_is_404(api: PlansApi) -> None:
    own, _, plan = await agreed_twice_then_edited(api)
    seen = {}
    for version in (1, 2, 3):
        response = await api.fhir(own, f"CarePlan/{plan['id']}/_history/{version}")
        resource = fhir_valid(response)
        assert response.headers["etag"] == f'W/"{version}"'
        assert resource["meta"]["versionId"] == str(version)
        seen[version] = resource
    assert [seen[v]["status"] for v in (1, 2, 3)] == ["active", "active", "draft"]
    triggers = {v: [n["text"] for n in seen[v]["note"]
                    if n["extension"][0]["valueCoding"]["code"] == "triggers"] for v in seen}
    assert triggers == {1: PLAN_CONTENT["triggers"], 2: ["Noise"], 3: ["Crowds"]}
    assert seen[1]["meta"]["lastUpdated"] < seen[2]["meta"]["lastUpdated"]
    newest = fhir_valid(await api.fhir(own, f"CarePlan/{plan['id']}"))
    assert {**newest, "text": None} == {**seen[3], "text": None}
    for missing in ("4", "0", "abc", "1.5"):
        outcome(await api.fhir(own, f"CarePlan/{plan['id']}/_history/{missing}"), 404)
    same = await api.fhir(own, f"CarePlan/{plan['id']}/_history/1", if_none_match='W/"1"')
    assert same.status_code == 304


async def test_a_past_version_shows_the_withdrawal_made_while_it_was_the_newest(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician("staff-1"), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    withdrawn = await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                      json={}, headers=api.auth(own, '"1"'))
    assert withdrawn.status_code == 200, withdrawn.text
    await api.edit(own, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]})
    first = fhir_valid(await api.fhir(own, f"CarePlan/{plan['id']}/_history/1"))
    assert first["status"] == "revoked"

    other = unique("su")
    other_own = api.tokens.service_user(other)
    agreed = await api.agreed(staff, other, other_own)
    await api.edit(other_own, agreed["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]})
    later = await api.client.post(f"/v1/crisis-plans/{agreed['id']}/withdraw-agreement",
                                  json={}, headers=api.auth(other_own, '"2"'))
    assert later.status_code == 200, later.text
    # Withdrawn after version 2 replaced it: version 1 stood agreed until then.
    kept = fhir_valid(await api.fhir(other_own, f"CarePlan/{agreed['id']}/_history/1"))
    assert kept["status"] == "active"


async def test_history_pages_every_version_newest_first(api: PlansApi) -> None:
    own, _, plan = await agreed_twice_then_edited(api)
    pages = await every_page(api, own, f"CarePlan/{plan['id']}/_history", {"_count": 2})
    assert len(pages) == 2 and all(page["type"] == "history" for page in pages)
    assert all(page["total"] == 3 for page in pages)
    entries = [entry for page in pages for entry in page["entry"]]
    assert [e["resource"]["meta"]["versionId"] for e in entries] == ["3", "2", "1"]
    assert [e["request"]["method"] for e in entries] == ["PUT", "PUT", "POST"]
    assert {e["fullUrl"] for e in entries} == {f"http://test/fhir/CarePlan/{plan['id']}"}
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    for entry in entries:
        version = entry["resource"]["meta"]["versionId"]
        vread = fhir_valid(await api.fhir(own, f"CarePlan/{plan['id']}/_history/{version}"))
        assert entry["resource"] == vread
    whole = fhir_valid(await api.fhir(own, f"CarePlan/{plan['id']}/_history"))
    assert len(whole["entry"]) == 3 and "next" not in links(whole)
    counted = fhir_valid(await api.fhir(own, f"CarePlan/{plan['id']}/_history",
                                        {"_summary": "count"}))
    assert counted["total"] == 3 and counted["entry"] == []


# --- Provenance ----------------------------------------------------------------------------


async def test_agreement_is_a_provenance_whose_target_resolves_to_that_version(
        api: PlansApi) -> None:
    own, _, plan = await agreed_twice_then_edited(api)
    bundle = fhir_valid(await api.fhir(own, "Provenance", {"target": f"CarePlan/{plan['id']}"}))
    assert bundle["total"] == 2  # the draft has no signatures yet
    for entry in bundle["entry"]:
        provenance = entry["resource"]
        assert entry["fullUrl"] == f"http://test/fhir/Provenance/{provenance['id']}"
        target = provenance["target"][0]["reference"]
        version = fhir_valid(await api.fhir(own, target))
        assert target == f"CarePlan/{plan['id']}/_history/{version['meta']['versionId']}"
        signed = next(e["valueString"] for e in version["extension"]
                      if e["url"].endswith("/content-hash"))
        assert {base64.b64decode(s["data"]).decode() for s in provenance["signature"]} == {
            signed}
        person = plan["service_user_id"]
        assert {s["who"]["reference"] for s in provenance["signature"]} == {
            f"Patient/{person}", "Practitioner/staff-1"}
        patient = next(a["who"] for a in provenance["agent"]
                       if a["who"]["reference"].startswith("Patient/"))
        assert patient["identifier"] == {"system": PATIENT_SYSTEM, "value": person}


async def test_provenance_is_searched_by_target_in_pages_an_ehr_can_follow(
        api: PlansApi) -> None:
    own, _, plan = await agreed_twice_then_edited(api)
    for target in (f"CarePlan/{plan['id']}", plan["id"],
                   f"https://elsewhere.example/fhir/CarePlan/{plan['id']}"):
        pages = await every_page(api, own, "Provenance", {"target": target, "_count": 1})
        seen = [e["resource"]["target"][0]["reference"] for p in pages for e in p["entry"]]
        assert seen == [f"CarePlan/{plan['id']}/_history/1",
                        f"CarePlan/{plan['id']}/_history/2"], target
    counted = fhir_valid(await api.fhir(own, "Provenance", {"target": plan["id"], "_count": 0}))
    assert counted["total"] == 2 and counted["entry"] == []
    accurate = fhir_valid(await api.fhir(own, "Provenance", {"target": plan["id"],
                                                             "_count": 1, "_total": "accurate"}))
    assert accurate["total"] == 2 and len(accurate["entry"]) == 1
    for wrong in ({"target": f"Goal/{plan['id']}"}, {}, {"target": "a,b"},
                  {"target": plan["id"], "_count": "many"},
                  {"target": plan["id"], "_cursor": "not-a-cursor"}):
        outcome(await api.fhir(own, "Provenance", wrong), 400)
    strict = await api.fhir(own, "Provenance", {"target": plan["id"], "_id": "x"},
                            prefer="handling=strict")
    outcome(strict, 400)


async def test_every_provenance_full_url_reads_as_the_same_resource(api: PlansApi) -> None:
    own, staff, plan = await agreed_twice_then_edited(api)
    for params in ({"target": f"CarePlan/{plan['id']}"}, {"target": plan["id"], "_count": 1}):
        for page in await every_page(api, own, "Provenance", params):
            for entry in page["entry"]:
                for token in (own, staff):
                    read = await api.fhir(token, entry["fullUrl"])
                    assert fhir_valid(read) == entry["resource"], entry["fullUrl"]
                    version = entry["resource"]["meta"]["versionId"]
                    assert read.headers["etag"] == f'W/"{version}"'
                    assert read.headers["last-modified"].endswith(" GMT")
                same = await api.fhir(own, entry["fullUrl"], if_none_match=f'W/"{version}"')
                assert same.status_code == 304 and not same.content


async def test_a_withdrawal_is_a_new_version_of_the_provenance(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician("staff-1"), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    path = f"Provenance/{plan['id']}-v1"
    agreed = fhir_valid(await api.fhir(own, path))
    assert agreed["meta"]["versionId"] == "2"  # the two signatures
    withdrawn = await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                      json={}, headers=api.auth(own, '"1"'))
    assert withdrawn.status_code == 200, withdrawn.text
    stale = await api.fhir(own, path, if_none_match='W/"2"')
    standing = fhir_valid(stale)
    assert standing["meta"]["versionId"] == "3"
    assert stale.headers["etag"] == 'W/"3"'
    assert standing["meta"]["lastUpdated"] > agreed["meta"]["lastUpdated"]
    assert [s["who"]["reference"] for s in standing["signature"]] == ["Practitioner/staff-1"]
    searched = fhir_valid(await api.fhir(own, "Provenance", {"target": plan["id"]}))
    assert [e["resource"] for e in searched["entry"]] == [standing]


async def test_a_version_without_a_standing_signature_or_a_malformed_id_is_a_404(
        api: PlansApi) -> None:
    own, _, plan = await agreed_twice_then_edited(api)
    plan_id = plan["id"]
    # Version 3 is a draft nobody has signed; there is no version 4.
    for path in (f"{plan_id}-v3", f"{plan_id}-v4", f"{plan_id}-v0", f"{plan_id}-v01",
                 f"{plan_id}-vx", plan_id, f"{plan_id}-v1-v", "nonsense", f"{'a' * 40}-v1",
                 f"{unique('plan')}-v1", f"{plan_id}-v1.json"):
        outcome(await api.fhir(own, f"Provenance/{path}"), 404)
    fhir_valid(await api.fhir(own, f"Provenance/{plan_id}-v2"))


# --- search --------------------------------------------------------------------------------


async def test_search_by_patient_or_subject_in_every_form(api: PlansApi) -> None:
    staff, plans = await a_team(api)
    first = plans[0]
    person = first["service_user_id"]
    for name in ("patient", "subject"):
        for value in (f"Patient/{person}", person,
                      f"https://ehr.example.org/fhir/Patient/{person}"):
            bundle = fhir_valid(await api.fhir(staff, "CarePlan", {name: value}))
            assert ids(bundle) == [first["id"]], (name, value)
            assert bundle["total"] == 1
    both = fhir_valid(await api.fhir(staff, "CarePlan", {
        "patient": f"{person},{plans[1]['service_user_id']}"}))
    assert set(ids(both)) == {first["id"], plans[1]["id"]}
    neither = fhir_valid(await api.fhir(staff, "CarePlan", {
        "patient": person, "subject": plans[1]["service_user_id"]}))
    assert ids(neither) == []
    outcome(await api.fhir(staff, "CarePlan", {"patient": f"Practitioner/{person}"}), 400)
    mine = fhir_valid(await api.fhir(api.tokens.service_user(person), "CarePlan"))
    assert ids(mine) == [first["id"]]
    teams = fhir_valid(await api.fhir(staff, "CarePlan"))
    assert ids(teams) == [p["id"] for p in reversed(plans)]  # newest first, as in REST


async def test_search_by_status_codes(api: PlansApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    draft = await api.draft(staff, unique("su"), team)
    person = unique("su")
    own = api.tokens.service_user(person)
    agreed = await api.agreed(staff, person, own, team)
    withdrawer = unique("su")
    withdrawn = await api.agreed(staff, withdrawer, api.tokens.service_user(withdrawer), team)
    assert (await api.client.post(f"/v1/crisis-plans/{withdrawn['id']}/withdraw-agreement",
                                  json={}, headers=api.auth(api.tokens.service_user(withdrawer),
                                                            '"1"'))).status_code == 200
    wrong = await api.draft(staff, unique("su"), team)
    assert (await api.mark_in_error(staff, wrong["id"], '"1"')).status_code == 200

    async def found(status: str) -> set[str]:
        return set(ids(fhir_valid(await api.fhir(staff, "CarePlan", {"status": status}))))

    assert await found("draft") == {draft["id"]}
    assert await found("active") == {agreed["id"]}
    assert await found("revoked") == {withdrawn["id"]}
    assert await found("entered-in-error") == {wrong["id"]}
    assert await found("draft,active") == {draft["id"], agreed["id"]}
    assert await found("completed") == set()  # a CarePlan code we never give
    # Without status, every plan (an EHR that syncs learns of the one made in error).
    everything = fhir_valid(await api.fhir(staff, "CarePlan"))
    statuses = {e["resource"]["id"]: e["resource"]["status"] for e in everything["entry"]}
    assert statuses[wrong["id"]] == "entered-in-error" and len(statuses) == 4
    for bad in ("agreed", "draft,nonsense", "http://hl7.org/fhir/request-status|active"):
        outcome(await api.fhir(staff, "CarePlan", {"status": bad}), 400)


async def test_search_by_id_and_each_plan_once_as_its_newest_version(api: PlansApi) -> None:
    staff, plans = await a_team(api)
    edited = await api.edit(staff, plans[0]["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["x"]})
    assert edited.status_code == 200
    bundle = fhir_valid(await api.fhir(staff, "CarePlan", {
        "_id": f"{plans[0]['id']},{plans[2]['id']},no-such-plan"}))
    assert sorted(ids(bundle)) == sorted([plans[0]["id"], plans[2]["id"]])
    versions = {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in bundle["entry"]}
    assert versions == {plans[0]["id"]: "2", plans[2]["id"]: "1"}
    others = api.tokens.clinician("staff-2", [unique("team")])
    assert ids(fhir_valid(await api.fhir(others, "CarePlan", {"_id": plans[0]["id"]}))) == []


async def test_search_by_last_updated_with_every_prefix(api: PlansApi) -> None:
    staff, plans = await a_team(api, people=2)
    first, second = [fhir_valid(await api.fhir(staff, f"CarePlan/{p['id']}")) for p in plans]
    one, two = first["meta"]["lastUpdated"], second["meta"]["lastUpdated"]
    assert one < two

    async def found(*values: str, **more: str) -> set[str]:
        params = [("_lastUpdated", value) for value in values] + list(more.items())
        return set(ids(fhir_valid(await api.fhir(staff, "CarePlan", params))))

    a, b = plans[0]["id"], plans[1]["id"]
    assert await found(f"eq{one}") == await found(one) == {a}
    assert await found(f"ge{two}") == {b}
    assert await found(f"gt{one}") == {b}
    assert await found(f"sa{one}") == {b}
    assert await found(f"le{one}") == {a}
    assert await found(f"lt{two}") == {a}
    assert await found(f"eb{two}") == {a}
    assert await found(f"ge{one}", f"lt{two}") == {a}
    today = one[:10]
    assert await found(today) == await found(f"ge{today[:7]}") == {a, b}
    tomorrow = (datetime.fromisoformat(today) + timedelta(days=1)).date().isoformat()
    assert await found(f"ge{tomorrow}") == set()
    assert await found("lt2000") == set()
    assert await found(f"gt{one}", patient=plans[0]["service_user_id"]) == set()
    # A signature is a change: the first plan is now the one changed last.
    own = api.tokens.service_user(plans[0]["service_user_id"])
    assert (await api.sign(own, plans[0])).status_code == 201
    assert await found(f"gt{two}") == {a}
    assert await found(f"gt{two}", status="draft") == {a}
    for bad in ("yesterday", f"ne{one}", f"ap{today}", "2026-13-45"):
        outcome(await api.fhir(staff, "CarePlan", {"_lastUpdated": bad}), 400)


async def test_next_links_lead_to_every_match_once_and_totals_count_them(
        api: PlansApi) -> None:
    staff, plans = await a_team(api, people=5)
    pages = await every_page(api, staff, "CarePlan", {"_count": 2, "_total": "accurate"})
    assert [len(page["entry"]) for page in pages] == [2, 2, 1]
    assert all(page["total"] == 5 for page in pages)
    assert [i for page in pages for i in ids(page)] == [p["id"] for p in reversed(plans)]
    plain = await every_page(api, staff, "CarePlan", {"_count": 2})
    assert all("total" not in page for page in plain)
    for counted in ({"_summary": "count"}, {"_count": "0"}):
        bundle = fhir_valid(await api.fhir(staff, "CarePlan", counted))
        assert bundle["total"] == 5 and bundle["entry"] == [], counted
        assert "next" not in links(bundle)
    for bad in ({"_count": "-1"}, {"_count": "two"}, {"_total": "maybe"},
                {"_cursor": "garbage"}):
        outcome(await api.fhir(staff, "CarePlan", bad), 400)


async def test_unknown_parameters_are_dropped_unless_handling_is_strict(api: PlansApi) -> None:
    staff, plans = await a_team(api, people=1)
    params = {"patient": plans[0]["service_user_id"], "category": "crisis"}
    lenient = fhir_valid(await api.fhir(staff, "CarePlan", params))
    assert ids(lenient) == [plans[0]["id"]]
    assert "category" not in links(lenient)["self"] and "patient=" in links(lenient)["self"]
    strict = await api.fhir(staff, "CarePlan", params, prefer="handling=strict")
    assert "category" in outcome(strict, 400)["issue"][0]["diagnostics"]
    fhir_valid(await api.fhir(staff, "CarePlan", {"patient": plans[0]["service_user_id"]},
                              prefer="handling=strict"))


async def test_every_link_and_full_url_is_at_the_public_base(api: PlansApi) -> None:
    own, _, plan = await agreed_twice_then_edited(api)
    person = plan["service_user_id"]
    answers = [
        await api.fhir(own, "CarePlan", {"patient": person, "_count": 1}, **PUBLIC),
        await api.fhir(own, f"CarePlan/{plan['id']}/_history", {"_count": 1}, **PUBLIC),
        await api.fhir(own, "Provenance", {"target": plan["id"], "_count": 1}, **PUBLIC),
        await api.fhir(own, "Patient", {"_id": person}, **PUBLIC),
    ]
    for answer in answers:
        bundle = fhir_valid(answer)
        found = urls(bundle)
        assert bundle["entry"] and len(found) > len(bundle["entry"]), bundle
        assert all(url.startswith(f"{PUBLIC_BASE}/") for url in found), found
    paged = [fhir_valid(answer) for answer in answers[1:3]]
    assert all("next" in links(bundle) for bundle in paged)


# --- Patient -------------------------------------------------------------------------------


async def test_a_person_with_a_plan_reads_and_searches_as_a_patient(api: PlansApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    await api.draft(api.tokens.clinician(), person)
    response = await api.fhir(own, f"Patient/{person}")
    patient = fhir_valid(response)
    assert patient["identifier"] == [{"use": "usual", "system": PATIENT_SYSTEM, "value": person}]
    assert response.headers["content-type"].startswith("application/fhir+json")
    for params in ({"_id": person}, {"identifier": f"{PATIENT_SYSTEM}|{person}"},
                   {"identifier": person}):
        assert ids(fhir_valid(await api.fhir(own, "Patient", params))) == [person], params
    elsewhere = {"identifier": f"https://another.example/ids|{person}"}
    assert ids(fhir_valid(await api.fhir(own, "Patient", elsewhere))) == []
    outcome(await api.fhir(own, "Patient"), 400)
    outcome(await api.fhir(api.tokens.clinician(), f"Patient/{unique('su')}"), 404)


# --- access --------------------------------------------------------------------------------


async def test_another_person_or_team_finds_nothing_on_any_fhir_path(api: PlansApi) -> None:
    own, staff, plan = await agreed_twice_then_edited(api)
    person, plan_id = plan["service_user_id"], plan["id"]
    strangers = {
        "another person": api.tokens.service_user(unique("su")),
        "another team": api.tokens.clinician("staff-out", [unique("team")]),
        "a crisis-team clinician (break-glass is REST only)": api.tokens.clinician(
            "crisis-1", ["crisis-team"]),
    }
    for who, token in strangers.items():
        for path in (f"CarePlan/{plan_id}", f"CarePlan/{plan_id}/_history/1",
                     f"CarePlan/{plan_id}/_history", f"Patient/{person}"):
            outcome(await api.fhir(token, path), 404)
        outcome(await api.fhir(token, "Provenance", {"target": f"CarePlan/{plan_id}"}), 404)
        for version in (1, 2):
            outcome(await api.fhir(token, f"Provenance/{plan_id}-v{version}"), 404)
        for path, params in (("CarePlan", {"patient": person}), ("CarePlan", {"_id": plan_id}),
                             ("CarePlan", {}), ("Patient", {"_id": person})):
            bundle = fhir_valid(await api.fhir(token, path, {**params, "_total": "accurate"}))
            assert bundle["entry"] == [] and bundle["total"] == 0, (who, path, params)
    for token in (own, staff):
        assert ids(fhir_valid(await api.fhir(token, "CarePlan", {"patient": person}))) == [
            plan_id]
        fhir_valid(await api.fhir(token, f"Patient/{person}"))
        fhir_valid(await api.fhir(token, f"Provenance/{plan_id}-v1"))


async def test_the_capability_statement_says_what_is_offered_and_is_public(
        api: PlansApi) -> None:
    statement = fhir_valid(await api.fhir(None, "metadata"))
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"CarePlan", "Provenance", "Patient", "AuditEvent"}
    care_plan = resources["CarePlan"]
    assert (care_plan["versioning"], care_plan["readHistory"]) == ("versioned", True)
    assert [i["code"] for i in care_plan["interaction"]] == [
        "read", "vread", "history-instance", "search-type"]
    assert [p["name"] for p in care_plan["searchParam"]] == [
        "patient", "subject", "status", "_id", "_lastUpdated"]
    provenance = resources["Provenance"]
    assert [i["code"] for i in provenance["interaction"]] == ["read", "search-type"]
    assert (provenance["versioning"], provenance["readHistory"]) == ("versioned", False)
    assert [p["name"] for p in provenance["searchParam"]] == ["target"]
    assert [p["name"] for p in resources["Patient"]["searchParam"]] == ["_id", "identifier"]


# --- a service whose pages are small -----------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
async def small_pages(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                      dev_issuer: DevIssuer, tokens: TokenFactory) -> AsyncIterator[PlansApi]:
    database_url = module_database_url(request, tmp_path_factory, "small_pages")
    settings = make_settings(SERVICE, database_url=database_url,
                             jwks_file=dev_issuer.jwks_path, page_size_default=2,
                             page_size_max=3)
    async with running_service(create_app, settings, MIGRATIONS_DIR) as client:
        yield PlansApi(client, tokens)


async def test_count_is_honoured_up_to_the_page_size_maximum_and_capped_beyond(
        small_pages: PlansApi) -> None:
    staff, plans = await a_team(small_pages, people=5)
    default = fhir_valid(await small_pages.fhir(staff, "CarePlan"))
    assert len(default["entry"]) == 2
    capped = fhir_valid(await small_pages.fhir(staff, "CarePlan", {"_count": 1000}))
    assert len(capped["entry"]) == 3 and "_count=3" in links(capped)["self"]
    pages = await every_page(small_pages, staff, "CarePlan", {"_count": 1000})
    assert [i for page in pages for i in ids(page)] == [p["id"] for p in reversed(plans)]
    assert fhir_valid(await small_pages.fhir(staff, "CarePlan", {"_count": 0}))["total"] == 5

