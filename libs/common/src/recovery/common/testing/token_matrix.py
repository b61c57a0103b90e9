"""The token matrix every service runs: each protected operation, sent with a bad or missing
credential, answers 401 with a problem document and a Bearer challenge, and never echoes the
token; the same operations with a good token get past authentication."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from recovery.common.testing.openapi_operations import PROBLEM, Operation


@dataclass
class Call:
    """What to send for one operation, apart from the credential."""

    path: str
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def is_unauthorized_problem(response: httpx.Response) -> bool:
    if response.status_code != 401 or response.headers.get("content-type") != PROBLEM:
        return False
    problem = response.json()
    return (isinstance(problem, dict) and problem.get("status") == 401
            and str(problem.get("type", "")).endswith("/unauthorized")
            and response.headers.get("www-authenticate", "").startswith("Bearer "))


@dataclass
class TokenMatrix:
    """A running service's protected operations and how to call each."""

    client: httpx.AsyncClient
    operations: list[Operation]
    call_for: Callable[[Operation], Call]

    async def _send(self, operation: Operation, authorization: str | None) -> httpx.Response:
        call = self.call_for(operation)
        headers = dict(call.headers)
        if authorization is not None:
            headers["Authorization"] = authorization
        return await self.client.request(operation.method, call.path, headers=headers,
                                         json=call.json, params=call.params)

    async def not_refused(self, authorization: str | None) -> list[str]:
        """Operations that did not answer the credential with a proper 401, or echoed it."""
        wrong: list[str] = []
        for operation in self.operations:
            response = await self._send(operation, authorization)
            if not is_unauthorized_problem(response):
                wrong.append(f"{operation} -> {response.status_code} {response.text[:200]}")
            if authorization is not None and authorization.split(" ", 1)[-1] in response.text:
                wrong.append(f"{operation} echoes the token")
        return wrong

    async def refused_reads(self, token: str, methods: Iterable[str] = ("get",)) -> list[str]:
        """The control: reads a good token sends that are refused as unauthenticated."""
        wanted = set(methods)
        wrong: list[str] = []
        for operation in self.operations:
            if operation.method in wanted:
                response = await self._send(operation, f"Bearer {token}")
                if response.status_code == 401:
                    wrong.append(f"{operation}: {response.text[:200]}")
        return wrong
