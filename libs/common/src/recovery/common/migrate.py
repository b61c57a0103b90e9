"""Apply a service's migrations: ``python -m recovery.common.migrate recovery.goals.main``.

The module names the service (``SERVICE``) and its Alembic folder (``MIGRATIONS_DIR``); the
database is the one that service's settings point at, from the environment.
"""

import argparse
import asyncio
import importlib
from pathlib import Path

from sqlalchemy.engine import make_url

from recovery.common.db import create_engine
from recovery.common.migrations import current_revisions, upgrade_to_head
from recovery.common.settings import Settings


def service_of(module_name: str) -> tuple[str, Path]:
    """The ``SERVICE`` and ``MIGRATIONS_DIR`` a service's main module declares."""
    module = importlib.import_module(module_name)
    service, migrations_dir = getattr(module, "SERVICE", None), getattr(module, "MIGRATIONS_DIR",
                                                                        None)
    if not isinstance(service, str) or migrations_dir is None:
        raise SystemExit(f"{module_name} must define SERVICE and MIGRATIONS_DIR")
    return service, Path(migrations_dir)


async def _revision(url: str) -> str:
    engine = create_engine(url)
    try:
        return ",".join(sorted(await current_revisions(engine))) or "empty"
    finally:
        await engine.dispose()


def migrate(module_name: str) -> str:
    """Upgrade the service's database to head; returns the one line it reports."""
    service, migrations_dir = service_of(module_name)
    url = Settings(service=service).database_url
    upgrade_to_head(migrations_dir, url)
    shown = make_url(url).render_as_string(hide_password=True)
    return f"{service}: database {shown} at revision {asyncio.run(_revision(url))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module", help="a service's main module, e.g. recovery.goals.main")
    print(migrate(parser.parse_args().module))


if __name__ == "__main__":
    main()
