"""Read, validate and compile the user's ``schema.graphql`` (DESIGN §1).

Checks run in layers, each on what the previous one proved: graphql-core's grammar,
then the definitions we support plus graphql-core's own SDL and schema validation, then
our rules on types, fields and SQL. Problems of one layer are all reported together;
a layer that fails stops the load, since later rules would only echo its problems.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from graphql import (
    DefinitionNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    GraphQLEnumType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    Node,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    build_ast_schema,
    parse,
    print_ast,
    validate_schema,
)
from graphql.validation.validate import validate_sdl

from chalicelib.schema import auth, objects, operations
from chalicelib.schema.model import (
    AWS_SCALARS,
    AuthRules,
    DeleteMutation,
    Entity,
    InsertMutation,
    QueryTask,
    SchemaModel,
    TaskResponse,
    TypeRef,
)
from chalicelib.schema.names import check_names
from chalicelib.schema.report import Report
from chalicelib.schema.source import UserSource

# What the loader declares when the file does not (AppSync schemas declare the scalars).
DIRECTIVES = {
    objects.SQL_QUERY: "directive @sql_query(query: String!) on FIELD_DEFINITION",
    objects.TASK_RESPONSE: "directive @task_response on OBJECT",
    auth.AUTH: auth.DECLARATION,
}
ROOTS = {"query": "Query", "mutation": "Mutation"}
# A schema without Query fields is fine for us, not for graphql-core: this stands in.
STAND_IN_QUERY = "type Query { noTasks: Boolean }"

_INTERFACES = "interfaces are not supported: entities are stored flat"
_UNIONS = "unions are not supported: entities are stored flat"
_INPUTS = "input types are not supported: the API's inputs are generated from the entities"
_UNSUPPORTED = {
    InterfaceTypeDefinitionNode: _INTERFACES,
    InterfaceTypeExtensionNode: _INTERFACES,
    UnionTypeDefinitionNode: _UNIONS,
    UnionTypeExtensionNode: _UNIONS,
    InputObjectTypeDefinitionNode: _INPUTS,
    InputObjectTypeExtensionNode: _INPUTS,
    ScalarTypeExtensionNode: "scalar extensions are not supported",
    SchemaExtensionNode: "schema extensions are not supported",
}


def load_schema(path: Path, *, check_sql: bool = True) -> SchemaModel:
    """Compile ``path``; raises :class:`SchemaError` listing every problem found.

    ``check_sql=False`` skips only the checks that parse SQL with sqlglot (syntax,
    statement kind of Query SQL, tables and columns), which is slow to import.
    """
    source = UserSource.read(path)
    report = Report(source)
    try:
        document = parse(source.patched)
    except GraphQLSyntaxError as error:
        report.add_graphql(error, "syntax", None)
    report.raise_if_any()
    _check_definitions(document, report)
    schema = _build(document, report)
    return _compile(path, document, schema, report, check_sql=check_sql)


def _check_definitions(document: DocumentNode, report: Report) -> None:
    for definition in document.definitions:
        name = _name(definition)
        if isinstance(definition, DirectiveDefinitionNode):
            _check_directive_declaration(definition, report)
        elif isinstance(definition, SchemaDefinitionNode):
            _check_schema_definition(definition, report)
        elif name in auth.TYPES:
            reserved = (
                f"{name} is the loader's: a type of @auth(rules: ...), declared with the "
                "directive; name your type differently"
            )
            report.add(_at(definition), name, "reserved-type-name", reserved)
        elif message := _UNSUPPORTED.get(type(definition)):
            report.add(_at(definition), name, "unsupported-definition", message)
        elif name == "Subscription":
            message = (
                "the Subscription type is generated (onCreateT, onUpdateT, onDeleteT, "
                "onTaskResult…: docs/subscriptions.md): do not declare it"
            )
            report.add(_at(definition), name, "subscription-unsupported", message)
        elif name in AWS_SCALARS and not isinstance(definition, ScalarTypeDefinitionNode):
            message = f"{name} is an AWS scalar: declare it as `scalar {name}` or not at all"
            report.add(_at(definition), name, "reserved-type-name", message)
        elif isinstance(definition, ScalarTypeDefinitionNode) and name not in AWS_SCALARS:
            message = (
                "custom scalars are not supported: use a built-in or AWS scalar "
                f"({', '.join(AWS_SCALARS)})"
            )
            report.add(_at(definition), name, "unsupported-definition", message)


def _check_directive_declaration(definition: DirectiveDefinitionNode, report: Report) -> None:
    name = definition.name.value
    subject = f"@{name}"
    if name not in DIRECTIVES:
        message = f"only @{', @'.join(DIRECTIVES)} are supported"
        report.add(definition.name, subject, "unsupported-definition", message)
        return
    expected = parse(DIRECTIVES[name]).definitions[0]
    assert isinstance(expected, DirectiveDefinitionNode)
    if _signature(definition) != _signature(expected):
        message = f"@{name} must be declared as: {DIRECTIVES[name]}"
        report.add(definition.name, subject, "directive-declaration", message)


def _signature(definition: DirectiveDefinitionNode) -> tuple[object, ...]:
    arguments = tuple(print_ast(a) for a in definition.arguments or ())
    locations = frozenset(location.value for location in definition.locations)
    return arguments, locations, definition.repeatable


def _check_schema_definition(definition: SchemaDefinitionNode, report: Report) -> None:
    for operation in definition.operation_types:
        kind, name = operation.operation.value, operation.type.name.value
        if kind == "subscription":
            message = (
                "the Subscription type is generated (onCreateT, onUpdateT, onDeleteT, "
                "onTaskResult…: docs/subscriptions.md): do not declare it"
            )
            report.add(operation, "schema", "subscription-unsupported", message)
        elif ROOTS[kind] != name:
            message = f"the {kind} type must be named {ROOTS[kind]}"
            report.add(operation.type, "schema", "root-type-name", message)


def _build(document: DocumentNode, report: Report) -> GraphQLSchema:
    """graphql-core's schema over the user's definitions and the loader's declarations.

    Raises when graphql-core or the definition checks found problems.
    """
    if any(_name(d) in auth.TYPES for d in document.definitions):
        report.raise_if_any()  # reported as reserved: graphql-core would only echo it
    declared = {_name(d) for d in document.definitions if not isinstance(d, TypeExtensionNode)}
    prelude = [text for name, text in DIRECTIVES.items() if name not in declared]
    prelude += auth.TYPES.values()
    prelude += [f"scalar {name}" for name in AWS_SCALARS if name not in declared]
    if "Query" not in declared:
        prelude.append(STAND_IN_QUERY)
    definitions = parse("\n".join(prelude)).definitions if prelude else ()
    combined = DocumentNode(definitions=(*definitions, *document.definitions))
    for error in validate_sdl(combined):
        report.add_graphql(error, "graphql", document)
    report.raise_if_any()
    schema = build_ast_schema(combined, assume_valid_sdl=True)
    for error in validate_schema(schema):
        report.add_graphql(error, "graphql", document)
    report.raise_if_any()
    return schema


def _compile(
    path: Path,
    document: DocumentNode,
    schema: GraphQLSchema,
    report: Report,
    *,
    check_sql: bool,
) -> SchemaModel:
    first_nodes: dict[str, DefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, TypeDefinitionNode | TypeExtensionNode):
            first_nodes.setdefault(_name(definition), definition)
    entities, task_responses, enums = [], [], {}
    entity_nodes, response_nodes, enum_nodes = [], [], []
    for name, node in first_nodes.items():
        named = schema.type_map[name]
        if isinstance(named, GraphQLEnumType):
            enums[name] = tuple(named.values)
            enum_nodes.append((name, node))
        elif not isinstance(named, GraphQLObjectType):
            continue
        elif name in ROOTS.values():
            _check_root(named, report)
        elif _task_response_directive(named) is not None:
            task_responses.append(_task_response(named, report))
            response_nodes.append((name, node))
        else:
            entities.append(_entity(named, schema, report))
            entity_nodes.append((name, node))
    if not entities:
        message = "the schema declares no entity (an object type other than Query and Mutation)"
        report.add(None, "", "no-entities", message)
    built = operations.build(
        _object(schema, "Query"),
        _object(schema, "Mutation"),
        {e.name: e for e in entities},
        {t.name: t for t in task_responses},
        report,
        check_sql=check_sql,
    )
    check_names(entity_nodes, enum_nodes, response_nodes, built, report)
    built = _with_field_rules(built, schema, report)
    report.raise_if_any()
    auth.check_owner_reads(built, entities, report)
    with_arguments: list[QueryTask | InsertMutation | DeleteMutation] = [
        *built.query_tasks,
        *built.insert_mutations,
        *built.delete_mutations,
    ]
    used = _used_scalars(
        [f.type for e in entities for f in e.fields]
        + [f.type for t in task_responses for f in t.fields]
        + [a.type for operation in with_arguments for a in operation.arguments]
    )
    return SchemaModel(
        source=path,
        entities=tuple(entities),
        enums=enums,
        scalars=used,
        task_responses=tuple(task_responses),
        query_tasks=built.query_tasks,
        insert_mutations=built.insert_mutations,
        delete_mutations=built.delete_mutations,
        join_tables=built.join_tables,
        warnings=tuple(report.warnings),
    )


def _check_root(obj: GraphQLObjectType, report: Report) -> None:
    """Query and Mutation are no entities: directives of types do not belong on them."""
    if (task_response := _task_response_directive(obj)) is not None:
        message = "@task_response belongs on result types, not on Query or Mutation"
        report.add(task_response, obj.name, "directive-placement", message)
    auth.check_misplaced(
        obj, report, "belongs on the fields of Query and Mutation, not on the type"
    )


def _task_response(obj: GraphQLObjectType, report: Report) -> TaskResponse:
    """A task's rows are whatever its SQL returns: rules on them would filter nothing."""
    why = "does not apply to a @task_response type: put it on the task's Query field"
    auth.check_misplaced(obj, report, why)
    auth.check_misplaced_fields(obj, report, why)
    return objects.task_response(obj, report)


