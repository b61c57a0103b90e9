"""``/fhir/Subscription``: create, read, search (the caller's own), delete and ``$status``."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from recovery.common.auth import Principal, unauthorized
from recovery.common.fhir import FHIR_OK, FhirResponse, acceptable_format, read_response
from recovery.common.problems import problem_responses
from recovery.gateway.fhir import fhir_base
from recovery.gateway.fhir_subscriptions import service
from recovery.gateway.fhir_subscriptions.resources import (
    status_bundle,
    subscription_resource,
    subscription_url,
    subscriptions_bundle,
)
from recovery.gateway.fhir_subscriptions.service import Subscriptions


def subscriptions_router(subscriptions: Subscriptions,
                         verify: Callable[[str | None], Principal | None]) -> APIRouter:
    """The routes, with ``verify`` turning an Authorization header into the caller."""
    router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse,
                       dependencies=[Depends(acceptable_format)])

    def caller(request: Request) -> Principal:
        principal = verify(request.headers.get("authorization"))
        if principal is None:
            raise unauthorized("Send a bearer token.", token_sent=False)
        return principal

    Caller = Annotated[Principal, Depends(caller)]  # noqa: N806 (a type alias)
    refusals = problem_responses(400, 401, 403, 404, 503)

    @router.post("/Subscription", status_code=201, response_model=None,
                 responses={**FHIR_OK, **refusals},
                 summary="Subscribe to a topic (rest-hook, id-only)")
    async def create_subscription(request: Request, principal: Caller) -> Response:
        entry = await service.create(subscriptions, principal, await request.body(),
                                     fhir_base(request, subscriptions.gateway))
        return read_response(request, subscription_resource(entry), status=201,
                             headers={"Location": subscription_url(entry)})

    @router.get("/Subscription", response_model=None, responses={**FHIR_OK, **refusals},
                summary="The caller's subscriptions (searchset Bundle)")
    async def search_subscriptions(request: Request, principal: Caller) -> FhirResponse:
        entries = await service.list_own(subscriptions, principal)
        # Search parameters are not offered: the self link says none was used.
        base = fhir_base(request, subscriptions.gateway)
        return FhirResponse(subscriptions_bundle(entries, f"{base}/Subscription"))

    @router.get("/Subscription/{subscription_id}", response_model=None,
                responses={**FHIR_OK, **refusals}, summary="Read one of the caller's")
    async def read_subscription(request: Request, subscription_id: str,
                                principal: Caller) -> Response:
        entry = await service.read_own(subscriptions, principal, subscription_id)
        return read_response(request, subscription_resource(entry))

    @router.get("/Subscription/{subscription_id}/$status", response_model=None,
                responses={**FHIR_OK, **refusals},
                summary="The subscription's status (a searchset Bundle of one Parameters)")
    async def subscription_status(subscription_id: str, principal: Caller) -> FhirResponse:
        entry = await service.read_own(subscriptions, principal, subscription_id)
        return FhirResponse(status_bundle(entry))

    @router.delete("/Subscription/{subscription_id}", status_code=204, response_model=None,
                   responses=refusals, summary="Unsubscribe")
    async def delete_subscription(subscription_id: str, principal: Caller) -> Response:
        await service.delete_own(subscriptions, principal, subscription_id)
        return Response(status_code=204)

    return router
