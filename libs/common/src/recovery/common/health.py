"""Liveness, readiness and metrics endpoints, the same on every service."""

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from recovery.common.migrations import at_head

#: A probe must answer quickly even when the database host does not.
DATABASE_CHECK_SECONDS = 2.0

health_router = APIRouter(tags=["operations"])


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


_ALIVE = Liveness(status="ok").model_dump_json().encode()


@health_router.get("/healthz", summary="The process is alive", response_model=Liveness)
async def healthz() -> Response:
    return Response(_ALIVE, media_type="application/json")


@health_router.get(
    "/readyz",
    summary="Database reachable, migrations at head, NATS connected (when events are on)",
    response_model=Readiness,
    responses={503: {"description": "Not ready", "model": Readiness}},
)
async def readyz(request: Request) -> JSONResponse:
    kit = request.app.state.kit
    checks: dict[str, str] = {}

    async def database() -> None:
        async with kit.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if await at_head(kit.engine, kit.migrations_dir) else "behind"

    try:
        await asyncio.wait_for(database(), DATABASE_CHECK_SECONDS)
    except Exception as exc:
        # The type only: driver messages can carry connection strings.
        checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    if kit.settings.events_enabled:
        checks["nats"] = "ok" if kit.bus.connected else "disconnected"
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@health_router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                   responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
