"""FastAPI dependencies every service route uses: the session, the caller, access checks."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from recovery.common.app import ServiceKit
from recovery.common.audit import Outcome, audit_entry
from recovery.common.auth import Principal, Verb, can_reach_record, unauthorized
from recovery.common.problems import Problem
from recovery.common.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="A JWT from the platform's OIDC issuer")


def get_kit(request: Request) -> ServiceKit:
    kit: ServiceKit = request.app.state.kit
    return kit


KitDep = Annotated[ServiceKit, Depends(get_kit)]


def get_settings(kit: KitDep) -> Settings:
    return kit.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(kit: KitDep) -> AsyncIterator[AsyncSession]:
    async with kit.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_principal(
    kit: KitDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("Send a bearer token in the Authorization header.")
    return kit.verifier.verify(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class RecordAccess:
    """Decides, audits and enforces access to one clinical record."""

    def __init__(self, request: Request, kit: KitDep, principal: PrincipalDep) -> None:
        self.request = request
        self.kit = kit
        self.principal = principal

    def _entry_context(self) -> dict[str, str | None]:
        client = self.request.client
        return {
            "source_address": client.host if client else None,
            "request_id": getattr(self.request.state, "request_id", None),
        }

    def check(self, resource: str, verb: Verb, *, record_type: str, record_id: str | None,
              service_user_id: str, team_id: str | None, action: str,
              purpose: str | None = None) -> None:
        """Allow or refuse (404, so records of others are not revealed); audit either way."""
        allowed = can_reach_record(self.principal, resource, verb,
                                   service_user_id=service_user_id, team_id=team_id)
        self.audit(record_type=record_type, record_id=record_id,
                   service_user_id=service_user_id, action=action,
                   outcome=Outcome.allowed if allowed else Outcome.denied, purpose=purpose)
        if not allowed:
            raise Problem(404, f"No {record_type} with that id is available to you.",
                          kind="not-found")

    def audit(self, *, record_type: str, record_id: str | None, service_user_id: str | None,
              action: str, outcome: Outcome, purpose: str | None = None) -> None:
        self.kit.audit.record(audit_entry(
            self.principal, record_type=record_type, record_id=record_id,
            service_user_id=service_user_id, action=action, outcome=outcome, purpose=purpose,
            **self._entry_context()))


AccessDep = Annotated[RecordAccess, Depends(RecordAccess)]
