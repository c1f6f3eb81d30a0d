"""The public GraphQL SDL generated from the model (DESIGN §2).

The text is what clients see and what the server is built from, so it is derived from
the model alone (never from the user's text), in a fixed order: a schema change shows
up as a readable diff. Directives and the user's Query fields are not part of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from graphql import (
    BooleanValueNode,
    ConstListValueNode,
    ConstObjectFieldNode,
    ConstObjectValueNode,
    ConstValueNode,
    EnumValueNode,
    FloatValueNode,
    IntValueNode,
    NameNode,
    NullValueNode,
    StringValueNode,
    print_ast,
)

from chalicelib.schema import naming
from chalicelib.schema.model import Argument, Entity, Field, SchemaModel, TypeKind

LIST_ARGUMENTS = (
    f"limit: Int = {naming.DEFAULT_LIST_LIMIT}, nextToken: String, "
    f"order: {naming.SORT_ORDER} = DESC"
)
TASK_FIELDS = (
    f"taskStatus: {naming.TASK_STATUS}!",
    "startDate: AWSDateTime!",
    "finishDate: AWSDateTime",
    "errorMessage: String",
    # What the engine reported of the task's query, once it finished (beyond DESIGN §2).
    f"statistics: {naming.TASK_STATISTICS}",
)
STATISTICS_FIELDS = (
    # Bytes can pass GraphQL's 32-bit Int: a Float holds them exactly up to 2^53.
    "dataScannedBytes: Float",
    "engineMillis: Int",
    "queueMillis: Int",
    "resultReused: Boolean!",
)
# A query task's rows can be read in pages (beyond DESIGN §2): all rows when not given.
TASK_RESULT_PAGING = "limit: Int, nextToken: String"
# A pushed result is its first page: one WebSocket message is at most 128 KB.
PUSHED_RESULT_ROWS = 100


def public_sdl(model: SchemaModel) -> str:
    tasks = bool(model.query_tasks or model.delete_mutations)
    blocks = [f"scalar {name}" for name in model.scalars]
    blocks += [_block("enum", name, values) for name, values in model.enums.items()]
    blocks.append(_block("enum", naming.SORT_ORDER, ("ASC", "DESC")))
    if tasks:
        blocks.append(_block("enum", naming.TASK_STATUS, ("RUNNING", "SUCCEEDED", "FAILED")))
    for entity in model.entities:
        blocks += _entity_types(entity)
    blocks.append(_block("type", naming.DELETE_RESULT, ("id: ID!", "deleted: Boolean!")))
    if tasks:
        blocks.append(_block("type", naming.TASK_TRIGGER_RESULT, ("taskId: ID!",)))
        blocks.append(_block("type", naming.TASK_STATISTICS, STATISTICS_FIELDS))
    blocks += [_block("type", t.name, _fields(t.fields)) for t in model.task_responses]
    for task in model.query_tasks:
        item = task.result.name + ("!" if task.result.is_list else "")
        result = f"result: [{item}]" if task.result.is_list else f"result: {item}"
        fields = (TASK_FIELDS[0], result, *TASK_FIELDS[1:], "nextToken: String")
        blocks.append(_block("type", naming.task_result_type(task.name), fields))
    if model.delete_mutations:
        # deletedCount (beyond DESIGN §2): how many join rows the task removed.
        deletion_fields = (*TASK_FIELDS, "deletedCount: Int")
        blocks.append(_block("type", naming.DELETION_TASK_RESULT, deletion_fields))
    blocks.append(_block("type", "Query", _query_fields(model)))
    blocks.append(_block("type", "Mutation", _mutation_fields(model)))
    blocks.append(_block("type", "Subscription", _subscription_fields(model)))
    return "\n\n".join(blocks) + "\n"


def _entity_types(entity: Entity) -> list[str]:
    name = entity.name
    optional = _optional(entity.input_fields)
    connection = (f"items: [{name}!]!", "nextToken: String")
    return [
        _block("type", name, _fields(entity.fields)),
        _block("input", naming.create_input(name), _fields(entity.input_fields)),
        _block("input", naming.update_input(name), _fields(optional)),
        _block("type", naming.connection_type(name), connection),
    ]


def _query_fields(model: SchemaModel) -> list[str]:
    lines = []
    for entity in model.entities:
        name = entity.name
        lines.append(f"{naming.read_field(name)}(id: ID!): {name}")
        lines.append(
            f"{naming.list_field(name)}({LIST_ARGUMENTS}): {naming.connection_type(name)}!"
        )
    for task in model.query_tasks:
        result = naming.task_result_type(task.name)
        field = naming.task_result_field(task.name)
        lines.append(f"{field}(taskId: ID!, {TASK_RESULT_PAGING}): {result}!")
    for delete in model.delete_mutations:
        result = naming.DELETION_TASK_RESULT
        lines.append(f"{naming.task_result_field(delete.name)}(taskId: ID!): {result}!")
    return lines


def _mutation_fields(model: SchemaModel) -> list[str]:
    lines = []
    for entity in model.entities:
        name = entity.name
        lines += [
            f"{naming.create_field(name)}(input: {naming.create_input(name)}!): {name}!",
            f"{naming.update_field(name)}(id: ID!, input: {naming.update_input(name)}!): {name}!",
            f"{naming.delete_field(name)}(id: ID!): {naming.DELETE_RESULT}!",
        ]
    trigger = f"{naming.TASK_TRIGGER_RESULT}!"
    for task in model.query_tasks:
        lines.append(
            f"{naming.trigger_task_field(task.name)}{_arguments(task.arguments)}: {trigger}"
        )
    for insert in model.insert_mutations:
        lines.append(f"{insert.name}{_arguments(insert.arguments)}: Boolean!")
    for delete in model.delete_mutations:
        field = naming.trigger_task_field(delete.name)
        lines.append(f"{field}{_arguments(delete.arguments)}: {trigger}")
    return lines


def _filter_fields(entity: Entity) -> tuple[Field, ...]:
    """The fields an entity subscription may filter on: one value each (no lists)."""
    return tuple(f for f in entity.fields if not f.type.is_list)


def _subscription_fields(model: SchemaModel) -> list[str]:
    """Pushed over WebSocket (docs/subscriptions.md): an entity's changes, filtered by
    equality on its single-valued fields, and a task's states until it has finished."""
    lines = []
    for entity in model.entities:
        name = entity.name
        filters = f"({', '.join(_fields(_optional(_filter_fields(entity))))})"
        lines += [
            f"{naming.on_create_field(name)}{filters}: {name}",
            f"{naming.on_update_field(name)}{filters}: {name}",
            f"{naming.on_delete_field(name)}{filters}: {name}",
        ]
    for task in model.query_tasks:
        result = naming.task_result_type(task.name)
        field = naming.on_task_result_field(task.name)
        lines.append(f"{field}(taskId: ID!, limit: Int = {PUSHED_RESULT_ROWS}): {result}!")
    for delete in model.delete_mutations:
        result = naming.DELETION_TASK_RESULT
        lines.append(f"{naming.on_task_result_field(delete.name)}(taskId: ID!): {result}!")
    return lines


