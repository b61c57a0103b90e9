"""Routing that tries, for each request, only the routes its path could match.

FastAPI's router tries every route in turn until one matches, and in FastAPI 0.165 each try
costs about a microsecond and a half of wrapping around the pattern itself: a service's
read near the end of its ~30 routes paid ~20 µs before its own work began. The index keeps
the router's behaviour exactly (the same routes in the same order, the same partial matches
for 405, the same slash redirects) and only leaves out routes that cannot match: a route can
match a path only if the path begins with the route's text up to its first parameter.

Within those, a request first tries the routes that could answer it in full: those taking
its method whose template has as many segments as its path. Only if none of them matches
does it go to the routes of its first segments, which then answer as the router would (a
405 for a known path with another method, a redirect to the path with or without its
slash, a 404).
"""

import copy
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRouter
from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send


def literal_prefix(route: Any) -> str | None:
    """The route's path up to its first parameter; None where that cannot be told (a route
    without a path template), so the route is always tried."""
    path = getattr(route, "path_format", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    return path.split("{", 1)[0]


#: Starlette's convertors whose values never hold a slash (``path`` does; one registered by
#: an app might).
_WITHIN_A_SEGMENT = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)


def segment_count(route: Any) -> int | None:
    """How many segments every path the route matches has; None where that is not fixed
    (a mount, a ``:path`` parameter or any other convertor, a route without a template)."""
    path = getattr(route, "path_format", None)
    if (not isinstance(route, Route) or not isinstance(path, str)
            or any(type(convertor) not in _WITHIN_A_SEGMENT
                   for convertor in route.param_convertors.values())):
        return None
    return path.count("/")


def path_key(path: str) -> str:
    """The path's first two segments (``/v1/people`` of ``/v1/people/su-1/crisis-plan``)."""
    return "/".join(path.split("/", 3)[:3])


class RouteIndex:
    """Stands in for the router's own matching loop: it hands each request to a copy of the
    router holding only the routes that could match the request's first two segments.

    Installed as the router's ``middleware_stack``; paths whose first segments no route
    starts with, anything not HTTP and apps served under a root path go to the router's own
    loop. Rebuilt when the router's routes change, after ``prepare`` (if given) has seen the
    routes: the kit's apps bind each route there (``binding.bind_routes``), routes added
    later included."""

    def __init__(self, router: APIRouter,
                 prepare: Callable[[list[BaseRoute]], object] | None = None) -> None:
        self._router = router
        self._prepare = prepare
        self._everything: ASGIApp = router.app
        self._by_key: dict[str, ASGIApp] = {}
        #: By key, segment count and method: the routes that can answer such a request in
        #: full, in the router's order, falling back to the key's routes.
        self._by_shape: dict[tuple[str, int, str], ASGIApp] = {}
        self._built_for: tuple[int, int] = (0, -1)

    def _build(self) -> None:
        if self._prepare is not None:
            self._prepare(self._router.routes)
        routes = list(self._router.routes)
        prefixes = [literal_prefix(route) for route in routes]
        # FastAPI's routes of low priority are tried after every other route has failed; a
        # router with any keeps to the key's routes alone.
        shapes = not getattr(self._router, "_low_priority_routes", None)
        self._by_key, self._by_shape = {}, {}
        for key in {path_key(prefix) for prefix in prefixes if prefix}:
            narrowed = copy.copy(self._router)
            # Leaving a route out is safe only if no path with this key can match it: the
            # path must then start with the route's prefix, so one of the two starts the other.
            narrowed.routes = [route for route, prefix in zip(routes, prefixes, strict=True)
                               if prefix is None or prefix.startswith(key)
                               or key.startswith(prefix)]
            self._by_key[key] = narrowed.app
            if shapes:
                self._build_shapes(key, narrowed)
        self._built_for = (id(self._router.routes), len(self._router.routes))

    def _build_shapes(self, key: str, narrowed: APIRouter) -> None:
        """For each segment count and method the key's routes have, the routes that can
        match such a request in full (a route with another method could only match in
        part). Where none does, the key's routes answer: slashes are not redirected here,
        and the key's router is this one's default."""
        shapes = {(count, method) for route in narrowed.routes
                  if (count := segment_count(route)) is not None
                  for method in getattr(route, "methods", None) or ()}
        for count, method in shapes:
            shaped = copy.copy(narrowed)
            shaped.routes = [route for route in narrowed.routes
                             if segment_count(route) in (None, count)
                             and method in (getattr(route, "methods", None) or (method,))]
            shaped.redirect_slashes = False
            shaped.default = self._by_key[key]
            self._by_shape[(key, count, method)] = shaped.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Under a root path the router matches the path without it; leave that to the router.
        if scope["type"] != "http" or scope.get("root_path"):
            await self._everything(scope, receive, send)
            return
        if self._built_for != (id(self._router.routes), len(self._router.routes)):
            self._build()
        # url_for and friends look routes up in the scope's router: the whole one.
        scope.setdefault("router", self._router)
        path = scope["path"]
        key = path_key(path)
        shaped = self._by_shape.get((key, path.count("/"), scope["method"]))
        if shaped is not None:
            await shaped(scope, receive, send)
            return
        narrowed = self._by_key.get(key)
        await (narrowed or self._everything)(scope, receive, send)
