"""Per-request context: the verified caller, their token, and fresh DataLoaders."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from strawberry.fastapi import BaseContext

from recovery.common.auth import Principal
from recovery.gateway.errors import ErrorCode, GatewayError, unauthenticated
from recovery.gateway.feed import EventFeed
from recovery.gateway.loaders import Loaders
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.upstream import UpstreamAnswer, Upstreams


@dataclass
class GatewayContext(BaseContext):
    """What every resolver sees; built once per request (or per subscription connection)."""

    principal_or_none: Principal | None
    upstreams: Upstreams
    settings: GatewaySettings
    feed: EventFeed | None = None
    #: Verifies a token sent later, in a websocket's connection_init payload.
    verify: Callable[[str | None], Principal | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def principal(self) -> Principal:
        """The signed-in caller, or an UNAUTHENTICATED error."""
        if self.principal_or_none is None and self.connection_params and self.verify:
            params: dict[str, Any] = self.connection_params
            sent = params.get("Authorization") or params.get("authorization")
            try:
                self.principal_or_none = self.verify(str(sent) if sent else None)
            except Exception as exc:
                raise GatewayError(ErrorCode.unauthenticated,
                                   "The token in connection_init is not valid.") from exc
        if self.principal_or_none is None:
            raise unauthenticated()
        return self.principal_or_none

    @property
    def token(self) -> str | None:
        return self.principal.token

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.upstreams, self.token, self.settings)

    @property
    def events(self) -> EventFeed:
        if self.feed is None:
            raise GatewayError(ErrorCode.upstream_unavailable,
                               "Live changes are switched off here.")
        return self.feed

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None,
                   if_match: str | None = None,
                   idempotency_key: str | None = None) -> UpstreamAnswer:
        """A call with the caller's own token (never the gateway's)."""
        return await self.upstreams.call(service, method, path, self.principal.token,
                                         json=json, params=params, if_match=if_match,
                                         idempotency_key=idempotency_key)

    async def every_item(self, service: str, path: str,
                         params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a service's paged list, read with the caller's own token."""
        return await self.upstreams.every_item(service, path, self.principal.token, params)
