"""Route handlers that bind each request's parameters by a plan made once per route.

For every request FastAPI 0.165 walks the route's dependency tree anew: for each level it
asks again whether each callable is a generator or a coroutine, builds a cache key, makes a
throw-away response for headers nobody sets, and looks for path, query, header and cookie
parameters even where a route has none; it also opens two exit stacks per request and asks
its telemetry on each step. For the active crisis plan that bookkeeping cost more CPU than
reading the plan, auditing the read and writing the log line together.

``bind_routes`` looks at each route once and, where everything the route asks for is of a
kind the plan below covers, serves the route with a handler that does FastAPI's steps in
FastAPI's order with FastAPI's own functions and nothing else:

1. the body is read and parsed as FastAPI reads it (JSON only for a JSON content type, the
   same 422 for malformed JSON, the same 400 and 413 for a body that cannot be read);
2. the dependencies are called in their order, each once, a generator's exit kept for after
   the response is sent (FastAPI's default scope);
3. path, query, header and cookie parameters and the body are validated by FastAPI's
   ``request_params_to_args`` and ``request_body_to_args``, and any error is raised as the
   same ``RequestValidationError``; a parameter FastAPI would read with a plain ``get``
   under one name (not a list, not a model of parameters) is read so directly and validated
   by FastAPI's own field validation, without working out again per request how to read it;
4. the endpoint is awaited and the response it returns is sent as it is.

Covered: ``async`` endpoints that return a ``Response`` (every platform route builds its own
response), and dependencies that are ``async`` functions, ``async`` generators or objects
with an ``async __call__`` whose only parameters are the request and dependencies of the
same kind. Anything else (a form body, a plain ``def``, ``Response`` or ``BackgroundTasks``
parameters, security scopes, a dependency used twice, streaming) keeps FastAPI's handler,
and so does a route while the app or router it was added through has dependency overrides.
FastAPI's native telemetry is off in the kit's apps (``app.NO_NATIVE_TELEMETRY``), so its
hooks are left out but for the validation-failure one, which FastAPI calls on the error
path.
"""

import email.message
import inspect
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pydantic_core
from fastapi import params
from fastapi._body_limit import get_body_limit_error
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_form_models,
    _get_param_aliases,
    _get_param_model,
    _should_embed_body_fields,
    _validate_value_with_model_field,
    get_typed_return_annotation,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.exceptions import FastAPIError, RequestValidationError
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute, _extract_endpoint_context
from fastapi.telemetry._api import _validation_failed
from pydantic_core import PydanticUndefined as Undefined
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BoundRoute", "bind_routes"]


@dataclass(frozen=True)
class _Dependency:
    """One dependency of the plan: what to call, with the request under which name, after
    which dependencies of its own."""

    name: str | None
    call: Callable[..., Any]
    generator: bool
    request_parameter: str | None
    needs: tuple["_Dependency", ...]


def _runs(call: Any) -> Any:
    """What runs when ``call`` is called: a function itself, an object's ``__call__``."""
    return call if inspect.isroutine(call) or inspect.isclass(call) else type(call).__call__


def _is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(_runs(call))


def _is_async_generator(call: Any) -> bool:
    return inspect.isasyncgenfunction(_runs(call))


def _asks_for_more_than_the_request(dependant: Dependant) -> bool:
    """A parameter FastAPI fills with something other than the request or a dependency."""
    return bool(dependant.http_connection_param_name or dependant.websocket_param_name
                or dependant.response_param_name or dependant.background_tasks_param_name
                or dependant.security_scopes_param_name)


def _takes_only_the_request(dependant: Dependant) -> bool:
    return not (dependant.path_params or dependant.query_params or dependant.header_params
                or dependant.cookie_params or dependant.body_params
                or _asks_for_more_than_the_request(dependant))


def _plan_dependency(dependant: Dependant, seen: set[int]) -> _Dependency | None:
    call = dependant.call
    if call is None or id(call) in seen or not _takes_only_the_request(dependant):
        return None
    seen.add(id(call))
    generator = _is_async_generator(call)
    if not generator and not _is_async(call):
        return None  # FastAPI runs a plain function in a worker thread
    if dependant.concurrency is not None or (generator and dependant.scope == "function"):
        return None
    needs = _plan_dependencies(dependant, seen)
    if needs is None:
        return None
    return _Dependency(dependant.name, call, generator, dependant.request_param_name, needs)


def _plan_dependencies(dependant: Dependant, seen: set[int]) -> tuple[_Dependency, ...] | None:
    """The plans of the dependant's dependencies, in order; None if one is not covered."""
    planned = [_plan_dependency(sub, seen) for sub in dependant.dependencies]
    if any(plan is None for plan in planned):
        return None
    return tuple(plan for plan in planned if plan is not None)


@dataclass(frozen=True)
class _Parameter:
    """A path, query, header or cookie parameter: where the request holds it, and the one
    key it is read by where FastAPI would find it with a plain ``get``."""

    field: ModelField
    source: str  # the request's attribute: path_params, query_params, headers, cookies
    key: str | None  # None: read by FastAPI's own ``request_params_to_args``
    loc: tuple[str, str]


