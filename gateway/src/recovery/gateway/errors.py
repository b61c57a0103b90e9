"""Typed GraphQL errors: every failure a front-end sees carries ``extensions.code``."""

from enum import StrEnum
from typing import Any

from graphql import GraphQLError


class ErrorCode(StrEnum):
    unauthenticated = "UNAUTHENTICATED"
    forbidden = "FORBIDDEN"
    not_found = "NOT_FOUND"
    invalid = "INVALID"
    #: The operation itself cannot run: a syntax error, an unknown field, a limit exceeded.
    invalid_query = "INVALID_QUERY"
    #: Our fault; the message is masked and the error logged by type.
    internal = "INTERNAL"
    conflict = "CONFLICT"
    stale_version = "STALE_VERSION"
    version_required = "VERSION_REQUIRED"
    upstream_unavailable = "UPSTREAM_UNAVAILABLE"
    upstream_timeout = "UPSTREAM_TIMEOUT"
    upstream_error = "UPSTREAM_ERROR"
    #: The operation costs more than one operation may (see cost.py).
    cost_limit = "COST_LIMIT"
    #: The caller's budget over time is spent for now; ``retryAfter`` says for how long.
    budget_spent = "BUDGET_SPENT"
    #: No trusted document is registered under the hash the request names.
    persisted_query_not_found = "PERSISTED_QUERY_NOT_FOUND"
    #: Only registered documents run here, and the request sent text.
    trusted_document_required = "TRUSTED_DOCUMENT_REQUIRED"


#: What an upstream status means for the caller.
STATUS_CODES = {
    400: ErrorCode.invalid,
    401: ErrorCode.unauthenticated,
    403: ErrorCode.forbidden,
    404: ErrorCode.not_found,
    409: ErrorCode.conflict,
    412: ErrorCode.stale_version,
    422: ErrorCode.invalid,
    428: ErrorCode.version_required,
}


class GatewayError(GraphQLError):
    """A failure the caller may see as it is (never masked), with its code and service."""

    def __init__(self, code: ErrorCode, message: str, *, service: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
        extensions: dict[str, Any] = {"code": code.value}
        if service:
            extensions["service"] = service
        if detail:
            extensions.update(detail)
        super().__init__(message, extensions=extensions)
        self.code = code
        self.service = service


def unauthenticated() -> GatewayError:
    return GatewayError(ErrorCode.unauthenticated,
                        "Sign in: send a bearer token in the Authorization header.")


def forbidden(what: str) -> GatewayError:
    return GatewayError(ErrorCode.forbidden, f"You may not read {what}.")
