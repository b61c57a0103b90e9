"""Versioned records over HTTP: ETag out, ``If-Match`` in (428 without, 412 when stale), and
changes that lost a race to another change of the same record tried again."""

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from fastapi import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from recovery.common.problems import Problem

T = TypeVar("T")
U = TypeVar("U")
#: Attempts at a change that keeps losing races before the caller is asked to try again.
CHANGE_ATTEMPTS = 8


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def require_if_match(if_match: str | None, current_version: int) -> None:
    """Allow a change only against the version the caller has seen."""
    if not if_match:
        raise Problem(
            428,
            "Send If-Match with the ETag of the version you are changing.",
            kind="precondition-required",
        )
    candidates = {part.strip().removeprefix("W/") for part in if_match.split(",")}
    if "*" in candidates or etag(current_version) in candidates:
        return
    raise Problem(
        412,
        f"The record has changed since you read it; it is now at version {current_version}. "
        "Read it again and reapply your change.",
        kind="version-conflict",
    )


async def retry_lost_races(open_unit: Callable[[], AbstractAsyncContextManager[U]],
                           change: Callable[[U], Awaitable[T]], *, detail: str,
                           kind: str = "concurrent-changes",
                           attempts: int = CHANGE_ATTEMPTS) -> T:
    """Run ``change`` in a fresh unit of work (a session of the kit, or a transaction of
    ``kit.writes``), and again from a fresh read when another change committed first (the
    record's version counter: ``StaleDataError``; a key taken meanwhile: ``IntegrityError``);
    leaving the unit undoes what the failed attempt wrote. ``change`` checks ``If-Match`` on
    every read, so an edit whose version moved on gets 412 while changes that do not
    conflict both land; 409 after ``attempts``."""
    for _ in range(attempts):
        try:
            async with open_unit() as unit:
                return await change(unit)
        except (StaleDataError, IntegrityError):
            continue
    raise Problem(409, detail, kind=kind)
