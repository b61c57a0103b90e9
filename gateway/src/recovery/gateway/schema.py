"""Assembles the schema, with the limits and posture the configuration asks for."""

import re
from collections.abc import Callable

import strawberry
import structlog
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from recovery.gateway.cost import CostGuard, OperationCost
from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.mutation import Mutation
from recovery.gateway.query import Query
from recovery.gateway.settings import GatewaySettings
from recovery.gateway.subscription import Subscription
from recovery.gateway.trusted_documents import TrustedDocuments, TrustedDocumentsCheck

log = structlog.get_logger(__name__)

#: Documents kept parsed and validated; front-ends send a handful of distinct operations.
CACHE_SIZE = 512
MASKED_MESSAGE = "Something went wrong on our side; it has been logged."
#: graphql-core's hint, always " Did you mean 'a', 'b', or 'c'?" over the schema's names.
SUGGESTION = re.compile(r" Did you mean [^?]*\?")


def _shown(error: GraphQLError) -> bool:
    """Typed gateway errors and the caller's own mistakes are shown; anything else is ours
    and masked. A value that cannot be read as its type (a variable, an argument) fails
    outside any field, with the parsing error as its cause: the caller's to fix."""
    original = error.original_error
    if original is None or isinstance(original, GatewayError):
        return True
    return error.path is None and isinstance(original, GraphQLError | ValueError | TypeError)


def _code_of(error: GraphQLError) -> ErrorCode:
    """The code of an error that no resolver typed: the operation's (parsing, validation,
    limits) or the caller's values."""
    return ErrorCode.invalid_query if error.original_error is None else ErrorCode.invalid


class GatewaySchema(strawberry.Schema):
    """Gives every error shown its ``extensions.code`` and logs what went wrong on our side
    by type only (messages may carry clinical text); typed errors for the caller are not
    ours to log. Outside development no message hints at the schema's names."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            # Strawberry's disable_field_suggestions takes the hint out of unknown fields'
            # errors only, and it does not pass graphql-core's hide_suggestions on: the
            # hints for arguments, types, enum values and input fields go here.
            if self.config.disable_field_suggestions and \
                    not isinstance(error.original_error, GatewayError):
                error.message = SUGGESTION.sub("", error.message)
            if not _shown(error):
                log.error("graphql_internal_error",
                          error_type=type(error.original_error).__name__,
                          path=".".join(str(p) for p in error.path or ()))
            elif "code" not in (error.extensions or {}):
                error.extensions = {**(error.extensions or {}), "code": _code_of(error).value}


class MaskInternalErrors(MaskErrors):
    """Masks our own failures with one message and the code ``INTERNAL``."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": ErrorCode.internal.value}
        return masked


def build_schema(settings: GatewaySettings | None = None,
                 documents: TrustedDocuments | None = None) -> strawberry.Schema:
    settings = settings or GatewaySettings()
    # The limiters' validation rules are built once: the validation cache is keyed by the
    # rule classes, and a limiter builds new ones each time it is made.
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if not settings.introspection_on:
        rules.append(NoSchemaIntrospectionCustomRule)
    max_tokens = settings.max_tokens
    cost = CostGuard(settings)
    # Factories: a fresh extension per request; the caches live at module level, shared.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: MaskInternalErrors(should_mask_error=lambda error: not _shown(error),
                                   error_message=MASKED_MESSAGE),
        lambda: OperationCost(cost),
    ]
    if documents is not None and documents.in_use:
        trusted = documents
        # Last, so that its verdict stands over the validation cache's.
        extensions.append(lambda: TrustedDocumentsCheck(trusted))
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not settings.development),
    )
    cost.price_against(schema.as_str())
    return schema