def _entity(obj: GraphQLObjectType, schema: GraphQLSchema, report: Report) -> Entity:
    entity = objects.entity(obj, report)
    return replace(entity, auth=auth.entity_rules(obj, entity, schema, report))


def _with_field_rules(
    built: operations.Operations, schema: GraphQLSchema, report: Report
) -> operations.Operations:
    """The operations with the ``@auth`` rules of their Query and Mutation fields."""

    def rules(root: str, name: str) -> AuthRules:
        obj = _object(schema, root)
        assert obj is not None  # the operation was built from one of its fields
        return auth.field_rules(obj.fields[name], f"{root}.{name}", schema, report)

    return replace(
        built,
        query_tasks=tuple(replace(t, auth=rules("Query", t.name)) for t in built.query_tasks),
        insert_mutations=tuple(
            replace(m, auth=rules("Mutation", m.name)) for m in built.insert_mutations
        ),
        delete_mutations=tuple(
            replace(m, auth=rules("Mutation", m.name)) for m in built.delete_mutations
        ),
    )


def _used_scalars(types: list[TypeRef]) -> tuple[str, ...]:
    """AWS scalars the public API uses; AWSDateTime always (createdAt, task dates)."""
    names = {t.name for t in types} | {"AWSDateTime"}
    return tuple(name for name in AWS_SCALARS if name in names)


def _object(schema: GraphQLSchema, name: str) -> GraphQLObjectType | None:
    named = schema.type_map.get(name)
    return named if isinstance(named, GraphQLObjectType) else None


def _task_response_directive(obj: GraphQLObjectType) -> DirectiveNode | None:
    nodes = (obj.ast_node, *obj.extension_ast_nodes)
    return next((d for n in nodes if (d := objects.directive(n, objects.TASK_RESPONSE))), None)


def _name(definition: DefinitionNode) -> str:
    name = getattr(definition, "name", None)
    return str(name.value) if name is not None else ""


def _at(definition: DefinitionNode) -> Node:
    """Where a definition is reported: its name, or the whole node if it has none."""
    name = getattr(definition, "name", None)
    return name if isinstance(name, Node) else definition