def _optional(fields: Iterable[Field]) -> list[Field]:
    return [replace(f, type=replace(f.type, non_null=False)) for f in fields]


def _block(keyword: str, name: str, lines: Iterable[str]) -> str:
    body = "".join(f"  {line}\n" for line in lines)
    return f"{keyword} {name} {{\n{body}}}"


def _fields(fields: Iterable[Field]) -> list[str]:
    return [f"{field.name}: {field.type.sdl()}" for field in fields]


def _arguments(arguments: tuple[Argument, ...]) -> str:
    if not arguments:
        return ""
    printed = []
    for argument in arguments:
        text = f"{argument.name}: {argument.type.sdl()}"
        if argument.has_default:
            enum = argument.type.kind is TypeKind.ENUM
            text += f" = {print_ast(_literal(argument.default, enum=enum))}"
        printed.append(text)
    return f"({', '.join(printed)})"


def _literal(value: Any, *, enum: bool) -> ConstValueNode:
    """A default value back as a GraphQL literal, so the printer does the escaping."""
    if value is None:
        return NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, list):
        return ConstListValueNode(values=tuple(_literal(v, enum=enum) for v in value))
    if isinstance(value, dict):
        fields = tuple(
            ConstObjectFieldNode(name=NameNode(value=k), value=_literal(v, enum=False))
            for k, v in value.items()
        )
        return ConstObjectValueNode(fields=fields)
    return EnumValueNode(value=str(value)) if enum else StringValueNode(value=str(value))
