"""Per-request context: the verified caller, their token, and fresh DataLoaders."""

from dataclasses import dataclass, field
from typing import Any

from strawberry.fastapi import BaseContext

from recovery.common.auth import Principal
from recovery.gateway.errors import unauthenticated
from recovery.gateway.loaders import Loaders
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.upstream import UpstreamAnswer, Upstreams


@dataclass
class GatewayContext(BaseContext):
    """What every resolver sees; built once per request (or per subscription)."""

    principal_or_none: Principal | None
    upstreams: Upstreams
    settings: GatewaySettings
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = Loaders(self.upstreams, self.token, self.settings)

    @property
    def principal(self) -> Principal:
        """The signed-in caller, or an UNAUTHENTICATED error."""
        if self.principal_or_none is None:
            raise unauthenticated()
        return self.principal_or_none

    @property
    def token(self) -> str | None:
        return self.principal_or_none.token if self.principal_or_none else None

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None,
                   if_match: str | None = None) -> UpstreamAnswer:
        """A call with the caller's own token (never the gateway's)."""
        return await self.upstreams.call(service, method, path, self.principal.token,
                                         json=json, params=params, if_match=if_match)
