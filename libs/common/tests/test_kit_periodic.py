"""Work on a timer inside a service's lifespan (review sweeps): it runs while the app runs,
survives a failed round, stops with the app, and does not start when switched off."""

import asyncio
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from kit_toy import MIGRATIONS_DIR, create_app, toy_settings

from recovery.common.dev_issuer import DevIssuer
from recovery.common.kit import ServiceKit
from recovery.common.periodic import run_periodically
from recovery.common.testing.plugin import running_service


class Rounds:
    """What the work saw: the kit of each round; the first round fails."""

    def __init__(self) -> None:
        self.kits: list[ServiceKit] = []

    async def __call__(self, kit: ServiceKit) -> int:
        self.kits.append(kit)
        if len(self.kits) == 1:
            raise RuntimeError("the database is down")
        return 1


def _factory(rounds: Rounds, **options: object) -> Callable[..., FastAPI]:
    def create(settings: object) -> FastAPI:
        app = create_app(settings)  # type: ignore[arg-type]
        run_periodically(app, "toy_sweep", rounds, **options)  # type: ignore[arg-type]
        return app
    return create


async def test_work_repeats_while_the_app_runs_after_a_failed_round_and_stops_with_it(
        tmp_path: Path, dev_issuer: DevIssuer) -> None:
    rounds = Rounds()
    settings = toy_settings(f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}", dev_issuer)
    async with running_service(_factory(rounds, every_s=0.02), settings,
                               MIGRATIONS_DIR) as client:
        for _ in range(200):
            if len(rounds.kits) >= 3:
                break
            await asyncio.sleep(0.02)
        assert len(rounds.kits) >= 3
        assert all(kit is client.app.state.kit for kit in rounds.kits)  # type: ignore[attr-defined]
    stopped_at = len(rounds.kits)
    await asyncio.sleep(0.1)
    assert len(rounds.kits) == stopped_at


async def test_work_switched_off_never_runs(tmp_path: Path, dev_issuer: DevIssuer) -> None:
    rounds = Rounds()
    settings = toy_settings(f"sqlite+aiosqlite:///{tmp_path / 'toy.db'}", dev_issuer)
    for options in ({"every_s": 0}, {"every_s": 0.01, "enabled": lambda kit: False}):
        async with running_service(_factory(rounds, **options), settings, MIGRATIONS_DIR):
            await asyncio.sleep(0.1)
    assert rounds.kits == []