def _plan_parameter(field: ModelField, source: str) -> _Parameter:
    # FastAPI reads a parameter with a plain get unless it is a model of parameters, a list
    # (read with getlist) or has several names it may come under.
    aliases = _get_param_aliases(field)
    plain = (_get_param_model(field) is None and len(aliases) == 1
             and not field_annotation_is_sequence(field.field_info.annotation))
    key = aliases[0][1] if plain else None
    location = field.field_info.in_.value  # type: ignore[attr-defined]
    return _Parameter(field, source, key, (location, key or ""))


def _returns_a_response(call: Callable[..., Any]) -> bool:
    returned = get_typed_return_annotation(call)
    return inspect.isclass(returned) and issubclass(returned, Response)


def _uses_a_generator(dependencies: tuple[_Dependency, ...]) -> bool:
    return any(d.generator or _uses_a_generator(d.needs) for d in dependencies)


#: Whether FastAPI parses a body of this content type as JSON; the answers of the few
#: content types clients send, kept (``email.message`` parsing costs microseconds).
_JSON_CONTENT_TYPES: dict[str, bool] = {}


def _is_json_content_type(value: str) -> bool:
    known = _JSON_CONTENT_TYPES.get(value)
    if known is None:
        message = email.message.Message()
        message["content-type"] = value
        subtype = message.get_content_subtype()
        known = message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json"))
        if len(_JSON_CONTENT_TYPES) < 64:
            _JSON_CONTENT_TYPES[value] = known
    return known


class BoundRoute:
    """The ASGI app of one route, bound by its plan; FastAPI's own handler (``fallback``)
    while the app or router the route was added through has dependency overrides."""

    def __init__(self, route: APIRoute, dependencies: tuple[_Dependency, ...],
                 fallback: ASGIApp) -> None:
        dependant = route.dependant
        assert dependant.call is not None
        self.route = route
        self._call = dependant.call
        self._dependencies = dependencies
        self._needs_exit_stack = _uses_a_generator(dependencies)
        self._fallback = fallback
        # Where FastAPI's handler looks for overrides: the app or router the route was added
        # through (the router, for routes a kit app takes over from its routers).
        self._overrides = route.dependency_overrides_provider
        self._parameters = [_plan_parameter(field, source) for fields, source in (
            (dependant.path_params, "path_params"), (dependant.query_params, "query_params"),
            (dependant.header_params, "headers"), (dependant.cookie_params, "cookies"))
            for field in fields]
        self._body_field = route.body_field
        self._body_params = dependant.body_params
        self._embed_body_fields = route._embed_body_fields
        #: The body is one model, not embedded (the usual JSON body): validated as
        #: ``request_body_to_args`` validates it, without working that out per request.
        body_params = self._body_params
        self._single_body = body_params[0] if (
            len(body_params) == 1 and not self._embed_body_fields
            and not _should_embed_body_fields(body_params)
            and not _get_form_models(body_params[0])) else None
        strict = route.strict_content_type
        self._strict_content_type = bool(getattr(strict, "value", strict))
        self._request_parameter = dependant.request_param_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if getattr(self._overrides, "dependency_overrides", None):
            await self._fallback(scope, receive, send)
            return
        request = Request(scope, receive, send)
        sending = False
        try:
            if not self._needs_exit_stack:
                response = await self._response(request, None)
                sending = True
                await response(scope, receive, send)
                return
            async with AsyncExitStack() as stack:
                response = await self._response(request, stack)
                sending = True
                await response(scope, receive, send)
            if not sending:
                # As FastAPI: a generator dependency swallowed the endpoint's exception.
                raise FastAPIError("Response not awaited: a dependency with yield swallowed "
                                   "the exception of the endpoint.")
        except Exception as exc:
            if sending:
                raise  # the response has begun: no exception handler may answer now
            # The app's exception handlers answer as they do for FastAPI's routes; Starlette's
            # wrapper is only built for a request that needs it.
            await wrap_app_handling_exceptions(_raising(exc), request)(scope, receive, send)

    async def _response(self, request: Request, stack: AsyncExitStack | None) -> Response:
        body = await self._body(request) if self._body_field is not None else Undefined
        values = await _solve_all(self._dependencies, request, stack)
        errors: list[Any] = []
        for parameter in self._parameters:
            received = getattr(request, parameter.source)
            if parameter.key is None:
                found, wrong = request_params_to_args([parameter.field], received)
                values.update(found)
                errors += wrong
                continue
            value = received.get(parameter.key)
            value, wrong = _validate_value_with_model_field(
                field=parameter.field, value=Undefined if value is None else value,
                values=values, loc=parameter.loc)
            if wrong:
                errors += wrong
            else:
                values[parameter.field.name] = value
        single = self._single_body
        if single is not None and not isinstance(body, FormData):
            value, wrong = _validate_value_with_model_field(
                field=single, value=body, values=values, loc=("body",))
            values[single.name] = value
            errors += wrong
        elif self._body_params:
            found, wrong = await request_body_to_args(
                body_fields=self._body_params, received_body=body,
                embed_body_fields=self._embed_body_fields)
            values.update(found)
            errors += wrong
        if self._request_parameter:
            values[self._request_parameter] = request
        if errors:
            raise self._invalid(request, errors, None if body is Undefined else body)
        response = await self._call(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{self.route.path} returned {type(response).__name__}, "
                            "not a Response")
        return response

    async def _body(self, request: Request) -> Any:
        """The body as FastAPI's handler reads it: parsed JSON for a JSON content type (or
        none, where content types are not strict), the bytes otherwise, nothing if empty."""
        try:
            raw = await read_body(request)
            if not raw:
                return Undefined
            content_type = request.headers.get("content-type")
            if (not self._strict_content_type if not content_type
                    else _is_json_content_type(content_type)):
                return json_body(raw)
            return raw
        except json.JSONDecodeError as exc:
            raise self._invalid(request, [
                {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                 "input": {}, "ctx": {"error": exc.msg}}], exc.doc) from exc
        except HTTPException:
            raise
        except Exception as exc:
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (
                    limit := get_body_limit_error(exc)):
                raise limit from exc
            raise HTTPException(status_code=400,
                                detail="There was an error parsing the body") from exc

    def _invalid(self, request: Request, errors: list[Any], body: Any) -> RequestValidationError:
        """The validation error FastAPI raises, with its endpoint context, after telling
        FastAPI's telemetry hook as FastAPI does."""
        context: Any = dict(_extract_endpoint_context(self._call))
        mount_path = request.scope.get("root_path", "").rstrip("/")
        context["path"] = f"{request.method} {mount_path}{self.route.dependant.path}"
        error = RequestValidationError(errors, body=body, endpoint_ctx=context)
        _validation_failed(error)
        return error


