"""Limits of a protected API (deployed stages): no introspection, bounded depth and cost.

A public GraphQL endpoint answers whatever shape a client sends, so one request can
ask for a tree deep and wide enough to keep a function busy. On protected stages a
request is refused before execution when its selection nests deeper than
``MAX_DEPTH`` or its cost (ariadne's ``cost_validator``: one per field, and its
``limit``, 20 when not given, for a field that returns a page) exceeds ``MAX_COST``:
ten full pages of 100.
"""

from __future__ import annotations

from typing import Any

from ariadne.validation import cost_validator
from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)

from chalicelib.schema import naming
from chalicelib.schema.model import SchemaModel
from chalicelib.settings import PROTECTED_LIMITS

MAX_DEPTH = PROTECTED_LIMITS.max_depth
MAX_COST = PROTECTED_LIMITS.max_cost


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """A rule refusing operations whose fields nest deeper than ``max_depth``."""

    class DepthLimit(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            depth = self._depth(node.selection_set, frozenset())
            if depth > max_depth:
                name = node.name.value if node.name else "the operation"
                self.report_error(
                    GraphQLError(
                        f"{name} nests {depth} levels deep; at most {max_depth} are allowed",
                        node,
                    )
                )

        def _depth(self, selections: SelectionSetNode | None, seen: frozenset[str]) -> int:
            deepest = 0
            for selection in selections.selections if selections else ():
                if isinstance(selection, FieldNode):
                    depth = (
                        (1 + self._depth(selection.selection_set, seen))
                        if (selection.selection_set)
                        else 1
                    )
                elif isinstance(selection, InlineFragmentNode):
                    depth = self._depth(selection.selection_set, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if fragment is None or name in seen:
                        continue  # unknown or cyclic: other rules report those
                    depth = self._depth(fragment.selection_set, seen | {name})
                else:
                    continue
                deepest = max(deepest, depth)
            return deepest

    return DepthLimit


def cost_map(model: SchemaModel) -> dict[str, dict[str, Any]]:
    """Fields that return a page cost their selection times their ``limit``."""
    paged = [naming.list_field(entity.name) for entity in model.entities]
    paged += [naming.task_result_field(task.name) for task in model.query_tasks]
    return {"Query": {field: {"complexity": 1, "multipliers": ["limit"]} for field in paged}}


class ApiLimits:
    """The depth and cost limits of a stage, and whether it allows introspection (a
    protected stage does not); the cost map is built once. The local stage has limits
    too, generous ones, so that no one request holds the server for long."""

    def __init__(
        self,
        model: SchemaModel,
        *,
        max_depth: int = MAX_DEPTH,
        max_cost: int = MAX_COST,
        introspection: bool = False,
    ) -> None:
        self.introspection = introspection
        self.depth_rule = depth_limit(max_depth)
        self._cost_map = cost_map(model)
        self._max_cost = max_cost

    def rules(self, variables: dict[str, Any] | None) -> list[type[ASTValidationRule]]:
        """The rules for one request: the depth rule, which depends on the document
        alone, and a cost rule made for the request's variables (a page's cost is its
        ``limit``, often a variable)."""
        cost_rule = cost_validator(
            maximum_cost=self._max_cost,
            default_cost=1,
            variables=variables,
            cost_map=self._cost_map,
        )
        return [self.depth_rule, _cost_only(cost_rule)]


def _cost_only(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """Ariadne's cost rule reports an argument whose variable does not coerce as a
    validation error of its own (with the document's text in its message); variable
    coercion reports it after validation, naming the variable, so the rule keeps to cost."""

    class CostOnly(rule):  # type: ignore[misc,valid-type]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(_CostReports(context))

    return CostOnly


class _CostReports:
    """A validation context that passes on only the cost rule's own errors."""

    def __init__(self, context: ValidationContext) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        if error.original_error is None:
            self._context.report_error(error)
