"""The token matrix every service runs: each protected operation, sent with a bad or missing
credential, answers 401 with a problem document (an OperationOutcome under ``/fhir``) and a
Bearer challenge, and never echoes the token; the same operations with a good token get past
authentication."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx
import pytest

from recovery.common.dev_issuer import DevIssuer
from recovery.common.testing.access import error_media_type, problem_kind
from recovery.common.testing.forged_tokens import bad_credentials
from recovery.common.testing.openapi_operations import Operation, undeclared_security
from recovery.common.testing.plugin import TokenFactory


@dataclass
class Call:
    """What to send for one operation, apart from the credential."""

    path: str
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def is_unauthorized_problem(response: httpx.Response) -> bool:
    """A 401 as the contract has it: a problem document (an OperationOutcome under /fhir) of
    type unauthorized, with the Bearer challenge."""
    if (response.status_code != 401
            or response.headers.get("content-type") != error_media_type(response)):
        return False
    return (problem_kind(response) == "unauthorized"
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


class MatrixWorld(Protocol):
    """What a service's module-scoped ``world`` fixture yields for the contract below."""

    client: httpx.AsyncClient
    operations: list[Operation]

    @property
    def matrix(self) -> TokenMatrix: ...

    async def snapshot(self) -> object:
        """What a refused change must leave alone, read with an allowed token."""
        ...


#: The names of the bad credentials; which claims they forge is the test class's.
CREDENTIALS = list(bad_credentials())


class TokenMatrixContract:
    """The token-matrix tests every service runs: a service's ``Test...`` class inherits them,
    names the claims its forgeries carry (someone who could otherwise do everything) and
    provides a module-scoped ``world`` fixture (a ``MatrixWorld``)."""

    roles: ClassVar[list[str]] = ["admin"]
    teams: ClassVar[list[str]] = ["team-a"]

    async def test_every_protected_operation_declares_bearer_security(
            self, world: MatrixWorld) -> None:
        openapi = (await world.client.get("/openapi.json")).json()
        assert undeclared_security(openapi, world.operations) == []

    async def test_a_valid_token_gets_past_authentication_on_every_read(
            self, world: MatrixWorld, tokens: TokenFactory) -> None:
        """The control: the same reads with a good token are not refused as
        unauthenticated (reads only, so the records stay as the bad-token tests expect)."""
        assert await world.matrix.refused_reads(tokens.admin("admin-1", ["team-a"])) == []

    @pytest.mark.parametrize("credential", CREDENTIALS)
    async def test_a_bad_or_missing_token_is_401_on_every_endpoint_and_changes_nothing(
            self, world: MatrixWorld, dev_issuer: DevIssuer, credential: str) -> None:
        forge = bad_credentials(roles=self.roles, teams=self.teams)[credential]
        before = await world.snapshot()
        wrong = await world.matrix.not_refused(forge(dev_issuer))
        assert wrong == [], "\n".join(wrong)
        assert await world.snapshot() == before
