"""Validation messages that say where in a literal value the problem is.

graphql-core 3.3 reports a bad value inside an input object written in the query
(``createUser(input: {name: null})``) with the type it expected but not the field, and
says ``None`` for GraphQL's ``null``: "Expected value of non-null type 'String!' not to
be None." Its own validation of that value knows the path to the field; this rule is
graphql-core's ``ValuesOfCorrectTypeRule`` passing that path on: "input.name: Expected
value of non-null type 'String!' not to be null."
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLInputType,
    ValueNode,
    ValuesOfCorrectTypeRule,
    VisitorAction,
)
from graphql.language import SKIP
from graphql.utilities.validate_input_value import validate_input_literal
from graphql.validation import ASTValidationRule


class ValuesOfCorrectTypeAtPath(ValuesOfCorrectTypeRule):
    """``ValuesOfCorrectTypeRule`` whose messages start with the argument and the
    path inside its value."""

    def is_valid_value_node(self, node: ValueNode, input_type: GraphQLInputType | None) -> Any:
        if input_type is not None:
            argument = self._argument_name()

            def on_error(error: GraphQLError, path: list[str | int]) -> None:
                self.report_error(
                    GraphQLError(
                        _where(argument, path) + _in_graphql_terms(error.message),
                        error.nodes,
                        original_error=error.original_error,
                    )
                )

            validate_input_literal(
                node, input_type, on_error, None, None, self.context.hide_suggestions
            )
        action: VisitorAction = SKIP
        return action

    def _argument_name(self) -> str | None:
        argument = self.context.get_argument()
        field = self.context.get_field_def()
        directive = self.context.get_directive()
        arguments = (
            directive.args if directive is not None else field.args if field is not None else {}
        )
        return next((name for name, value in arguments.items() if value is argument), None)


def with_values_at_path(
    rules: Iterable[type[ASTValidationRule]],
) -> tuple[type[ASTValidationRule], ...]:
    """``rules`` with graphql-core's value rule replaced by :class:`ValuesOfCorrectTypeAtPath`."""
    return tuple(
        ValuesOfCorrectTypeAtPath if rule is ValuesOfCorrectTypeRule else rule for rule in rules
    )


def _where(argument: str | None, path: list[str | int]) -> str:
    steps = [argument] if argument else []
    steps += [f"[{step}]" if isinstance(step, int) else step for step in path]
    return ".".join(steps).replace(".[", "[") + ": " if steps else ""


def _in_graphql_terms(message: str) -> str:
    return message.replace(" not to be None.", " not to be null.")
