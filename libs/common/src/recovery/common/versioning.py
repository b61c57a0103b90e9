"""Versioned records over HTTP: ETag out, ``If-Match`` in (428 without, 412 when stale)."""

from fastapi import Response

from recovery.common.problems import Problem


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
