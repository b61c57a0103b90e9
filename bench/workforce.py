"""The workforce scenarios, in the same run as the baseline: peer share and readiness of a team
of 200 staff with 100,000 care contacts, logging a care contact, and the service's memory."""

import asyncio
import json
import random
import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import Request
from bench.servers import ServiceUnderTest
from recovery.common.dev_issuer import DevIssuer

SERVICE = "workforce"
TEAM = "bench-workforce"
LOG_TEAM = "bench-workforce-log"
STAFF = 200
PEER_EVERY = 4  # one in four is a peer specialist
CONTACTS = 100_000
CONTACT_DAYS = 365


async def _seed_team(base_url: str, manager: str, team: str, staff: int) -> list[str]:
    """A team and its staff, made through the API (so staff joined events go out too)."""
    headers = {"Authorization": f"Bearer {manager}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        made = await client.post("/v1/teams", headers=headers, json={"id": team, "name": team})
        if made.status_code != 201:
            raise RuntimeError(f"seeding the team answered {made.status_code}: {made.text}")

        async def one(n: int) -> str:
            peer = n % PEER_EVERY == 0
            created = await client.post("/v1/staff", headers=headers, json={
                "id": f"{team}-staff-{n:04d}", "team_id": team, "display_name": f"Staff {n}",
                "profession": "peer_support" if peer else "nursing", "grade": "band-5",
                "role_type": "peer_specialist" if peer else "professional",
                "fte": 1.0 if n % 3 else 0.6, "start_date": "2020-01-01"})
            if created.status_code != 201:
                raise RuntimeError(f"seeding staff answered {created.status_code}: "
                                   f"{created.text[:300]}")
            staff_id: str = created.json()["id"]
            return staff_id

        ids: list[str] = []
        for start in range(0, staff, 20):
            ids += await asyncio.gather(*(one(n) for n in range(start, min(start + 20, staff))))
    return ids


def _seed_records(database: Path, team: str, staff_ids: list[str], contacts_count: int) -> None:
    """100,000 care contacts and the records readiness reads (supervision, climate, training
    facts, panels, appraisals, a lead), written straight into the service's SQLite file; the
    monthly minutes are summed from the contacts exactly as the service keeps them."""
    rng = random.Random(4)
    today = date.today()
    now = datetime.now(UTC).isoformat()
    contacts = []
    for _ in range(contacts_count):
        staff_id = rng.choice(staff_ids)
        peer = int(staff_id.rsplit("-", 1)[1]) % PEER_EVERY == 0
        day = today - timedelta(days=rng.randrange(CONTACT_DAYS))
        contacts.append((str(uuid.uuid4()), team, staff_id, f"su-{rng.randrange(5000):05d}",
                         day.isoformat(), rng.choice((15, 30, 45, 60)),
                         "group" if rng.random() < 0.2 else "individual", int(peer),
                         "bench", now))
    supervision = [(str(uuid.uuid4()), staff_id, team, staff_ids[0],
                    (today - timedelta(days=rng.randrange(80))).isoformat(),
                    int(rng.random() < 0.8), 0, rng.randrange(2, 6), "bench", now)
                   for staff_id in staff_ids[1:]]
    climate = [(str(uuid.uuid4()), team, today.isoformat(), json.dumps([4, 4, 3, 4, 5]), 4.0)
               for _ in range(40)]
    # Training's facts as its events leave them: most of the team has completed the
    # foundation course, some rated it; the lead (staff_ids[1]) among them.
    training = [(str(uuid.uuid4()), staff_id, "foundation", 1,
                 (today - timedelta(days=rng.randrange(300))).isoformat(), 2,
                 float(rng.randrange(3, 6)) if n % 2 else None, 3 if n % 2 else 0, now)
                for n, staff_id in enumerate(staff_ids) if n % 5]
    panels = [(str(uuid.uuid4()), team, "peer_specialist",
               (today - timedelta(days=rng.randrange(300))).isoformat(),
               json.dumps(["staff", "service_user"]), 1, "bench", now) for _ in range(12)]
    appraisals = [(str(uuid.uuid4()), staff_id, team,
                   (today - timedelta(days=rng.randrange(300))).isoformat(),
                   int(rng.random() < 0.6), 1, "bench", now) for staff_id in staff_ids]
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO care_contact (id, team_id, staff_id, service_user_id, occurred_on, "
            "minutes, mode, by_peer, recorded_by, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            contacts)
        connection.execute("DELETE FROM care_minutes WHERE team_id = ?", (team,))
        connection.execute(
            "INSERT INTO care_minutes (team_id, month, by_peer, minutes, contacts) "
            "SELECT team_id, substr(occurred_on, 1, 7), by_peer, sum(minutes), count(*) "
            "FROM care_contact WHERE team_id = ? GROUP BY 1, 2, 3", (team,))
        connection.executemany(
            "INSERT INTO supervision_session (id, staff_id, team_id, supervisor_id, held_on, "
            "recovery_focused, peer_supervision, quality, recorded_by, recorded_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)", supervision)
        connection.executemany(
            "INSERT INTO climate_response (id, team_id, responded_on, answers, score) "
            "VALUES (?,?,?,?,?)", climate)
        connection.executemany(
            "INSERT INTO training_record (enrolment_id, staff_id, course_id, foundation, "
            "completed_on, completed_version, rating, rating_version, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?)", training)
        connection.executemany(
            "INSERT INTO recruitment_panel (id, team_id, role_type, held_on, members, "
            "lived_experience_members, recorded_by, recorded_at) VALUES (?,?,?,?,?,?,?,?)",
            panels)
        connection.executemany(
            "INSERT INTO appraisal (id, staff_id, team_id, held_on, "
            "service_user_feedback_included, recovery_objectives_set, recorded_by, "
            "recorded_at) VALUES (?,?,?,?,?,?,?,?)", appraisals)
        connection.execute("UPDATE team SET recovery_lead_staff_id = ? WHERE id = ?",
                           (staff_ids[1], team))


def run_workforce(bench: Any, results: dict[str, Any]) -> None:
    """Peer share and readiness of a large team, and logging care contacts, against one
    workforce process started with its own `make run` command line."""
    from bench.run import expect, run_async, say

    workdir: Path = bench.workdir
    # The tiny scale only proves the plumbing (the harness's own test).
    staff, contacts_count = (20, 2_000) if bench.scale.name == "tiny" else (STAFF, CONTACTS)
    scenarios: dict[str, Any] = results["scenarios"]
    issuer = DevIssuer(workdir / "dev-issuer")
    issuer.ensure_keys()
    manager = issuer.mint(role="manager", sub="bench-manager", teams=[TEAM, LOG_TEAM],
                          scope="user/*.cruds", ttl_seconds=4 * 3600)
    auth = {"Authorization": f"Bearer {manager}"}

    with ServiceUnderTest(bench, results, SERVICE) as workforce:
        service = workforce.process
        results["workforce_service"].update({"staff": staff, "care_contacts": contacts_count})
        staff_ids = run_async(_seed_team(service.base_url, manager, TEAM, staff))
        log_staff = run_async(_seed_team(service.base_url, manager, LOG_TEAM, 20))
        _seed_records(workforce.database, TEAM, staff_ids, contacts_count)
        say(f"seeded a team of {staff} staff with {contacts_count:,} care contacts")
        sampler = workforce.sample_memory()

        scenarios["workforce_peer_share"] = bench.load(
            "GET  /v1/teams/{id}/peer-share", service, sampler,
            [Request("GET", f"/v1/teams/{TEAM}/peer-share")], auth, expect(200))
        scenarios["workforce_readiness"] = bench.load(
            "GET  /v1/teams/{id}/readiness", service, sampler,
            [Request("GET", f"/v1/teams/{TEAM}/readiness")], auth, expect(200))
        today = date.today().isoformat()
        contacts = [Request("POST", "/v1/care-contacts", json.dumps(
            {"staff_id": staff_id, "service_user_id": f"su-log-{n:03d}", "minutes": 30,
             "mode": "individual", "occurred_on": today}, separators=(",", ":")))
            for n, staff_id in enumerate(log_staff * 5)]
        scenarios["log_care_contact"] = bench.load(
            "POST /v1/care-contacts", service, sampler, contacts,
            {**auth, "Content-Type": "application/json"}, expect(201))
