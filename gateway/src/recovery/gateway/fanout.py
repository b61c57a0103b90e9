"""One FHIR request asked of several services, for what no one service owns: a person's
Patient (each service holding their records), an audit entry or a Provenance by id (the id
does not say which service holds it). One rule for every such answer: what a service found
is the answer; a refusal is passed on as it came; and while a service that might hold it
cannot answer, 503 with ``Retry-After``, never a 404 that might be false.
"""

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

import httpx
from fastapi import Request, Response

from recovery.common.problems import RETRY_AFTER_SECONDS, Problem

#: Each service's answer, or the problem the gateway made of not reaching it.
Answers = Mapping[str, httpx.Response | BaseException]


class Send(Protocol):
    """The gateway's call of a service with the caller's token and the public base."""

    async def __call__(self, request: Request, service: str, path: str,
                       params: Sequence[tuple[str, str]] | None = None) -> httpx.Response: ...


class Returned(Protocol):
    """A service's answer as the gateway passes it back."""

    def __call__(self, response: httpx.Response) -> Response: ...


async def ask_each(request: Request, send: Send, services: Sequence[str], path: str,
                   params: Sequence[tuple[str, str]] | None = None) -> dict[str, httpx.Response
                                                                             | BaseException]:
    """Every service's answer to the same request, asked at once."""
    answers = await asyncio.gather(*(send(request, service, path, params)
                                     for service in services), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, Problem):
            raise answer  # our own fault, not a service's unavailability
    return dict(zip(services, answers, strict=True))


def found(answers: Answers) -> list[httpx.Response]:
    """The answers that found something (200), in the order the services were asked."""
    return [a for a in answers.values() if isinstance(a, httpx.Response) and a.status_code == 200]


def failed(answers: Answers) -> list[str]:
    """The services that could not be asked, or failed."""
    return [service for service, answer in answers.items()
            if not isinstance(answer, httpx.Response) or answer.status_code >= 500]


def unavailable(services: Sequence[str]) -> Problem:
    return Problem(503, f"The {', '.join(services)} service cannot answer just now; try again "
                        "shortly.", kind="upstream-unavailable",
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def nothing_found(answers: Answers, returned: Returned) -> Response:
    """The answer when no service found it: a refusal (400, 401, 403, 422) as it came, a 503
    while one of them could not say, else the 404 they all gave."""
    responses = [a for a in answers.values() if isinstance(a, httpx.Response)]
    refusal = next((a for a in responses if a.status_code not in {200, 404}
                    and a.status_code < 500), None)
    if refusal is not None:
        return returned(refusal)
    if down := failed(answers):
        raise unavailable(down)
    return returned(responses[0])


async def read_from_any(request: Request, *, send: Send, returned: Returned,
                        services: Sequence[str], path: str) -> Response:
    """A read of what one of ``services`` holds, the id not saying which: whichever found it."""
    answers = await ask_each(request, send, services, path)
    hits = found(answers)
    return returned(hits[0]) if hits else nothing_found(answers, returned)
