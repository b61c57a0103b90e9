"""The organisation's peer-share target and the payer's billing rules are configuration:
read from RECOVERY_WORKFORCE_* and applied by a running service."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from workforce_api import WorkforceApi

from recovery.common.dev_issuer import DevIssuer
from recovery.common.settings import Settings
from recovery.common.testing.plugin import TokenFactory, make_settings, running_service
from recovery.workforce.main import MIGRATIONS_DIR, SERVICE, create_app
from recovery.workforce.options import UnitRounding, WorkforceOptions


def test_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkforceOptions().peer_share_target == 0.5
    assert WorkforceOptions().billing_rounding is UnitRounding.midpoint
    monkeypatch.setenv("RECOVERY_WORKFORCE_PEER_SHARE_TARGET", "0.3")
    monkeypatch.setenv("RECOVERY_WORKFORCE_BILLING_ROUNDING", "down")
    monkeypatch.setenv("RECOVERY_WORKFORCE_BILLING_DAILY_CAP_UNITS", "4")
    options = WorkforceOptions()
    assert (options.peer_share_target, options.billing_rounding,
            options.billing_daily_cap_units) == (0.3, UnitRounding.down, 4)


async def test_a_service_applies_its_target_rounding_and_daily_cap(
        tmp_path: Path, dev_issuer: DevIssuer, tokens: TokenFactory) -> None:
    settings = make_settings(SERVICE, database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db",
                             jwks_file=dev_issuer.jwks_path)
    options = WorkforceOptions(peer_share_target=0.25, billing_rounding=UnitRounding.down,
                               billing_daily_cap_units=4)

    def factory(settings_: Settings) -> FastAPI:
        return create_app(settings_, options)

    async with running_service(factory, settings, MIGRATIONS_DIR) as client:
        api = WorkforceApi(client, tokens)
        team = await api.team()
        peer = await api.staff(team, role_type="peer_specialist", profession="peer_support")
        nurse = await api.staff(team)
        day = date.today() - timedelta(days=1)
        for staff, minutes, person in ((peer, 29, "su-1"), (peer, 100, "su-2"),
                                       (nurse, 200, "su-1")):
            assert (await api.contact(team, staff["id"], minutes, person=person,
                                      on=day)).status_code == 201
        manager = api.manager(team)
        share = await api.get(f"/v1/teams/{team}/peer-share", manager, months=2)
        assert share["target"] == 0.25 and share["share"] == 0.3921  # 129 of 329 minutes
        assert share["meets_target"] is True
        export = await api.get(f"/v1/teams/{team}/peer-support-billing", manager,
                               **{"from": day.isoformat(), "to": day.isoformat()})
        assert (export["rounding"], export["daily_cap_units"]) == ("down", 4)
        units = {line["service_user_id"]: (line["units"], line["capped"])
                 for line in export["lines"]}
        assert units == {"su-1": (1, False), "su-2": (4, True)}  # 29 min down; 6 capped to 4
