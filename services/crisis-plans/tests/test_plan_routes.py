"""The crisis-plans REST API, in process with its lifespan, on SQLite and on PostgreSQL."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from plans_api import PLAN_CONTENT, SHARED_DECISION, PlansApi, unique
from sqlmodel import col, select

from recovery.common.audit import AuditEvent
from recovery.common.cosign import Signature
from recovery.common.timeutil import utcnow
from recovery.crisis_plans.models import (
    BreakGlassAccess,
    CrisisPlan,
    CrisisPlanSignature,
    CrisisPlanVersion,
)
from recovery.crisis_plans.service import (
    active_document,
    announce_due_reviews,
    plan_document,
    signature_of,
)

PROBLEM = "application/problem+json"


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def audit_rows(api: PlansApi, **where: Any) -> list[AuditEvent]:
    kit = api.client.app.state.kit  # type: ignore[attr-defined]
    await kit.audit.flush()
    async with kit.sessions() as session:
        query = select(AuditEvent)
        for name, value in where.items():
            query = query.where(col(getattr(AuditEvent, name)) == value)
        return list((await session.exec(query)).all())


# --- the done-when walk-through ------------------------------------------------------------


async def test_a_plan_signed_by_the_person_and_the_clinician_becomes_the_active_plan(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician("staff-1", ["team-a"]), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    assert plan["status"] == "draft" and plan["version"] == 1
    assert plan["required_parties"] == ["service_user", "care_coordinator"]
    assert plan["content_hash"].startswith("sha256:")
    assert plan["active_version"] is None
    problem_of(await api.active(own, person), 404)

    by_person = await api.sign(own, plan)
    assert by_person.status_code == 201, by_person.text
    assert by_person.json()["status"] == "draft"
    by_staff = await api.sign(staff, plan)
    assert by_staff.status_code == 201, by_staff.text
    agreed = by_staff.json()
    assert agreed["status"] == "agreed" and agreed["active_version"] == 1
    assert {(s["party"], s["signatory"], s["content_hash"]) for s in agreed["signatures"]} == {
        ("service_user", person, plan["content_hash"]),
        ("care_coordinator", "staff-1", plan["content_hash"])}

    for token in (own, staff):
        active = await api.active(token, person)
        assert active.status_code == 200, active.text
        body = active.json()
        assert body["plan_id"] == plan["id"] and body["version"] == 1
        assert body["content"]["early_warning_signs"] == PLAN_CONTENT["early_warning_signs"]
        assert body["newer_draft"] is False


async def test_an_edit_after_agreement_is_a_new_draft_and_the_agreed_version_stays_active(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    changed = {**PLAN_CONTENT, "triggers": ["Loud arguments at home"]}
    edited = await api.edit(own, plan["id"], '"1"', **changed)
    assert edited.status_code == 200, edited.text
    draft = edited.json()
    assert edited.headers["etag"] == '"2"'
    assert draft["version"] == 2 and draft["status"] == "draft"
    assert draft["active_version"] == 1 and draft["signatures"] == []
    assert draft["content_hash"] != plan["content_hash"]

    active = (await api.active(staff, person)).json()
    assert active["version"] == 1
    assert active["content"]["triggers"] == PLAN_CONTENT["triggers"]
    assert active["newer_draft"] is True

    # Agreeing the new version moves the active plan on.
    assert (await api.sign(own, draft)).status_code == 201
    assert (await api.sign(staff, draft)).json()["active_version"] == 2
    assert (await api.active(staff, person)).json()["content"]["triggers"] == [
        "Loud arguments at home"]


async def test_a_stale_if_match_is_412_and_a_missing_one_428(api: PlansApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician()
    plan = await api.draft(staff, person)
    assert (await api.edit(staff, plan["id"], '"1"', **{**PLAN_CONTENT, "when_well": ["Busy"]})
            ).status_code == 200
    stale = await api.edit(staff, plan["id"], '"1"', **PLAN_CONTENT)
    assert "version 2" in problem_of(stale, 412)["detail"]
    missing = await api.client.put(f"/v1/crisis-plans/{plan['id']}", json=PLAN_CONTENT,
                                   headers=api.auth(staff))
    problem_of(missing, 428)
    stale_sign = await api.sign(staff, plan)  # plan still says version 1
    problem_of(stale_sign, 412)


async def test_another_service_user_cannot_see_or_change_the_plan(api: PlansApi) -> None:
    person, stranger = unique("su"), unique("su")
    plan = await api.agreed(api.tokens.clinician(), person, api.tokens.service_user(person))
    theirs = api.tokens.service_user(stranger)
    problem_of(await api.active(theirs, person), 404)
    problem_of(await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                                    headers=api.auth(theirs)), 404)
    problem_of(await api.edit(theirs, plan["id"], '"1"', **PLAN_CONTENT), 404)
    problem_of(await api.sign(theirs, plan), 404)


async def test_staff_outside_the_team_get_404(api: PlansApi) -> None:
    person = unique("su")
    plan = await api.draft(api.tokens.clinician(), person)
    outsider = api.tokens.clinician("staff-9", ["team-b"])
    problem_of(await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                                    headers=api.auth(outsider)), 404)
    problem_of(await api.active(outsider, person), 404)


# --- signing ---------------------------------------------------------------------------------


async def test_a_signature_on_content_the_signatory_did_not_see_is_refused(
        api: PlansApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician()
    plan = await api.draft(staff, person)
    wrong = await api.sign(staff, {**plan, "content_hash": "sha256:" + "0" * 64})
    assert problem_of(wrong, 409)["type"].endswith("content-hash-mismatch")
    twice = await api.sign(staff, plan)
    assert twice.status_code == 201
    problem_of(await api.sign(staff, plan), 409)


async def test_staff_cannot_sign_for_the_person_and_the_person_only_signs_as_themselves(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    problem_of(await api.sign(staff, plan, party="service_user"), 403)
    problem_of(await api.sign(own, plan, party="psychiatrist"), 403)
    peer = api.tokens.peer_specialist("peer-1", ["team-a"])
    problem_of(await api.sign(peer, plan), 403)
    problem_of(await api.sign(staff, plan, party="psychiatrist"), 409)  # not required here


async def test_a_plan_needing_a_psychiatrist_is_not_agreed_until_they_sign(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    response = await api.client.post("/v1/crisis-plans", headers=api.auth(staff), json={
        "service_user_id": person, "team_id": "team-a", **PLAN_CONTENT,
        "clinician_parties_required": ["care_coordinator", "psychiatrist"]})
    plan = response.json()
    await api.sign(own, plan)
    assert (await api.sign(staff, plan)).json()["status"] == "draft"
    doctor = api.tokens.clinician("dr-1", ["team-a"])
    assert (await api.sign(doctor, plan, party="psychiatrist")).json()["status"] == "agreed"


async def test_the_person_can_withdraw_agreement_and_the_plan_is_no_longer_active(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    problem_of(await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                     headers=api.auth(staff, '"1"')), 403)
    withdrawn = await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                      headers=api.auth(own, '"1"'))
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert body["status"] == "withdrawn" and body["active_version"] is None
    (mine,) = [s for s in body["signatures"] if s["party"] == "service_user"]
    assert mine["withdrawn_at"] is not None
    problem_of(await api.active(staff, person), 404)
    again = await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                  headers=api.auth(own, '"1"'))
    problem_of(again, 409)


async def test_every_version_is_kept_with_its_hash_and_signatures(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    await api.edit(staff, plan["id"], '"1"', **{**PLAN_CONTENT, "reasons_for_living": ["My dog"]})
    versions = await api.client.get(f"/v1/crisis-plans/{plan['id']}/versions",
                                    headers=api.auth(own))
    assert versions.status_code == 200
    first, second = versions.json()["items"]
    assert versions.json()["next_cursor"] is None
    assert first["content_hash"] == plan["content_hash"] and len(first["signatures"]) == 2
    assert second["content"]["reasons_for_living"] == ["My dog"]
    assert second["signatures"] == []


async def test_versions_come_in_pages_oldest_first_each_with_its_own_signatures(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.agreed(staff, person, own)
    for version, helps in ((1, "Music"), (2, "Walking")):
        edited = await api.edit(staff, plan["id"], f'"{version}"',
                                **{**PLAN_CONTENT, "what_helps": [helps]})
        assert edited.status_code == 200, edited.text
    path = f"/v1/crisis-plans/{plan['id']}/versions"
    first = (await api.client.get(path, params={"limit": 2}, headers=api.auth(own))).json()
    assert [v["version"] for v in first["items"]] == [1, 2]
    assert [len(v["signatures"]) for v in first["items"]] == [2, 0]
    rest = (await api.client.get(path, params={"limit": 2, "cursor": first["next_cursor"]},
                                 headers=api.auth(own))).json()
    assert [v["version"] for v in rest["items"]] == [3]
    assert rest["next_cursor"] is None
    refused = await api.client.get(path, params={"cursor": "not-a-cursor"},
                                   headers=api.auth(own))
    assert problem_of(refused, 400)["type"].endswith("invalid-cursor")


async def test_medication_decisions_come_in_pages_newest_first(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    path = f"/v1/crisis-plans/{plan['id']}/medication-decisions"
    for words in ("First I will try 5mg", "Then 2.5mg", "Then stop"):
        made = await api.client.post(path, json={**SHARED_DECISION, "decision_in_my_words": words},
                                     headers=api.auth(own))
        assert made.status_code == 201, made.text
    first = (await api.client.get(path, params={"limit": 2}, headers=api.auth(staff))).json()
    rest = (await api.client.get(path, params={"limit": 2, "cursor": first["next_cursor"]},
                                 headers=api.auth(staff))).json()
    assert [d["decision_in_my_words"] for d in first["items"] + rest["items"]] == [
        "Then stop", "Then 2.5mg", "First I will try 5mg"]
    assert rest["next_cursor"] is None


async def test_an_unchanged_edit_makes_no_new_version(api: PlansApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician()
    plan = await api.draft(staff, person)
    same = await api.edit(staff, plan["id"], '"1"', **PLAN_CONTENT)
    assert same.status_code == 200 and same.json()["version"] == 1


async def test_only_the_person_chooses_who_holds_a_copy(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    holders = [{"kind": "gp"}, {"kind": "nearest_relative", "name": "Ana"}]
    refused = await api.edit(staff, plan["id"], '"1"', **{**PLAN_CONTENT,
                                                           "copy_holders": holders})
    problem_of(refused, 403)
    mine = await api.edit(own, plan["id"], '"1"', **{**PLAN_CONTENT, "copy_holders": holders})
    assert mine.status_code == 200 and mine.json()["content"]["copy_holders"][1]["name"] == "Ana"
    # Nor when a clinician starts the plan: the person starts it with them, or adds them later.
    other = unique("su")
    started = await api.client.post("/v1/crisis-plans", headers=api.auth(staff), json={
        "service_user_id": other, "team_id": "team-a", "copy_holders": holders})
    assert problem_of(started, 403)["type"].endswith("/copy-holders-are-chosen-by-the-person")
    assert (await api.plans_of(staff, other)).json()["items"] == []
    theirs = await api.client.post("/v1/crisis-plans", headers=api.auth(
        api.tokens.service_user(other)), json={"service_user_id": other, "team_id": "team-a",
                                               "copy_holders": holders})
    assert theirs.status_code == 201, theirs.text


async def test_a_second_plan_for_the_same_person_is_409(api: PlansApi) -> None:
    person = unique("su")
    staff = api.tokens.clinician()
    await api.draft(staff, person)
    again = await api.client.post("/v1/crisis-plans", headers=api.auth(staff),
                                  json={"service_user_id": person, "team_id": "team-a"})
    problem_of(again, 409)


async def test_the_advance_decision_is_kept_apart_from_the_advance_statement(
        api: PlansApi) -> None:
    person = unique("su")
    content = {**PLAN_CONTENT, "advance_statement": ["Please let my sister visit"],
               "advance_decision": {"treatments_refused": [
                   {"treatment": "ECT", "circumstances": "In any circumstances"}],
                   "made_on": "2030-05-01", "witnessed": True},
               "unagreed_preferences": [{"preference": "No admission at all",
                                         "reason": "Not safe when I stop eating"}]}
    plan = await api.draft(api.tokens.clinician(), person, **content)
    assert plan["content"]["advance_statement"] == ["Please let my sister visit"]
    assert plan["content"]["advance_decision"]["treatments_refused"][0]["treatment"] == "ECT"
    assert plan["content"]["unagreed_preferences"][0]["reason"] == "Not safe when I stop eating"


# --- concurrency ------------------------------------------------------------------------------


async def test_the_person_and_two_clinicians_editing_at_once_never_lose_an_update(
        api: PlansApi) -> None:
    person = unique("su")
    own = api.tokens.service_user(person)
    one, two = api.tokens.clinician("staff-1"), api.tokens.clinician("staff-2")
    plan = await api.draft(one, person)
    edits = [(own, "Mine"), (one, "First clinician"), (two, "Second clinician")]
    for round_ in range(3):
        current = (await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                                        headers=api.auth(own))).json()
        etag = f'"{current["version"]}"'
        responses = await asyncio.gather(*[
            api.edit(token, plan["id"], etag,
                     **{**PLAN_CONTENT, "what_helps": [f"{text}, round {round_}"]})
            for token, text in edits])
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 412, 412], [r.text[:200] for r in responses]
        (winner,) = [r.json() for r in responses if r.status_code == 200]
        assert winner["version"] == current["version"] + 1
        stored = (await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                                       headers=api.auth(own))).json()
        assert stored["content"]["what_helps"] == winner["content"]["what_helps"]
    versions = (await api.client.get(f"/v1/crisis-plans/{plan['id']}/versions",
                                     headers=api.auth(own))).json()["items"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4]


async def assert_documents_are_their_rows(api: PlansApi, plan_id: str,
                                         answer: httpx.Response) -> None:
    """The stored documents are what the plan, version and signature rows give, and the
    answer is the stored document: signing reads the newest version's hash and signatures
    from the document, so this must hold after every kind of change."""
    assert answer.status_code in (200, 201), answer.text
    kit = api.client.app.state.kit  # type: ignore[attr-defined]
    async with kit.sessions() as session:
        row = await session.get(CrisisPlan, plan_id)
        assert row is not None
        version = await session.get(CrisisPlanVersion, (plan_id, row.version))
        assert version is not None

        async def signatures_of(number: int) -> list[CrisisPlanSignature]:
            return list((await session.exec(
                select(CrisisPlanSignature).where(col(CrisisPlanSignature.plan_id) == plan_id,
                                                  col(CrisisPlanSignature.version) == number)
                .order_by(col(CrisisPlanSignature.signed_at), col(CrisisPlanSignature.id))
            )).all())

        newest = await signatures_of(row.version)
        assert answer.json() == row.document == plan_document(row, version, newest)
        assert row.document["content_hash"] == version.content_hash
        assert [signature_of(s) for s in row.document["signatures"]] == [
            Signature(signatory=s.signatory, party=s.party, version=s.version,
                      content_hash=s.content_hash, signed_at=s.signed_at,
                      withdrawn_at=s.withdrawn_at) for s in newest]
        if row.active_version is not None:
            active = await session.get(CrisisPlanVersion, (plan_id, row.active_version))
            assert active is not None
            assert row.active_document == active_document(
                row, active, await signatures_of(row.active_version))


async def test_every_change_keeps_the_stored_documents_equal_to_the_rows_they_come_from(
        api: PlansApi) -> None:
    """Signatures patch the stored documents instead of rebuilding them, and signing trusts
    the document for the version's hash and signatures: through signing, agreeing, a new
    draft, signing it, withdrawing and marking in error, they stay what the rows give."""
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    for token in (own, staff):
        signed = await api.sign(token, plan)
        await assert_documents_are_their_rows(api, plan["id"], signed)
    assert signed.json()["status"] == "agreed"
    edited = await api.edit(staff, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]})
    await assert_documents_are_their_rows(api, plan["id"], edited)
    draft = edited.json()
    signed = await api.sign(own, draft)
    await assert_documents_are_their_rows(api, plan["id"], signed)
    withdrawn = await api.client.post(f"/v1/crisis-plans/{plan['id']}/withdraw-agreement",
                                      headers=api.auth(own, '"2"'))
    await assert_documents_are_their_rows(api, plan["id"], withdrawn)
    assert [s["withdrawn_at"] is not None for s in withdrawn.json()["signatures"]] == [True]
    # A withdrawn signature, read from the document, no longer stands: the person may sign.
    again = await api.sign(own, draft)
    await assert_documents_are_their_rows(api, plan["id"], again)
    marked = await api.mark_in_error(staff, plan["id"], '"2"')
    await assert_documents_are_their_rows(api, plan["id"], marked)


async def test_signatures_arriving_together_agree_the_plan(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    responses = await asyncio.gather(api.sign(own, plan), api.sign(staff, plan))
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    stored = (await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                                   headers=api.auth(own))).json()
    assert stored["status"] == "agreed" and len(stored["signatures"]) == 2
    assert (await api.active(staff, person)).status_code == 200


async def test_an_edit_racing_a_signature_keeps_both(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    signed, edited = await asyncio.gather(
        api.sign(own, plan),
        api.edit(staff, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]}))
    assert edited.status_code == 200, edited.text
    # Signed before the edit landed (201) or after it (412: the version moved on).
    assert signed.status_code in (201, 412), signed.text
    versions = (await api.client.get(f"/v1/crisis-plans/{plan['id']}/versions",
                                     headers=api.auth(own))).json()["items"]
    assert len(versions) == 2
    assert len(versions[0]["signatures"]) == (1 if signed.status_code == 201 else 0)


async def test_marking_a_plan_in_error_while_it_is_edited_loses_neither(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    marked, edited = await asyncio.gather(
        api.mark_in_error(staff, plan["id"], '"1"'),
        api.edit(own, plan["id"], '"1"', **{**PLAN_CONTENT, "triggers": ["Noise"]}))
    stored = (await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                                   headers=api.auth(own))).json()
    if edited.status_code == 200:
        # The edit landed first: the mark saw version 2 and was refused, nothing lost.
        assert problem_of(marked, 412) and stored["status"] == "draft"
        assert stored["version"] == 2
    else:
        # The mark landed first: the edit found the plan closed (or its version moved on).
        assert marked.status_code == 200, marked.text
        assert edited.status_code in (409, 412), edited.text
        assert stored["status"] == "entered-in-error" and stored["version"] == 1


# --- break-glass ------------------------------------------------------------------------------


async def test_break_glass_without_a_reason_is_refused_and_with_one_is_allowed_and_audited(
        api: PlansApi) -> None:
    person = unique("su")
    await api.agreed(api.tokens.clinician(), person, api.tokens.service_user(person))
    responder = api.tokens.clinician("crisis-7", ["crisis-team"])
    path = f"/v1/people/{person}/crisis-plan:break-glass"
    problem_of(await api.active(responder, person), 404)  # outside the person's team
    for body in ({}, {"reason": ""}, {"reason": "   urgent "}):
        refused = await api.client.post(path, json=body, headers=api.auth(responder))
        assert "reason" in problem_of(refused, 422)["detail"]
    reason = "Found at the station at 2am, asking for help"
    allowed = await api.client.post(path, json={"reason": reason},
                                    headers=api.auth(responder))
    assert allowed.status_code == 200, allowed.text
    body = allowed.json()
    assert body["plan"]["service_user_id"] == person and body["plan"]["version"] == 1

    rows = await audit_rows(api, service_user_id=person, action="break-glass")
    assert [(r.outcome, r.actor, r.purpose) for r in rows].count(
        ("allowed", "crisis-7", "BTG")) == 1
    assert [r.outcome for r in rows].count("denied") == 3
    assert all(reason not in str(r.model_dump()) for r in rows)
    kit = api.client.app.state.kit  # type: ignore[attr-defined]
    async with kit.sessions() as session:
        kept = (await session.exec(select(BreakGlassAccess).where(
            col(BreakGlassAccess.id) == body["access_id"]))).one()
    assert kept.reason == reason and kept.accessed_by == "crisis-7"


async def test_break_glass_is_for_crisis_team_clinicians_only(api: PlansApi) -> None:
    person = unique("su")
    await api.agreed(api.tokens.clinician(), person, api.tokens.service_user(person))
    path = f"/v1/people/{person}/crisis-plan:break-glass"
    reason = {"reason": "Came to the emergency department tonight"}
    for token in (api.tokens.clinician("staff-5", ["team-b"]),
                  api.tokens.peer_specialist("peer-5", ["crisis-team"]),
                  api.tokens.service_user(unique("su"))):
        refused = await api.client.post(path, json=reason, headers=api.auth(token))
        assert refused.status_code in (403,), refused.text
    no_plan = await api.client.post(f"/v1/people/{unique('su')}/crisis-plan:break-glass",
                                    json=reason,
                                    headers=api.auth(api.tokens.clinician("c", ["crisis-team"])))
    problem_of(no_plan, 404)


# --- reviews, flags, lists, batch ------------------------------------------------------------


async def test_the_team_sees_its_plans_overdue_for_review(api: PlansApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    past = (utcnow().date() - timedelta(days=10)).isoformat()
    overdue = await api.draft(staff, unique("su"), team, **{**PLAN_CONTENT, "review_on": past})
    await api.draft(staff, unique("su"), team)  # reviewed in 2031
    listed = await api.client.get(f"/v1/teams/{team}/crisis-plans:overdue-review",
                                  headers=api.auth(staff))
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["plan_id"], i["days_overdue"]) for i in items] == [(overdue["id"], 10)]
    problem_of(await api.client.get(f"/v1/teams/{team}/crisis-plans:overdue-review",
                                    headers=api.auth(api.tokens.clinician())), 404)


async def test_a_plan_with_nothing_specific_to_the_person_is_flagged(api: PlansApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    generic = await api.draft(staff, unique("su"), team,
                              what_helps=["Take medication as prescribed"],
                              coping_strategies=["Call the crisis team."],
                              early_warning_signs=["N/A"])
    personal = await api.draft(staff, unique("su"), team)
    assert generic["not_individualised"] is True
    assert personal["not_individualised"] is False
    flagged = await api.client.get(f"/v1/teams/{team}/crisis-plans",
                                   params={"not_individualised": "true"},
                                   headers=api.auth(staff))
    assert [p["id"] for p in flagged.json()["items"]] == [generic["id"]]


async def test_team_plans_page_by_cursor(api: PlansApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    made = [(await api.draft(staff, unique("su"), team))["id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get(f"/v1/teams/{team}/crisis-plans", params=params,
                                     headers=api.auth(staff))).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_a_persons_plans_are_listed_for_them_and_their_team_even_before_agreement(
        api: PlansApi) -> None:
    person = unique("su")
    own, staff = api.tokens.service_user(person), api.tokens.clinician("staff-1", ["team-a"])
    draft = await api.draft(staff, person)
    for token in (own, staff):
        listed = await api.plans_of(token, person)
        assert listed.status_code == 200, listed.text
        page = listed.json()
        assert [p["id"] for p in page["items"]] == [draft["id"]]
        assert page["items"][0]["status"] == "draft" and page["next_cursor"] is None
    assert (await api.active(own, person)).status_code == 404  # nothing agreed yet


async def test_a_persons_plan_list_holds_nothing_outside_the_callers_reach(
        api: PlansApi) -> None:
    person = unique("su")
    await api.agreed(api.tokens.clinician("staff-1", ["team-a"]), person,
                     api.tokens.service_user(person))
    # Staff elsewhere, a crisis team included (break-glass is the active plan's alone), see
    # the same empty page as for a person with no plan at all.
    for token in (api.tokens.clinician("staff-b", ["team-b"]),
                  api.tokens.clinician("crisis-1", ["crisis-team"])):
        listed = await api.plans_of(token, person)
        assert listed.status_code == 200 and listed.json() == {"items": [],
                                                               "next_cursor": None}
    problem_of(await api.plans_of(api.tokens.service_user(unique("su")), person), 404)
    rows = await audit_rows(api, service_user_id=person, action="search")
    assert sorted(r.outcome for r in rows) == ["allowed", "allowed", "denied"]


# --- entered-in-error ------------------------------------------------------------------------


async def test_a_plan_made_in_error_is_kept_readable_closed_and_no_longer_active(
        api: PlansApi) -> None:
    person, team = unique("su"), unique("team")
    staff, own = api.tokens.clinician("staff-1", [team]), api.tokens.service_user(person)
    agreed = await api.agreed(staff, person, own, team=team)
    draft = (await api.edit(own, agreed["id"], '"1"',
                            **{**PLAN_CONTENT, "triggers": ["Loud voices"]})).json()
    path = f"/v1/crisis-plans/{agreed['id']}"
    assert problem_of(await api.mark_in_error(own, agreed["id"], '"2"'), 403)[
        "type"].endswith("/only-staff-mark-errors")
    problem_of(await api.mark_in_error(staff, agreed["id"], None), 428)
    problem_of(await api.mark_in_error(staff, agreed["id"], '"1"'), 412)
    # Why is a code the service knows, always given.
    problem_of(await api.mark_in_error(staff, agreed["id"], '"2"', reason="I felt like it"), 422)
    problem_of(await api.client.post(f"{path}/entered-in-error",
                                     headers=api.auth(staff, '"2"')), 422)
    assert (await api.active(own, person)).status_code == 200  # refusals changed nothing

    marked = await api.mark_in_error(staff, agreed["id"], '"2"', reason="wrong-person")
    assert marked.status_code == 200, marked.text
    assert marked.headers["etag"] == '"2"'
    body = marked.json()
    assert body["status"] == "entered-in-error" and body["active_version"] is None
    assert body["entered_in_error_reason"] == "wrong-person"
    assert body["content_hash"] == draft["content_hash"]

    # Kept: readable by id, every version with its signatures, in FHIR as entered-in-error.
    read = await api.client.get(path, headers=api.auth(own))
    assert read.status_code == 200 and read.json()["status"] == "entered-in-error"
    versions = (await api.client.get(f"{path}/versions",
                                     headers=api.auth(staff))).json()["items"]
    assert [len(v["signatures"]) for v in versions] == [2, 0]
    fhir = (await api.client.get(f"/fhir/CarePlan/{agreed['id']}",
                                 headers=api.auth(own))).json()
    assert fhir["status"] == "entered-in-error"
    # No longer the active plan, by any path.
    assert problem_of(await api.active(own, person), 404)["type"].endswith("/no-active-plan")
    glass = await api.client.post(f"/v1/people/{person}/crisis-plan:break-glass",
                                  json={"reason": "Brought in confused at night"},
                                  headers=api.auth(api.tokens.clinician("c", ["crisis-team"])))
    problem_of(glass, 404)
    batch = await api.client.post("/v1/crisis-plans:batch-read",
                                  json={"service_user_ids": [person]}, headers=api.auth(staff))
    assert batch.json()["results"][0]["active_plan"] is None
    # Out of lists, unless asked for on the person's own list.
    team_list = await api.client.get(f"/v1/teams/{team}/crisis-plans", headers=api.auth(staff))
    assert team_list.json()["items"] == []
    assert (await api.plans_of(own, person)).json()["items"] == []
    kept = (await api.plans_of(own, person, include_entered_in_error="true")).json()
    assert [p["id"] for p in kept["items"]] == [agreed["id"]]
    # Closed: no edit, signature, withdrawal, decision or second mark.
    current = f'"{body["version"]}"'
    refusals = [
        await api.edit(staff, agreed["id"], current, **PLAN_CONTENT),
        await api.sign(own, body),
        await api.client.post(f"{path}/withdraw-agreement", headers=api.auth(own, current)),
        await api.client.post(f"{path}/medication-decisions", headers=api.auth(own),
                              json=SHARED_DECISION),
        await api.mark_in_error(staff, agreed["id"], current),
    ]
    for refused in refusals:
        assert problem_of(refused, 409)["type"].endswith("/entered-in-error")
    assert (await api.client.get(path, headers=api.auth(own))).text == read.text
    rows = await audit_rows(api, record_id=agreed["id"], action="entered-in-error")
    assert sorted(r.outcome for r in rows) == ["allowed", "allowed", "allowed", "allowed",
                                               "allowed"]


async def test_once_a_plan_is_marked_in_error_the_person_can_start_another(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    mistaken = await api.draft(staff, person)
    second = await api.client.post("/v1/crisis-plans", headers=api.auth(staff),
                                   json={"service_user_id": person, "team_id": "team-a"})
    problem_of(second, 409)  # one plan in use per person
    assert (await api.mark_in_error(staff, mistaken["id"], '"1"')).status_code == 200
    replacement = await api.agreed(staff, person, own)
    active = (await api.active(staff, person)).json()
    assert active["plan_id"] == replacement["id"]
    assert [p["id"] for p in (await api.plans_of(own, person)).json()["items"]] == [
        replacement["id"]]
    seen, cursor = [], None
    while True:
        params = {"include_entered_in_error": "true", "limit": "1",
                  **({"cursor": cursor} if cursor else {})}
        page = (await api.plans_of(staff, person, **params)).json()
        seen += [(p["id"], p["status"]) for p in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [(replacement["id"], "agreed"), (mistaken["id"], "entered-in-error")]


async def test_a_plan_made_in_error_is_not_overdue_for_review_nor_announced(
        api: PlansApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    past = (utcnow().date() - timedelta(days=3)).isoformat()
    plan = await api.draft(staff, unique("su"), team, **{**PLAN_CONTENT, "review_on": past})
    assert (await api.mark_in_error(staff, plan["id"], '"1"')).status_code == 200
    overdue = await api.client.get(f"/v1/teams/{team}/crisis-plans:overdue-review",
                                   headers=api.auth(staff))
    assert overdue.status_code == 200 and overdue.json()["items"] == []
    sessions = api.client.app.state.kit.sessions  # type: ignore[attr-defined]
    await announce_due_reviews(sessions)
    async with sessions() as session:
        stored = await session.get(CrisisPlan, plan["id"])
    assert stored is not None and stored.review_due_announced_for is None


async def test_batch_read_gives_active_plans_only_where_the_caller_may_see_them(
        api: PlansApi) -> None:
    mine, other, none = unique("su"), unique("su"), unique("su")
    await api.agreed(api.tokens.clinician(), mine, api.tokens.service_user(mine))
    await api.agreed(api.tokens.clinician("s", ["team-b"]), other,
                     api.tokens.service_user(other), team="team-b")
    response = await api.client.post(
        "/v1/crisis-plans:batch-read", json={"service_user_ids": [mine, other, none]},
        headers=api.auth(api.tokens.clinician("staff-1", ["team-a"])))
    assert response.status_code == 200, response.text
    results = {r["service_user_id"]: r["active_plan"] for r in response.json()["results"]}
    assert results[mine]["service_user_id"] == mine
    assert results[other] is None and results[none] is None


async def test_batch_read_gives_first_pages_of_plans_as_each_persons_list_does(
        api: PlansApi) -> None:
    mine, other, none = unique("su"), unique("su"), unique("su")
    staff = api.tokens.clinician("staff-1", ["team-a"])
    await api.draft(staff, mine)
    await api.draft(api.tokens.clinician("s", ["team-b"]), other, team="team-b")
    response = await api.client.post(
        "/v1/crisis-plans:batch-read",
        json={"service_user_ids": [mine, other, none], "limit_per_person": 5},
        headers=api.auth(staff))
    assert response.status_code == 200, response.text
    results = {r["service_user_id"]: r for r in response.json()["results"]}
    listed = await api.client.get(f"/v1/people/{mine}/crisis-plans", headers=api.auth(staff))
    assert results[mine]["plans"] == listed.json()["items"] and len(listed.json()["items"]) == 1
    assert results[mine]["next_cursor"] is None and results[mine]["truncated"] is False
    # Another team's person reads as one with no plans.
    assert results[other]["plans"] == results[none]["plans"] == []
    # Without a limit, only the active plans, as before.
    plain = await api.client.post("/v1/crisis-plans:batch-read",
                                  json={"service_user_ids": [mine]}, headers=api.auth(staff))
    assert "plans" not in plain.json()["results"][0]


async def test_a_shared_decision_on_medication_is_kept_in_the_persons_voice(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    decision = {
        "question": "Should I lower my dose over the summer?",
        "options_considered": [{"option": "Stay on 10mg"},
                               {"option": "Lower to 5mg", "what_it_costs": "Poorer sleep"}],
        "what_matters_to_me": "Being awake enough to look after my son",
        "clinician_information": "Halving the dose over four weeks is usually well tolerated",
        "decision_in_my_words": "I will try 5mg and we look again in August",
        "one_thing_i_will_do": "Keep a sleep diary",
        "review_on": "2031-08-01",
    }
    made = await api.client.post(f"/v1/crisis-plans/{plan['id']}/medication-decisions",
                                 json=decision, headers=api.auth(own))
    assert made.status_code == 201, made.text
    listed = await api.client.get(f"/v1/crisis-plans/{plan['id']}/medication-decisions",
                                  headers=api.auth(staff))
    (only,) = listed.json()["items"]
    assert only["decision_in_my_words"] == decision["decision_in_my_words"]
    assert only["recorded_by"] == person


async def test_a_review_revisits_the_decision_once_and_the_new_one_stands(
        api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    path = f"/v1/crisis-plans/{plan['id']}/medication-decisions"
    first = {"question": "Should I lower my dose over the summer?",
             "options_considered": [{"option": "Stay on 10mg"}, {"option": "Lower to 5mg"}],
             "what_matters_to_me": "Being awake enough to look after my son",
             "clinician_information": "Halving the dose is usually well tolerated",
             "decision_in_my_words": "I will try 5mg and we look again in August",
             "one_thing_i_will_do": "Keep a sleep diary", "review_on": "2031-08-01"}
    earlier = (await api.client.post(path, json=first, headers=api.auth(own))).json()
    review = {**first, "decision_in_my_words": "I stay on 5mg until the winter",
              "one_thing_i_will_do": "Keep the diary going", "review_on": "2031-12-01",
              "revisits": earlier["id"],
              "how_it_went_in_my_words": "Mornings are easier; I sleep a little worse"}
    made = await api.client.post(path, json=review, headers=api.auth(staff))
    assert made.status_code == 201, made.text
    later = made.json()
    assert later["revisits"] == earlier["id"] and later["revisited_by"] is None
    listed = (await api.client.get(path, headers=api.auth(own))).json()["items"]
    assert [(d["id"], d["revisited_by"]) for d in listed] == [
        (later["id"], None), (earlier["id"], later["id"])]

    # The earlier decision is history now: a second review of it is refused and says which
    # decision to revisit instead; nothing is recorded.
    again = await api.client.post(path, json=review, headers=api.auth(own))
    assert again.status_code == 409
    assert again.json()["type"].endswith("decision-already-revisited")
    assert later["id"] in again.json()["detail"]
    # A review names a decision of this plan, and says how it went.
    other_plan = await api.draft(staff, unique("su"))
    elsewhere = (await api.client.post(
        f"/v1/crisis-plans/{other_plan['id']}/medication-decisions", json=first,
        headers=api.auth(staff))).json()
    for wrong, status in (({**review, "revisits": elsewhere["id"]}, 422),
                          ({**review, "revisits": "no-such-decision"}, 422),
                          ({k: v for k, v in review.items()
                            if k != "how_it_went_in_my_words"}, 422),
                          ({**first, "how_it_went_in_my_words": "Fine"}, 422)):
        answer = await api.client.post(path, json=wrong, headers=api.auth(own))
        assert answer.status_code == status, (wrong, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert len((await api.client.get(path, headers=api.auth(own))).json()["items"]) == 2


async def test_two_reviews_of_one_decision_at_once_record_one(api: PlansApi) -> None:
    person = unique("su")
    staff, own = api.tokens.clinician(), api.tokens.service_user(person)
    plan = await api.draft(staff, person)
    path = f"/v1/crisis-plans/{plan['id']}/medication-decisions"
    first = {"question": "Evening or morning?", "options_considered": [{"option": "Evening"}],
             "what_matters_to_me": "Sleeping through", "clinician_information": "Either works",
             "decision_in_my_words": "Evening", "one_thing_i_will_do": "An alarm at 9pm",
             "review_on": "2031-08-01"}
    earlier = (await api.client.post(path, json=first, headers=api.auth(own))).json()
    review = {**first, "revisits": earlier["id"], "how_it_went_in_my_words": "Well"}
    answers = await asyncio.gather(*(api.client.post(path, json=review, headers=api.auth(token))
                                     for token in (own, staff, own)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409]
    listed = (await api.client.get(path, headers=api.auth(own))).json()["items"]
    assert len(listed) == 2


async def test_a_team_sees_its_standing_decisions_due_for_review(api: PlansApi) -> None:
    team = unique("team")
    staff = api.tokens.clinician("staff-1", [team])
    today = utcnow().date()

    async def decision(plan: dict[str, Any], review_on: Any, **review: Any) -> dict[str, Any]:
        made = await api.client.post(
            f"/v1/crisis-plans/{plan['id']}/medication-decisions", headers=api.auth(staff),
            json={**SHARED_DECISION, "review_on": review_on.isoformat(), **review})
        assert made.status_code == 201, made.text
        body: dict[str, Any] = made.json()
        return body

    plan, other, mistaken = [await api.draft(staff, unique("su"), team=team) for _ in range(3)]
    overdue = await decision(plan, today - timedelta(days=10))
    due_today = await decision(other, today)
    await decision(plan, today + timedelta(days=30))  # not yet
    revisited = await decision(other, today - timedelta(days=40))
    await decision(other, today + timedelta(days=60), revisits=revisited["id"],
                   how_it_went_in_my_words="Better than I feared")
    await decision(mistaken, today - timedelta(days=5))
    assert (await api.mark_in_error(staff, mistaken["id"], '"1"')).status_code == 200

    path = f"/v1/teams/{team}/medication-decisions:review-due"
    answer = await api.client.get(path, headers=api.auth(staff))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(i["decision_id"], i["days_overdue"]) for i in body["items"]] == [
        (overdue["id"], 10), (due_today["id"], 0)]
    assert body["items"][0]["plan_id"] == plan["id"] and body["truncated"] is False
    limited = (await api.client.get(path, params={"limit": 1}, headers=api.auth(staff))).json()
    assert len(limited["items"]) == 1 and limited["truncated"] is True
    for outsider in (api.tokens.clinician("staff-9", ["team-elsewhere"]),
                     api.tokens.service_user(plan["service_user_id"])):
        assert (await api.client.get(path, headers=api.auth(outsider))).status_code in (
            403, 404)


async def test_reads_and_refusals_are_audited(api: PlansApi) -> None:
    person = unique("su")
    plan = await api.draft(api.tokens.clinician(), person)
    await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                         headers=api.auth(api.tokens.service_user(person)))
    await api.client.get(f"/v1/crisis-plans/{plan['id']}",
                         headers=api.auth(api.tokens.service_user(unique("su"))))
    rows = await audit_rows(api, record_id=plan["id"], action="read")
    assert sorted(r.outcome for r in rows) == ["allowed", "denied"]


# --- no existence leaks --------------------------------------------------------------------


async def test_a_plan_out_of_reach_is_refused_exactly_as_one_that_does_not_exist(
        api: PlansApi) -> None:
    plan = await api.draft(api.tokens.clinician(), unique("su"))
    outsider = api.tokens.clinician("staff-9", ["team-b"])
    for plan_id in (plan["id"], "0190f3a0-0000-7000-8000-000000000000"):
        refusals = [
            await api.client.get(f"/v1/crisis-plans/{plan_id}", headers=api.auth(outsider)),
            await api.edit(outsider, plan_id, '"1"', **PLAN_CONTENT),
            await api.sign(outsider, {**plan, "id": plan_id}),
        ]
        bodies = [problem_of(response, 404) for response in refusals]
        assert {(b["type"], b["detail"]) for b in bodies} == {
            (bodies[0]["type"], "No crisis plan with that id is available to you.")}


async def test_drafting_for_a_person_whose_plan_another_team_holds_does_not_reveal_it(
        api: PlansApi) -> None:
    person, stranger = unique("su"), unique("su")
    await api.draft(api.tokens.clinician(), person)
    outsider = api.tokens.clinician("staff-9", ["team-b"])

    async def draft(who: str, team: str) -> dict[str, Any]:
        response = await api.client.post("/v1/crisis-plans", headers=api.auth(outsider),
                                         json={"service_user_id": who, "team_id": team})
        return problem_of(response, 403)

    held_elsewhere = await draft(person, "team-b")
    not_theirs = await draft(stranger, "team-a")
    assert (held_elsewhere["type"], held_elsewhere["detail"]) == (
        not_theirs["type"], not_theirs["detail"])
    assert "already" not in held_elsewhere["detail"]
