"""A cap on the SQL tasks one request may start, on every stage.

Each ``triggerTask…`` mutation starts an Athena query that may scan up to the
workgroup's cutoff, and aliases let a small request select the same trigger hundreds of
times: the cost limit of a protected stage (one per field) lets 500 of them through. So
an operation selecting more query-task triggers than ``max_tasks``, or more deletion-task
triggers than ``max_deletions``, is refused before anything runs, on every stage alike:
what the deployed API refuses, the local one refuses too.

Counted are the operation's top-level fields (alias or name: GraphQL resolves each
response key once) that trigger a task, through fragments and inline fragments; a field
under ``@skip`` or ``@include`` counts as if it ran. A document's operations are counted
each on its own, since a request runs one of them. The outcome depends on the document
alone, so :class:`~chalicelib.graphql.documents.DocumentCache` keeps it per document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)

from chalicelib.schema import naming
from chalicelib.schema.model import SchemaModel


@dataclass(frozen=True)
class TriggerFields:
    """The ``Mutation`` fields that start a task: of ``@sql_query`` queries, and of
    DELETE mutations (deletion tasks)."""

    tasks: frozenset[str]
    deletions: frozenset[str]

    @classmethod
    def of(cls, model: SchemaModel) -> TriggerFields:
        return cls(
            tasks=frozenset(naming.trigger_task_field(task.name) for task in model.query_tasks),
            deletions=frozenset(
                naming.trigger_task_field(delete.name) for delete in model.delete_mutations
            ),
        )


def _allowed(limit: int) -> str:
    return f"at most {limit} {'is' if limit == 1 else 'are'} allowed per request"


def trigger_limit(
    model: SchemaModel, *, max_tasks: int, max_deletions: int
) -> type[ASTValidationRule]:
    """A rule refusing an operation that triggers more than ``max_tasks`` query tasks or
    more than ``max_deletions`` deletion tasks."""
    triggers = TriggerFields.of(model)

    class TaskTriggerLimit(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            if node.operation is not OperationType.MUTATION:
                return  # triggers are Mutation fields
            tasks: set[str] = set()
            deletions: set[str] = set()
            self._collect(node.selection_set, tasks, deletions, set())
            name = f"operation {node.name.value}" if node.name else "this operation"
            if len(tasks) > max_tasks:
                self.report_error(
                    GraphQLError(f"{name} triggers {len(tasks)} tasks; {_allowed(max_tasks)}", node)
                )
            if len(deletions) > max_deletions:
                self.report_error(
                    GraphQLError(
                        f"{name} triggers {len(deletions)} deletion tasks; "
                        f"{_allowed(max_deletions)}",
                        node,
                    )
                )

        def _collect(
            self,
            selections: SelectionSetNode | None,
            tasks: set[str],
            deletions: set[str],
            spread: set[str],
        ) -> None:
            """The response keys of trigger fields among the operation's top-level
            fields; a fragment adds the same keys wherever it is spread, so it is read
            once (which also stops at cycles, that another rule reports)."""
            for selection in selections.selections if selections else ():
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    if selection.name.value in triggers.tasks:
                        tasks.add(key)
                    elif selection.name.value in triggers.deletions:
                        deletions.add(key)
                elif isinstance(selection, InlineFragmentNode):
                    self._collect(selection.selection_set, tasks, deletions, spread)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if fragment is None or name in spread:
                        continue  # unknown (another rule reports it) or already counted
                    spread.add(name)
                    self._collect(fragment.selection_set, tasks, deletions, spread)

    return TaskTriggerLimit
