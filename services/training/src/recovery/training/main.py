"""The training service's entry point: ``uvicorn --factory recovery.training.main:create_app``."""

from pathlib import Path

from fastapi import FastAPI

from recovery.common.app import create_service_app
from recovery.common.events.consumer import EventHandler
from recovery.common.settings import Settings

SERVICE = "training"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """The Recovery Education Centre: a prospectus of co-produced courses for staff,
service users and carers; runs co-delivered by an educator with lived experience and another
facilitator; enrolment, waiting lists, attendance, completion and feedback; the foundation
course on recovery principles for all staff, kept from workforce events; coverage and quality.
Errors are RFC 9457 problem documents."""


def handlers() -> list[EventHandler]:
    """The workforce events that keep the staff roster (durable name: keep it stable)."""
    from recovery.training.events import WorkforceEvent
    from recovery.training.service import apply_staff_event

    return [EventHandler(durable="training-staff-roster", stream="WORKFORCE",
                         subjects=tuple(e.value for e in WorkforceEvent),
                         handle=apply_staff_event)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The training app; without settings, they are read from the environment."""
    from recovery.training import fhir, routes

    return create_service_app(
        settings=settings or Settings(service=SERVICE),
        title="Recovery Platform: training",
        description=DESCRIPTION,
        routers=[routes.router, fhir.router],
        migrations_dir=MIGRATIONS_DIR,
        handlers=handlers(),
    )
