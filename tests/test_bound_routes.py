"""Every route of every service is served by its bound handler (`recovery.common.binding`,
decision 23), so no route pays FastAPI's per-request dependency solving unnoticed: a route
that starts asking for something the binding plan does not cover shows up here by name."""

import importlib
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from recovery.common.binding import BoundRoute
from recovery.common.testing.plugin import make_settings

SERVICES = ("goals", "crisis-plans", "risk", "training", "workforce")


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_of_the_service_is_bound(service: str, tmp_path: Path) -> None:
    main = importlib.import_module(f"recovery.{service.replace('-', '_')}.main")
    app = main.create_app(make_settings(
        service, database_url=f"sqlite+aiosqlite:///{tmp_path}/bound.db",
        jwks_file=tmp_path / "jwks.json"))
    routes = [route for route in app.router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 20
    assert [f"{sorted(route.methods)} {route.path}" for route in routes
            if not isinstance(route.app, BoundRoute)] == []
