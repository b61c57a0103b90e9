"""Liveness, readiness and metrics endpoints, the same on every service."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from recovery.common.migrations import at_head

health_router = APIRouter(tags=["operations"])


@health_router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health_router.get("/readyz", summary="Database reachable, migrations at head, NATS connected",
                   responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    kit = request.app.state.kit
    checks: dict[str, str] = {}
    try:
        async with kit.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if await at_head(kit.engine, kit.migrations_dir) else "behind"
    except Exception as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    if kit.settings.events_enabled:
        checks["nats"] = "ok" if kit.bus.connected else "disconnected"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


@health_router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
