"""FastAPI dependencies every service route uses: the session, the caller, access checks.

They are all ``async``: FastAPI runs a plain ``def`` dependency in a worker thread, which
costs more than the work these do.
"""

from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.audit import Outcome, audit_row
from recovery.common.auth import (
    Principal,
    Verb,
    can_reach_record,
    can_read_aggregates,
    unauthorized,
)
from recovery.common.kit import ServiceKit
from recovery.common.problems import Problem
from recovery.common.settings import Settings

_BEARER_DESCRIPTION = "A JWT from the platform's OIDC issuer"


async def get_kit(request: Request) -> ServiceKit:
    kit: ServiceKit = request.app.state.kit
    return kit


KitDep = Annotated[ServiceKit, Depends(get_kit)]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.kit.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


# The dependencies below take the kit from the request themselves rather than through
# ``KitDep``: each level of FastAPI's dependency tree costs more per request than the work
# these do.
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    kit: ServiceKit = request.app.state.kit
    async with kit.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

async def _verified(kit: ServiceKit, authorization: str | None) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Send a bearer token in the Authorization header.",
                           token_sent=False)
    known = kit.verifier.cached(token)
    if known is not None:
        return known
    if kit.verifier.fetches_keys:
        # Fetching a JWKS over HTTP blocks; keep it off the event loop.
        return await anyio.to_thread.run_sync(kit.verifier.verify, token)
    return kit.verifier.verify(token)


class _Bearer(HTTPBearer):
    """The bearer scheme as FastAPI documents it, answering with the verified caller
    itself: one dependency where the scheme and a dependency on it were two, and each level
    of FastAPI's dependency tree cost more per request than the check."""

    def __init__(self) -> None:
        super().__init__(auto_error=False, description=_BEARER_DESCRIPTION,
                         scheme_name="HTTPBearer")

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        """The verified caller; 401 with ``WWW-Authenticate`` for a missing or bad token."""
        return await _verified(request.app.state.kit, request.headers.get("authorization"))


class _BearerAccess(_Bearer):
    async def __call__(self, request: Request) -> "RecordAccess":  # type: ignore[override]
        return RecordAccess(request, request.app.state.kit, await super().__call__(request))


PrincipalDep = Annotated[Principal, Depends(_Bearer())]


class RecordAccess:
    """Decides, audits and enforces access to clinical records for one request."""

    def __init__(self, request: Request, kit: ServiceKit, principal: Principal) -> None:
        self.request = request
        self.kit = kit
        self.principal = principal

    def _entry_context(self) -> dict[str, str | None]:
        # From the scope itself: ``request.client`` and ``request.state`` build an object
        # each, for every audited decision.
        scope = self.request.scope
        client = scope.get("client")
        return {
            "source_address": client[0] if client else None,
            "request_id": scope.get("state", {}).get("request_id"),
        }

    def allows(self, resource: str, verb: Verb, *, record_type: str, record_id: str | None,
               service_user_id: str, team_id: str | None, action: str,
               purpose: str | None = None) -> bool:
        """Decide and audit, without raising: for filtering lists and batch reads."""
        allowed = can_reach_record(self.principal, resource, verb,
                                   service_user_id=service_user_id, team_id=team_id)
        self.audit(record_type=record_type, record_id=record_id,
                   service_user_id=service_user_id, action=action,
                   outcome=Outcome.allowed if allowed else Outcome.denied, purpose=purpose)
        return allowed

    def check(self, resource: str, verb: Verb, *, record_type: str, record_id: str | None,
              service_user_id: str, team_id: str | None, action: str,
              purpose: str | None = None) -> None:
        """Allow or refuse (404, so records of others are not revealed); audit either way."""
        if not self.allows(resource, verb, record_type=record_type, record_id=record_id,
                           service_user_id=service_user_id, team_id=team_id, action=action,
                           purpose=purpose):
            raise Problem(404, f"No {record_type} with that id is available to you.",
                          kind="not-found")

    def check_aggregates(self, *, record_type: str, team_id: str | None,
                         action: str = "aggregate") -> None:
        """Team figures: managers and admins of the team; 403 otherwise, audited either way."""
        allowed = can_read_aggregates(self.principal, team_id)
        self.audit(record_type=record_type, record_id=team_id, service_user_id=None,
                   action=action, outcome=Outcome.allowed if allowed else Outcome.denied)
        if not allowed:
            raise Problem(403, "Team figures are for managers and admins of that team.",
                          kind="forbidden")

    def audit(self, *, record_type: str, record_id: str | None, service_user_id: str | None,
              action: str, outcome: Outcome, purpose: str | None = None) -> None:
        self.kit.audit.record(audit_row(
            self.principal, record_type=record_type, record_id=record_id,
            service_user_id=service_user_id, action=action, outcome=outcome, purpose=purpose,
            **self._entry_context()))


#: The verified caller's access to records (the token checked as for ``PrincipalDep``).
AccessDep = Annotated[RecordAccess, Depends(_BearerAccess())]
