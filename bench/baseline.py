"""The baseline: a bare Starlette JSON endpoint, served with the goals service's settings."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "baseline"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", hello), Route("/healthz", hello)])
