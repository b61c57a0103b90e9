"""What ``make run`` starts: ``uvicorn --factory recovery.gateway.asgi:create_app``.

Not ``main``: the local runner migrates every ``recovery.*.main`` it finds in the process
list, and the gateway owns no database.
"""

from recovery.gateway.main import create_app

__all__ = ["create_app"]
