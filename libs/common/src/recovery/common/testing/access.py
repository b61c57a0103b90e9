"""The object-access harness of every service: who must not reach a service user's records,
and how a refusal must look."""

import httpx
from sqlalchemy import func, table
from sqlmodel import select

from recovery.common.testing.openapi_operations import PROBLEM
from recovery.common.testing.plugin import TokenFactory, unique


def assert_problem(response: httpx.Response, status: int, kind: str, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == PROBLEM, what
    body = response.json()
    assert body["status"] == status, what
    assert body["type"].endswith("/" + kind), f"{what}: {body['type']}"


def intruders(tokens: TokenFactory, *, other_person: str, other_team: str) -> dict[str, str]:
    """Callers with every scope they could need, but no claim on a person of another team."""
    return {
        "another service user": tokens.service_user(other_person),
        "a clinician of another team": tokens.clinician("staff-out", [other_team]),
        "an admin of another team": tokens.admin("admin-out", [other_team]),
        "a peer specialist of no team": tokens("peer_specialist", "peer-out", teams=[]),
        "a service user whose token names no patient": tokens(
            "service_user", unique("su"), scope="user/*.cruds"),
        # System scopes count only for partner systems, never for people who claim them.
        "a clinician of another team claiming system scopes": tokens.clinician(
            "staff-sys", [other_team], scope="system/*.cruds"),
    }


async def row_counts(client: httpx.AsyncClient, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows in each of ``tables`` of the in-process service behind ``client`` (from
    ``running_service``): what a refused change must leave as it was."""
    kit = client.app.state.kit  # type: ignore[attr-defined]
    async with kit.sessions() as session:
        return {name: int((await session.exec(select(func.count()).select_from(table(name))))
                          .one()) for name in tables}
