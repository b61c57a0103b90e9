"""What an operation costs, worked out from its document before anything runs, and each
token's budget over time: an operation over the limit, or beyond what its caller has left,
is refused before any service is called."""

import math
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension

from recovery.gateway.errors import ErrorCode, GatewayError
from recovery.gateway.settings import GatewaySettings

#: A field that calls a service (or takes its share of one batched call).
CALL = 10
#: Each object in the answer, and each item a service is asked to read.
OBJECT = 1
#: A connection asked without `first` reads this many items (its default page).
DEFAULT_PAGE = 200
#: A list with no bound of its own (a plan's signatures, a team's four factors).
SHORT_LIST = 10
#: Nested fields that call a service; every field of the query, mutation and subscription
#: roots does too.
SERVICE_FIELDS = frozenset({
    "ServiceUser.goals", "ServiceUser.activeCrisisPlan", "ServiceUser.crisisPlans",
    "ServiceUser.riskAssessments", "Me.enrolments", "Me.teams", "Team.staff",
    "Team.skillMix", "Team.peerShare", "Team.trainingCoverage", "Team.readiness",
    "Course.runs",
})
#: Lists whose every item is read by a call of its own (a record refetched by its id).
CALL_PER_ITEM = frozenset({"Query.nodes"})
#: Counting a list past its first page may read it through from its service.
COUNTED_FIELDS = frozenset({"totalCount"})
#: Subjects whose budgets one replica keeps; the least recently seen are forgotten first.
BUDGETS_KEPT = 100_000


class OperationPrice:
    """The static cost of operations against one schema."""

    def __init__(self, sdl: str) -> None:
        self.schema: GraphQLSchema = build_schema(sdl)

    def of(self, operation: OperationDefinitionNode,
           fragments: Mapping[str, FragmentDefinitionNode], variables: VariableValues) -> int:
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        return _Walk(self.schema, fragments, variables).selections(root, operation.selection_set,
                                                                   page=None, at_root=True)


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: VariableValues

    def selections(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None,
                   *, page: int | None, at_root: bool = False) -> int:
        return sum(self.field(field_parent, node, page=page, at_root=at_root)
                   for field_parent, node in self.fields(parent, selection_set))

    def fields(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None
               ) -> Iterator[tuple[GraphQLNamedType, FieldNode]]:
        """Every field selected, through fragments and inline fragments (each alias apart)."""
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield parent, selection
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                yield from self.fields(on or parent, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    on = self.schema.get_type(fragment.type_condition.name.value)
                    yield from self.fields(on or parent, fragment.selection_set)

    def field(self, parent: GraphQLNamedType, node: FieldNode, *, page: int | None,
              at_root: bool) -> int:
        if not isinstance(parent, GraphQLObjectType) or node.name.value not in parent.fields:
            return 0  # __typename, or a member type's field on a union
        definition = parent.fields[node.name.value]
        name = f"{parent.name}.{node.name.value}"
        own = CALL if at_root or name in SERVICE_FIELDS \
            or node.name.value in COUNTED_FIELDS else 0
        arguments = get_argument_values(definition, node, self.variables) \
            if definition.args else {}
        inner_page = None
        if "first" in definition.args:
            first = arguments.get("first")
            inner_page = DEFAULT_PAGE if first is None else max(0, min(int(first), DEFAULT_PAGE))
            own += inner_page * OBJECT
        item = get_named_type(definition.type)
        if is_leaf_type(item):
            return own
        count = 1
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            ids = arguments.get("ids")
            count = len(ids) if isinstance(ids, list) else page if page is not None \
                else SHORT_LIST
            if name in CALL_PER_ITEM:
                own += (count - 1) * CALL
        return own + count * (OBJECT + self.selections(item, node.selection_set,
                                                       page=inner_page))


class TokenBudgets:
    """A token bucket per token subject, held in this replica's memory: it fills at a steady
    rate up to its capacity, and each operation takes its cost out of it."""

    def __init__(self, capacity: int, per_second: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._held: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def left(self, subject: str) -> float:
        level, since = self._held.get(subject, (self.capacity, time.monotonic()))
        return min(self.capacity, level + (time.monotonic() - since) * self.per_second)

    def take(self, subject: str, cost: int) -> float | None:
        """Take ``cost`` from the subject's budget; when it holds less, nothing is taken and
        the answer is how many seconds until it holds enough."""
        level = self.left(subject)
        if level < cost:
            return (cost - level) / self.per_second
        self._held[subject] = (level - cost, time.monotonic())
        self._held.move_to_end(subject)
        while len(self._held) > BUDGETS_KEPT:
            self._held.popitem(last=False)
        return None


class CostGuard:
    """The schema's price list and budgets, shared by every request's ``OperationCost``."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.limit = settings.cost_limit
        self.budgets = TokenBudgets(settings.cost_budget, settings.cost_budget_per_second)
        self.price: OperationPrice | None = None

    def price_against(self, sdl: str) -> None:
        self.price = OperationPrice(sdl)


class OperationCost(SchemaExtension):
    """Works out the operation's cost once it is valid, refuses it (``COST_LIMIT``,
    ``BUDGET_SPENT``) before it runs when it costs too much, and reports the cost in
    ``extensions.cost``. Subscriptions are bounded per connection instead."""

    def __init__(self, guard: CostGuard) -> None:
        self.guard = guard
        self.report: dict[str, Any] | None = None

    def on_execute(self) -> Iterator[None]:
        refusal = self._refusal()
        if refusal is not None:
            self.execution_context.result = GraphQLExecutionResult(data=None, errors=[refusal])
        yield

    def _refusal(self) -> GraphQLError | None:
        context = self.execution_context
        if self.guard.price is None or context.graphql_document is None:
            return None
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name)
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            return None
        variables = get_variable_values(self.guard.price.schema,
                                        operation.variable_definitions or (),
                                        context.variables or {})
        if isinstance(variables, list):
            return None  # execution answers the variables' own errors, running nothing
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, FragmentDefinitionNode)}
        cost = self.guard.price.of(operation, fragments, variables)
        self.report = {"requested": cost, "limit": self.guard.limit, "budget": None}
        if cost > self.guard.limit:
            return GatewayError(ErrorCode.cost_limit,
                                f"This operation would cost {cost}, over the limit of "
                                f"{self.guard.limit}: ask for fewer items or fields.",
                                detail={"cost": cost, "limit": self.guard.limit})
        principal = getattr(context.context, "principal_or_none", None)
        if principal is None:
            return None  # every field refuses an unsigned caller before calling a service
        budgets = self.guard.budgets
        wait = budgets.take(principal.sub, cost)
        self.report["budget"] = {"remaining": math.floor(budgets.left(principal.sub)),
                                 "capacity": budgets.capacity,
                                 "refillPerSecond": budgets.per_second}
        if wait is None:
            return None
        retry_after = math.ceil(wait)
        return GatewayError(ErrorCode.budget_spent,
                            f"Your budget of queries is spent for now; retry in "
                            f"{retry_after} s.",
                            detail={"cost": cost, "retryAfter": retry_after})

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.report} if self.report is not None else {}