async def read_body(request: Request) -> bytes:
    """``request.body()`` without Starlette's async generator (registering it with the loop
    and closing it cost a write a few microseconds): the same bytes and errors, kept where
    ``request.body()`` and ``request.json()`` find them."""
    if hasattr(request, "_body"):
        return await request.body()
    if request._stream_consumed:
        raise RuntimeError("Stream consumed")
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._stream_consumed = True
    body = b"".join(chunks)
    request._body = body  # where Request.body keeps it
    return body


def json_body(raw: bytes) -> Any:
    """A JSON body as Starlette's ``Request.json`` parses it (``json.loads``): by pydantic's
    parser, three times as fast, where that parser takes the body, since then the two agree;
    by ``json.loads`` itself where it does not (a lone surrogate, a byte order mark, UTF-16,
    malformed JSON), so the body parses, or fails with the error FastAPI reports, as before.
    """
    try:
        return pydantic_core.from_json(raw)
    except ValueError:
        return json.loads(raw)


def _raising(exc: Exception) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


async def _solve_all(dependencies: tuple[_Dependency, ...], request: Request,
                     stack: AsyncExitStack | None) -> dict[str, Any]:
    """Call each dependency in order; the values of those with a name, by name."""
    values: dict[str, Any] = {}
    for dependency in dependencies:
        solved = await _solve(dependency, request, stack)
        if dependency.name is not None:
            values[dependency.name] = solved
    return values


async def _solve(dependency: _Dependency, request: Request,
                 stack: AsyncExitStack | None) -> Any:
    values = await _solve_all(dependency.needs, request, stack) if dependency.needs else {}
    if dependency.request_parameter:
        values[dependency.request_parameter] = request
    if dependency.generator:
        assert stack is not None
        return await stack.enter_async_context(
            asynccontextmanager(dependency.call)(**values))
    result: Awaitable[Any] = dependency.call(**values)
    return await result


def bound(route: APIRoute, fallback: ASGIApp) -> BoundRoute | None:
    """The route's bound handler, ``fallback`` while dependency overrides are set; None
    where its plan would not cover everything the route asks for."""
    dependant = route.dependant
    call = dependant.call
    if (call is None or not inspect.iscoroutinefunction(call)
            or not _returns_a_response(call)
            or getattr(route, "is_json_stream", False)
            or _asks_for_more_than_the_request(dependant)
            or (route.body_field is not None
                and isinstance(route.body_field.field_info, params.Form))):
        return None
    dependencies = _plan_dependencies(dependant, set())
    if dependencies is None:
        return None
    return BoundRoute(route, dependencies, fallback)


def bind_routes(routes: list[BaseRoute]) -> int:
    """Serve each route the plan covers with its bound handler; how many were bound.

    FastAPI's own handler expects the exit stack FastAPI's app opens for every request (for
    uploaded files); the kit's apps open none (``app.kit_middleware_stack``), so a route
    that keeps FastAPI's handler, and a bound route's fallback, open their own."""
    count = 0
    for route in routes:
        if not isinstance(route, APIRoute) or isinstance(
                route.app, BoundRoute | AsyncExitStackMiddleware):
            continue
        handler = bound(route, AsyncExitStackMiddleware(route.app))
        if handler is None:
            route.app = AsyncExitStackMiddleware(route.app)
        else:
            route.app = handler
            count += 1
    return count
