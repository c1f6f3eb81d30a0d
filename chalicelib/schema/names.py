"""Names the generated API and the lake would use twice (DESIGN §2, §4).

Each user name produces several public ones (``User`` gives ``UserConnection``,
``readUser``, the table ``user``...). Two origins of one name would make one of them
unreachable, or two entities share a DynamoDB prefix and a lake folder, so every
collision is reported where its later origin is written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from graphql import Node

from chalicelib import keys
from chalicelib.schema import naming
from chalicelib.schema.operations import Operations
from chalicelib.schema.report import At, Report

# Types the API always declares, whatever the schema.
FIXED_TYPES = (
    (naming.DELETE_RESULT, "the result type of deleteT"),
    (naming.SORT_ORDER, "the order enum of listT"),
    (naming.TASK_STATUS, "the task status enum"),
    (naming.TASK_TRIGGER_RESULT, "the result type of triggerTask fields"),
    (naming.DELETION_TASK_RESULT, "the result type of deletion tasks"),
    (naming.TASK_STATISTICS, "the statistics type of task results"),
)


@dataclass(frozen=True)
class Origin:
    name: str
    what: str
    subject: str
    at: At  # None for the API's fixed names


def check_names(
    entities: Sequence[tuple[str, Node]],
    enums: Sequence[tuple[str, Node]],
    task_responses: Sequence[tuple[str, Node]],
    operations: Operations,
    report: Report,
) -> None:
    types = [Origin(name, what, "", None) for name, what in FIXED_TYPES]
    query_fields: list[Origin] = []
    mutation_fields: list[Origin] = []
    tables = [
        Origin(prefix.lower(), f"the key prefix of the table's {prefix} items", "", None)
        for prefix in keys.INTERNAL_PREFIXES
    ]
    for name, node in entities:
        at = getattr(node, "name", node)
        types += [
            Origin(name, f"the entity {name}", name, at),
            Origin(naming.create_input(name), f"the create input of entity {name}", name, at),
            Origin(naming.update_input(name), f"the update input of entity {name}", name, at),
            Origin(naming.connection_type(name), f"the list result of entity {name}", name, at),
        ]
        what = f"generated for entity {name}"
        for read_or_list in (naming.read_field, naming.list_field):
            query_fields.append(Origin(read_or_list(name), what, name, at))
        for write in (naming.create_field, naming.update_field, naming.delete_field):
            mutation_fields.append(Origin(write(name), what, name, at))
        tables.append(Origin(name.lower(), f"the table of entity {name}", name, at))
    for kind, declared in (("enum", enums), ("@task_response type", task_responses)):
        types += [Origin(n, f"the {kind} {n}", n, getattr(d, "name", d)) for n, d in declared]
    for task in operations.query_tasks:
        field = operations.fields[f"Query.{task.name}"]
        at, what = field.node.name, f"generated for task {field.subject}"
        types.append(Origin(naming.task_result_type(task.name), what, field.subject, at))
        query_fields.append(Origin(naming.task_result_field(task.name), what, field.subject, at))
        mutation_fields.append(
            Origin(naming.trigger_task_field(task.name), what, field.subject, at)
        )
    for delete in operations.delete_mutations:
        field = operations.fields[f"Mutation.{delete.name}"]
        at, what = field.node.name, f"generated for deletion task {field.subject}"
        query_fields.append(Origin(naming.task_result_field(delete.name), what, field.subject, at))
        mutation_fields.append(
            Origin(naming.trigger_task_field(delete.name), what, field.subject, at)
        )
    for insert in operations.insert_mutations:
        field = operations.fields[f"Mutation.{insert.name}"]
        what = f"the mutation {field.subject}"
        mutation_fields.append(Origin(insert.name, what, field.subject, field.node.name))
    for table, (field, offset) in operations.join_table_origins.items():
        at = report.source.string_offset(field.sql_node, offset)
        tables.append(Origin(table, f"the join table {table}", field.subject, at))
    _report("type", types, report)
    _report("Query field", query_fields, report)
    _report("Mutation field", mutation_fields, report)
    _report("table name (lower-cased)", tables, report)


def _report(kind: str, origins: Iterable[Origin], report: Report) -> None:
    by_name: dict[str, list[Origin]] = defaultdict(list)
    for origin in origins:
        by_name[origin.name].append(origin)
    for name, group in by_name.items():
        group.sort(key=lambda o: -1 if (offset := report.offset(o.at)) is None else offset)
        first = group[0]
        for later in group[1:]:
            message = f"{kind} {name} would be both {first.what} and {later.what}"
            report.add(later.at, later.subject, "name-collision", message)
