"""Per-request DataLoaders over the services' batch endpoints: a list of any length costs
one call per service (per hundred people), made in parallel."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, NamedTuple, TypeVar

from strawberry.dataloader import DataLoader

from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.upstream import Upstreams, segment

T = TypeVar("T")
#: The services' batch endpoints take at most this many people per call, and give at most
#: this many records per person.
BATCH_SIZE = 100
PER_PERSON = 100
#: How the people's batch reads name their fields: the ids, the page size, each owner.
PEOPLE = ("service_user_ids", "limit_per_person", "service_user_id")


class PersonRecords(NamedTuple):
    """One person's records from a batch read; ``truncated`` when they have more."""

    records: list[dict[str, Any]]
    truncated: bool


class FirstPage(NamedTuple):
    """The first items of one list from a batch read, and the service's cursor after them
    (None when there are no more)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


#: A list's owner (a person, a course) and how many of its first items are asked for.
PageKey = tuple[str, int]
#: The path and query of one owner's own list.
ListOf = Callable[[str], tuple[str, dict[str, Any]]]


async def in_chunks(keys: Sequence[str],
                    load: Callable[[list[str]], Awaitable[dict[str, T]]]) -> dict[str, T]:
    chunks = [list(keys[i:i + BATCH_SIZE]) for i in range(0, len(keys), BATCH_SIZE)]
    found: dict[str, T] = {}
    for part in await asyncio.gather(*(load(chunk) for chunk in chunks)):
        found.update(part)
    return found


class Loaders:
    """Created per request so nothing one caller may read is cached for another."""

    def __init__(self, upstreams: Upstreams, token: str | None,
                 settings: GatewaySettings) -> None:
        self._upstreams = upstreams
        self._token = token
        self._settings = settings
        self.goals_of_person = DataLoader[str, PersonRecords](partial(
            self._records_of_people, "goals", "/v1/goals:batch-read", "goals"))
        self.active_plan_of_person = DataLoader[str, dict[str, Any] | None](self._active_plans)
        self.risk_assessments_of_person = DataLoader[str, PersonRecords](partial(
            self._records_of_people, "risk", "/v1/risk-assessments:batch-read",
            "assessments"))
        # First pages of many owners' lists, one batch call per service (and page size).
        # A lone owner's page is read from its list, a cheaper query than the batch's.
        self.first_goals = DataLoader[PageKey, FirstPage](partial(
            self._first_pages, "goals", "/v1/goals:batch-read", "goals",
            alone=lambda person: ("/v1/goals", {"service_user_id": person})))
        self.first_risk_assessments = DataLoader[PageKey, FirstPage](partial(
            self._first_pages, "risk", "/v1/risk-assessments:batch-read", "assessments",
            alone=lambda person: ("/v1/risk-assessments", {"service_user_id": person})))
        self.first_crisis_plans = DataLoader[PageKey, FirstPage](partial(
            self._first_pages, "crisis-plans", "/v1/crisis-plans:batch-read", "plans",
            alone=lambda person: (f"/v1/people/{segment(person)}/crisis-plans", {})))
        self.first_runs = DataLoader[PageKey, FirstPage](partial(
            self._first_pages, "training", "/v1/runs:batch-read", "runs",
            owners=("course_ids", "limit_per_course", "course_id"),
            alone=lambda course: (f"/v1/courses/{segment(course)}/runs", {})))
        self._foundation: dict[str, asyncio.Future[dict[str, dict[str, Any]]]] = {}
        self.team = DataLoader[str, dict[str, Any]](self._teams)

    async def _post(self, service: str, path: str, body: dict[str, Any]) -> Any:
        return (await self._upstreams.call(service, "POST", path, self._token, json=body)).body

    async def _records_of_people(self, service: str, path: str, key: str,
                                 people: list[str]) -> list[PersonRecords]:
        """Each person's records from the service's batch read (its newest ones, as many as
        the batch holds per person)."""
        async def load(chunk: list[str]) -> dict[str, PersonRecords]:
            body = await self._post(service, path, {"service_user_ids": chunk,
                                                    "limit_per_person": PER_PERSON})
            return {r["service_user_id"]: PersonRecords(r[key], bool(r.get("truncated")))
                    for r in body["results"]}

        found = await in_chunks(people, load)
        return [found.get(person, PersonRecords([], False)) for person in people]

    async def _first_pages(self, service: str, path: str, key: str, keys: list[PageKey], *,
                           alone: ListOf, owners: tuple[str, str, str] = PEOPLE
                           ) -> list[FirstPage]:
        """Each owner's first items (as many as its key asks) from the service's batch read,
        one call per page size asked and hundred owners, with the cursor to page on; a
        lone owner's from its own list (``alone`` names it), which answers the same page."""
        if len(keys) == 1:
            owner, size = keys[0]
            list_path, params = alone(owner)
            try:
                page = (await self._upstreams.call(service, "GET", list_path, self._token,
                                                   params={**params, "limit": size})).body
            except GatewayError as refused:
                if refused.code is not ErrorCode.not_found:
                    raise
                # What the caller may not read is left out of a batch: none of it here.
                return [FirstPage([], None)]
            return [FirstPage(page["items"], page.get("next_cursor"))]
        ids_field, limit_field, owner_field = owners
        by_size: dict[int, list[str]] = {}
        for owner, size in keys:
            by_size.setdefault(size, []).append(owner)

        async def of_size(size: int, wanted: list[str]) -> tuple[int, dict[str, FirstPage]]:
            async def load(chunk: list[str]) -> dict[str, FirstPage]:
                body = await self._post(service, path, {ids_field: chunk, limit_field: size})
                return {r[owner_field]: FirstPage(r[key], r.get("next_cursor"))
                        for r in body["results"]}

            return size, await in_chunks(wanted, load)

        found = dict(await asyncio.gather(*(of_size(s, w) for s, w in by_size.items())))
        return [found[size].get(owner, FirstPage([], None)) for owner, size in keys]

    async def _active_plans(self, people: list[str]) -> list[dict[str, Any] | None]:
        async def load(chunk: list[str]) -> dict[str, dict[str, Any] | None]:
            body = await self._post("crisis-plans", "/v1/crisis-plans:batch-read",
                                    {"service_user_ids": chunk})
            return {r["service_user_id"]: r["active_plan"] for r in body["results"]}

        found = await in_chunks(people, load)
        return [found.get(person) for person in people]

    def foundation_enrolments(self, team_id: str) -> "asyncio.Future[dict[str, dict[str, Any]]]":
        """The team's foundation course enrolments the caller may see, by learner: one fetch
        per team and request, started by the staff list at the same time as its own call."""
        if team_id not in self._foundation:
            loading = asyncio.ensure_future(self._load_foundation_enrolments(team_id))
            # Started ahead, it may fail with nobody left to await it; its error is a field's.
            loading.add_done_callback(_retrieved)
            self._foundation[team_id] = loading
        return self._foundation[team_id]

    async def _load_foundation_enrolments(self, team_id: str) -> dict[str, dict[str, Any]]:
        # The training service lists them 200 at a time: a team of 2 or of 200 costs one call,
        # however many other teams' enrolments the caller may also see.
        found: dict[str, dict[str, Any]] = {}
        for enrolment in await self._upstreams.every_item(
                "training", "/v1/enrolments", self._token,
                {"course_id": self._settings.foundation_course_id, "team_id": team_id}):
            learner = enrolment["learner_id"]
            if _better(enrolment, found.get(learner)):
                found[learner] = enrolment
        return found

    async def _teams(self, ids: list[str]) -> list[dict[str, Any] | BaseException]:
        async def one(team_id: str) -> dict[str, Any]:
            answer = await self._upstreams.call("workforce", "GET", f"/v1/teams/{segment(team_id)}",
                                                self._token)
            team: dict[str, Any] = answer.body
            return team

        results = await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)
        return list(results)


def _retrieved(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()


_STATUS_RANK = {"completed": 3, "enrolled": 2, "waiting": 1, "withdrawn": 0}


def _better(candidate: dict[str, Any], held: dict[str, Any] | None) -> bool:
    """A completion counts over a later withdrawal or a second enrolment."""
    if held is None:
        return True
    return _STATUS_RANK.get(candidate["status"], 0) > _STATUS_RANK.get(held["status"], 0)
