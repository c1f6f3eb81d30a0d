"""Entities and ``@task_response`` types: what their fields may be, and their model.

Entity fields become DynamoDB attributes, Parquet columns and Glue columns, and task
rows come back from Athena as text to convert; both only work for scalars, enums and
flat lists of them. Glue and Athena compare column names case-insensitively, which is
why several checks here compare lower-cased names.
"""

from __future__ import annotations

from graphql import (
    DirectiveNode,
    FieldDefinitionNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLType,
    Node,
    coerce_input_literal,
)

from chalicelib import keys
from chalicelib.schema.model import (
    AWS_SCALARS,
    BUILTIN_SCALARS,
    CREATED_AT_FIELD,
    ID_FIELD,
    UPDATED_AT_FIELD,
    Argument,
    Entity,
    Field,
    TaskResponse,
    TypeKind,
    TypeRef,
)
from chalicelib.schema.report import Report

SQL_QUERY = "sql_query"
TASK_RESPONSE = "task_response"

ID_TYPE = TypeRef("ID", TypeKind.SCALAR, non_null=True)
TIMESTAMP_TYPE = TypeRef("AWSDateTime", TypeKind.SCALAR, non_null=True)
# Lower-cased names an entity field cannot take, and why.
RESERVED_FIELDS = {
    keys.PK.lower(): "a DynamoDB key attribute",
    keys.SK.lower(): "a DynamoDB key attribute",
    keys.ENTITY_TYPE.lower(): "an attribute the store writes on every item",
    keys.EXPIRES_AT.lower(): "the table's TTL attribute",
    **dict.fromkeys(keys.PARTITION_KEYS, "a partition column of the lake's tables"),
}


def type_ref(type_: GraphQLType) -> TypeRef | None:
    """The model's view of a type; None for nested lists and abstract or input types."""
    non_null = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    is_list = isinstance(inner, GraphQLList)
    item_non_null = False
    if isinstance(inner, GraphQLList):
        item_non_null = isinstance(inner.of_type, GraphQLNonNull)
        inner = (
            inner.of_type.of_type if isinstance(inner.of_type, GraphQLNonNull) else inner.of_type
        )
    if isinstance(inner, GraphQLScalarType):
        kind = TypeKind.SCALAR
    elif isinstance(inner, GraphQLEnumType):
        kind = TypeKind.ENUM
    elif isinstance(inner, GraphQLObjectType):
        kind = TypeKind.OBJECT
    else:
        return None  # a nested list, or an abstract or input type
    return TypeRef(inner.name, kind, non_null, is_list, item_non_null)


def is_column_type(ref: TypeRef | None) -> bool:
    """A type a stored or returned column can have: scalar or enum, or a flat list of them."""
    if ref is None:
        return False
    return ref.kind is TypeKind.ENUM or ref.name in BUILTIN_SCALARS + AWS_SCALARS


def is_value_type(ref: TypeRef | None) -> bool:
    """A type an argument can have: one scalar or enum value, rendered as one SQL literal."""
    return is_column_type(ref) and ref is not None and not ref.is_list


def directive(node: Node | None, name: str) -> DirectiveNode | None:
    directives = getattr(node, "directives", None) or ()
    return next((d for d in directives if d.name.value == name), None)


def field_node(field: GraphQLField) -> FieldDefinitionNode:
    """The field's definition: always there, the schema is built from SDL."""
    assert field.ast_node is not None
    return field.ast_node


def argument(name: str, arg: GraphQLArgument, subject: str, report: Report) -> Argument:
    """An argument of a task or mutation; ``default`` is the coerced Python value."""
    ref = type_ref(arg.type)
    if not is_value_type(ref):
        message = (
            f"argument {name}: {arg.type} is not a scalar or an enum (it becomes one SQL literal)"
        )
        report.add(arg.ast_node.type if arg.ast_node else None, subject, "argument-type", message)
    ref = ref or TypeRef(str(arg.type), TypeKind.SCALAR)
    literal = arg.default.literal if arg.default is not None else None
    if literal is None:
        return Argument(name, ref)
    return Argument(name, ref, has_default=True, default=coerce_input_literal(literal, arg.type))


def entity(obj: GraphQLObjectType, report: Report) -> Entity:
    fields = _fields(obj, report, entity=True)
    if ID_FIELD not in obj.fields:
        report.add(
            obj.ast_node.name if obj.ast_node else None,
            obj.name,
            "entity-id",
            f"entity {obj.name} needs a field id: ID! (its key)",
        )
    for managed in (CREATED_AT_FIELD, UPDATED_AT_FIELD):
        if managed not in obj.fields:
            fields.append(Field(managed, TIMESTAMP_TYPE))
    return Entity(obj.name, tuple(fields))


def task_response(obj: GraphQLObjectType, report: Report) -> TaskResponse:
    return TaskResponse(obj.name, tuple(_fields(obj, report, entity=False)))


def _fields(obj: GraphQLObjectType, report: Report, *, entity: bool) -> list[Field]:
    fields: list[Field] = []
    seen: dict[str, str] = {}
    what = "entity" if entity else "@task_response type"
    for name, field in obj.fields.items():
        node, subject = field_node(field), f"{obj.name}.{name}"
        ref = type_ref(field.type)
        if node.arguments:
            message = f"fields of a{'n' if entity else ''} {what} take no arguments"
            report.add(node.arguments[0], subject, "field-arguments", message)
        if sql := directive(node, SQL_QUERY):
            message = "@sql_query belongs on fields of Query and Mutation only"
            report.add(sql, subject, "directive-placement", message)
        if name.lower() in seen:
            message = (
                f"{name} and {seen[name.lower()]} differ only in case; "
                "Athena and Glue column names are case-insensitive"
            )
            report.add(node.name, subject, "field-name-collision", message)
        seen.setdefault(name.lower(), name)
        if entity:
            _check_entity_field(name, node, ref, str(field.type), subject, report)
        elif not is_column_type(ref):
            message = (
                f"{field.type} is not a result column type: use scalars, enums "
                "or lists of them (a task returns rows of columns)"
            )
            report.add(node.type, subject, "task-response-field-type", message)
        if ref is not None:
            fields.append(Field(name, ref))
    return fields


def _check_entity_field(
    name: str,
    node: FieldDefinitionNode,
    ref: TypeRef | None,
    type_text: str,
    subject: str,
    report: Report,
) -> None:
    if name.lower() in RESERVED_FIELDS:
        reason = RESERVED_FIELDS[name.lower()]
        report.add(node.name, subject, "reserved-field-name", f"{name} is reserved: {reason}")
    elif name == ID_FIELD and ref != ID_TYPE:
        report.add(node.type, subject, "entity-id", "id must be declared as id: ID!")
    elif name in (CREATED_AT_FIELD, UPDATED_AT_FIELD) and ref != TIMESTAMP_TYPE:
        message = f"{name} is managed by the store and must be AWSDateTime! (or left out)"
        report.add(node.type, subject, "managed-field-type", message)
    elif not is_column_type(ref):
        message = (
            f"{type_text} cannot be stored: entity fields are "
            "ID, String, Int, Float, Boolean, AWS scalars, enums or flat lists of them"
        )
        report.add(node.type, subject, "entity-field-type", message)
