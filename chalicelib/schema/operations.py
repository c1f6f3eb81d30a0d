"""``Query`` and ``Mutation`` fields: SQL tasks and join-table mutations (DESIGN §1, §6).

Every such field carries its statement in ``@sql_query``. Placeholders and the two
mutation shapes are checked by plain Python; parsing the SQL itself needs sqlglot, which
is imported only when ``check_sql`` asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from graphql import FieldDefinitionNode, GraphQLObjectType, StringValueNode

from chalicelib import keys
from chalicelib.schema.model import (
    MAX_JOIN_COLUMNS,
    TRANSACTION_ITEM_LIMIT,
    Argument,
    DeleteMutation,
    Entity,
    InsertMutation,
    JoinColumn,
    JoinTable,
    QueryTask,
    TaskResponse,
    TypeKind,
    TypeRef,
)
from chalicelib.schema.naming import task_result_field, trigger_task_field
from chalicelib.schema.objects import (
    SQL_QUERY,
    argument,
    directive,
    field_node,
    is_column_type,
    type_ref,
)
from chalicelib.schema.report import Report
from chalicelib.sql.placeholders import (
    Context,
    Kind,
    Placeholder,
    PlaceholderSyntaxError,
    find_placeholders,
    in_unicode_literal,
)
from chalicelib.sql.statements import (
    DeleteStatement,
    InsertStatement,
    StatementSyntaxError,
    first_keyword,
    parse_delete,
    parse_insert,
)

JOIN_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Columns every join table has in the lake besides its typed ones (DESIGN §4).
JOIN_TABLE_COLUMNS = (
    keys.JOIN_ROW_RELATION_ID,
    keys.LAKE_S3_KEY,
    keys.CREATED_AT,
    *keys.PARTITION_KEYS,
)
# Names a typed column cannot take: those columns and the row item's own attributes.
RESERVED_COLUMNS = (
    *JOIN_TABLE_COLUMNS,
    keys.JOIN_ROW_TABLE_NAME,
    keys.ENTITY_TYPE,
    keys.PK,
    keys.SK,
)
INSERT_VALUE_TYPES = (
    TypeRef("ID", TypeKind.SCALAR, True),
    TypeRef("String", TypeKind.SCALAR, True),
)


@dataclass(frozen=True)
class SqlField:
    """A Query or Mutation field and its ``@sql_query`` statement."""

    subject: str
    name: str
    node: FieldDefinitionNode
    type: TypeRef | None
    arguments: tuple[Argument, ...]
    sql: str
    sql_node: StringValueNode
    placeholders: tuple[Placeholder, ...] | None = None  # None when malformed (reported)


@dataclass(frozen=True)
class TableRead:
    """A lake table an SQL statement reads: its name as written, at ``offset`` in the SQL."""

    table: str
    offset: int


@dataclass(frozen=True)
class Operations:
    query_tasks: tuple[QueryTask, ...]
    insert_mutations: tuple[InsertMutation, ...]
    delete_mutations: tuple[DeleteMutation, ...]
    join_tables: tuple[JoinTable, ...]
    fields: Mapping[str, SqlField]  # by subject, e.g. "Query.usersByCity"
    join_table_origins: Mapping[str, tuple[SqlField, int]]  # first INSERT and its offset
    # The lake tables each Query and DELETE statement reads (join tables excepted), by
    # subject; filled only when the SQL is checked, since sqlglot finds them.
    reads: Mapping[str, tuple[TableRead, ...]]


def build(
    query: GraphQLObjectType | None,
    mutation: GraphQLObjectType | None,
    entities: Mapping[str, Entity],
    task_responses: Mapping[str, TaskResponse],
    report: Report,
    *,
    check_sql: bool,
) -> Operations:
    """Check every SQL-carrying field. INSERTs go first: they declare the join tables
    that Query and DELETE statements may read."""
    queries = _sql_fields(query, "Query", report)
    mutations = _sql_fields(mutation, "Mutation", report)
    inserts: list[tuple[SqlField, InsertStatement]] = []
    deletes: list[tuple[SqlField, DeleteStatement]] = []
    for field in mutations:
        keyword = first_keyword(field.sql)
        if keyword == "INSERT":
            statement = _insert_statement(field, entities, report)
            if statement is not None:
                inserts.append((field, statement))
        elif keyword == "DELETE":
            delete = _delete_statement(field, report)
            if delete is not None:
                deletes.append((field, delete))
        else:
            message = (
                "a Mutation's @sql_query is INSERT INTO $join_table(...) or "
                f"DELETE alias FROM $join_table(...) alias, not {keyword or 'this'}"
            )
            _add_at_statement(field, report, message)
    join_tables, origins = _join_tables(inserts, report)
    declared = {table.name for table in join_tables}
    for field in (*queries, *(f for f, _ in deletes)):
        _check_join_table_placeholders(field, declared, report)
    tasks = [_query_task(field, entities, set(task_responses), report) for field in queries]
    reads: dict[str, tuple[TableRead, ...]] = {}
    if check_sql:
        tables = _table_columns(entities.values(), join_tables)
        checked = [*((f, "SELECT") for f in queries), *((f, "DELETE") for f, _ in deletes)]
        reads = _check_sql(checked, tables, task_responses, report)
    return Operations(
        query_tasks=tuple(t for t in tasks if t is not None),
        insert_mutations=tuple(_insert_mutation(f, s) for f, s in inserts),
        delete_mutations=tuple(
            DeleteMutation(f.name, f.arguments, d.table.name, f.sql) for f, d in deletes
        ),
        join_tables=tuple(join_tables),
        fields={f.subject: f for f in (*queries, *mutations)},
        join_table_origins=origins,
        reads=reads,
    )


def _sql_fields(obj: GraphQLObjectType | None, root: str, report: Report) -> list[SqlField]:
    fields = []
    for name, field in (obj.fields if obj else {}).items():
        node, subject = field_node(field), f"{root}.{name}"
        if report.offset(node) is None:
            continue  # the stand-in Query of a schema without one
        arguments = tuple(argument(n, a, subject, report) for n, a in field.args.items())
        sql = directive(node, SQL_QUERY)
        if sql is None:
            why = (
                "Query fields are SQL tasks"
                if root == "Query"
                else "the API's own mutations are generated; Mutation fields are "
                "join-table INSERTs and DELETEs"
            )
            message = f"{subject} needs @sql_query(query: ...): {why}"
            report.add(node.name, subject, f"{root.lower()}-needs-sql-query", message)
            continue
        value = next((a.value for a in sql.arguments or () if a.name.value == "query"), None)
        if not isinstance(value, StringValueNode):
            report.add(sql, subject, "directive-argument", "@sql_query(query:) takes a string")
            continue
        sql_field = SqlField(
            subject, name, node, type_ref(field.type), arguments, value.value, value
        )
        fields.append(_with_placeholders(sql_field, report))
    return fields


def _with_placeholders(field: SqlField, report: Report) -> SqlField:
    """The field with its checked placeholders, or as it is when they are malformed."""
    try:
        found = find_placeholders(field.sql)
    except PlaceholderSyntaxError as error:
        _add(field, report, error.offset, "placeholder-syntax", error.message)
        return field
    names = [a.name for a in field.arguments]
    for placeholder in found:
        if placeholder.context is Context.IDENTIFIER:
            message = (
                f"{placeholder.text} inside a quoted identifier: "
                "a value cannot name a table or column"
            )
            _add(field, report, placeholder.start, "placeholder-context", message)
        elif placeholder.kind is Kind.JOIN_TABLE and placeholder.context is Context.STRING:
            message = f"{placeholder.text} inside a string literal: it stands for a table name"
            _add(field, report, placeholder.start, "placeholder-context", message)
        elif in_unicode_literal(field.sql, placeholder):
            message = (
                f"{placeholder.text} inside a U&'...' literal, whose escapes would change "
                "the value: use a plain '...' literal"
            )
            _add(field, report, placeholder.start, "placeholder-context", message)
        elif placeholder.kind is Kind.ARGUMENT and placeholder.name not in names:
            message = (
                f"{placeholder.text} has no argument '{placeholder.name}' "
                f"(arguments: {', '.join(names) or 'none'})"
            )
            _add(field, report, placeholder.start, "unknown-argument", message)
    return replace(field, placeholders=found)


def _query_task(
    field: SqlField, entities: Mapping[str, Entity], task_responses: set[str], report: Report
) -> QueryTask | None:
    ref = field.type
    if ref is not None and ref.kind is TypeKind.OBJECT and ref.name in task_responses:
        return QueryTask(field.name, field.arguments, ref, field.sql)
    if ref is not None and is_column_type(ref):
        return QueryTask(field.name, field.arguments, ref, field.sql)
    if ref is not None and ref.name in entities:
        message = (
            f"{ref.name} is an entity; a task returns rows: declare a @task_response type "
            "with the columns the SELECT returns"
        )
    else:
        message = "a task returns a @task_response type, a scalar or an enum, or a flat list of one"
    report.add(field.node.type, field.subject, "query-return-type", message)
    return None


def _insert_statement(
    field: SqlField, entities: Mapping[str, Entity], report: Report
) -> InsertStatement | None:
    if field.placeholders is None:
        return None
    try:
        statement = parse_insert(field.sql)
    except StatementSyntaxError as error:
        _add(field, report, error.offset, "insert-syntax", error.message)
        return None
    if not _omitted_type(field, report) and field.type not in (
        TypeRef("Boolean", TypeKind.SCALAR),
        TypeRef("Boolean", TypeKind.SCALAR, non_null=True),
    ):
        message = "an INSERT mutation returns Boolean! (the return type may be left out)"
        report.add(field.node.type, field.subject, "mutation-return-type", message)
    table = statement.table
    if not JOIN_TABLE_NAME.fullmatch(table.name):
        message = f"join table name {table.name} must be lower case: letters, digits and _"
        _add(field, report, table.start, "join-table-name", message)
    seen: set[str] = set()
    for column in statement.columns:
        if column.entity not in entities:
            message = f"{column.entity} is not an entity (entities: {', '.join(entities)})"
            _add(field, report, column.entity_offset, "insert-column-type", message)
        if column.name.lower() in {c.lower() for c in RESERVED_COLUMNS}:
            message = (
                f"column {column.name} is reserved: join rows have {', '.join(RESERVED_COLUMNS)}"
            )
            _add(field, report, column.offset, "reserved-column-name", message)
        elif column.name.lower() in seen:
            message = f"column {column.name} is listed twice"
            _add(field, report, column.offset, "duplicate-column", message)
        seen.add(column.name.lower())
    if len(statement.columns) != len(statement.values):
        message = f"{len(statement.columns)} columns but {len(statement.values)} values"
        _add(field, report, statement.values_offset, "insert-value-count", message)
    arguments = {a.name: a for a in field.arguments}
    for value in statement.values:
        arg = arguments.get(value.name)
        if arg is not None and arg.type not in INSERT_VALUE_TYPES:
            message = (
                f"{value.text} fills an entity id column: "
                f"argument {value.name} must be ID! or String!"
            )
            _add(field, report, value.start, "insert-value-type", message)
    return statement


def _delete_statement(field: SqlField, report: Report) -> DeleteStatement | None:
    if field.placeholders is None:
        return None
    try:
        statement = parse_delete(field.sql)
    except StatementSyntaxError as error:
        _add(field, report, error.offset, "delete-syntax", error.message)
        return None
    if not _omitted_type(field, report):
        message = (
            "leave out the return type: a DELETE mutation becomes the deletion task "
            f"{trigger_task_field(field.name)} / {task_result_field(field.name)}"
        )
        report.add(field.node.type, field.subject, "mutation-return-type", message)
    if statement.target.lower() != statement.alias.lower():
        message = (
            f"DELETE {statement.target} must name the join table's alias {statement.alias}: "
            "only join table rows are deleted"
        )
        _add(field, report, statement.target_offset, "delete-alias", message)
    return statement


def _join_tables(
    inserts: list[tuple[SqlField, InsertStatement]], report: Report
) -> tuple[list[JoinTable], dict[str, tuple[SqlField, int]]]:
    """One table per name, as its first INSERT declares it; later INSERTs must agree."""
    tables: dict[str, JoinTable] = {}
    origins: dict[str, tuple[SqlField, int]] = {}
    for field, statement in inserts:
        name = statement.table.name
        columns = tuple(JoinColumn(c.name, c.entity) for c in statement.columns)
        if name not in tables:
            tables[name] = JoinTable(name, columns)
            origins[name] = (field, statement.table.start)
            if len(columns) > MAX_JOIN_COLUMNS:
                message = (
                    f"join table {name} has {len(columns)} columns, at most {MAX_JOIN_COLUMNS}: "
                    "an INSERT writes its row, and per column a relation item and an "
                    "existence check, in one DynamoDB transaction of at most "
                    f"{TRANSACTION_ITEM_LIMIT} items"
                )
                _add(field, report, statement.table.start, "join-table-columns", message)
            continue
        table, first = tables[name], origins[name][0].subject
        for column in statement.columns:
            known = table.column(column.name)
            if known is None:
                message = (
                    f"join table {name} has no column {column.name} "
                    f"(columns: {', '.join(c.name for c in table.columns)}; declared by {first})"
                )
                _add(field, report, column.offset, "unknown-column", message)
            elif known.entity != column.entity:
                message = (
                    f"column {column.name} of join table {name} "
                    f"references {known.entity} in {first}"
                )
                _add(
                    field,
                    report,
                    column.entity_offset,
                    "join-table-mismatch",
                    message,
                )
        missing = [c.name for c in table.columns if c.name not in {x.name for x in columns}]
        if missing:
            message = f"join table {name} also has {', '.join(missing)} (declared by {first})"
            _add(field, report, statement.table.start, "join-table-mismatch", message)
    return list(tables.values()), origins


def _check_join_table_placeholders(field: SqlField, declared: set[str], report: Report) -> None:
    for placeholder in field.placeholders or ():
        if placeholder.context is not Context.CODE or placeholder.kind is not Kind.JOIN_TABLE:
            continue  # misplaced ones are reported already
        if placeholder.name not in declared:
            message = (
                f"no join table {placeholder.name}: join tables are declared by INSERT mutations "
                f"(join tables: {', '.join(sorted(declared)) or 'none'})"
            )
            _add(field, report, placeholder.start, "unknown-table", message)


def _table_columns(
    entities: Iterable[Entity], join_tables: Iterable[JoinTable]
) -> dict[str, frozenset[str]]:
    """Every table SQL may read, with its columns, lower-cased as Athena compares them."""
    tables = {e.key: [f.name for f in e.fields] + list(keys.PARTITION_KEYS) for e in entities}
    for table in join_tables:
        tables[table.name] = [c.name for c in table.columns] + list(JOIN_TABLE_COLUMNS)
    return {name: frozenset(c.lower() for c in columns) for name, columns in tables.items()}


def _check_sql(
    fields: Iterable[tuple[SqlField, str]],
    tables: Mapping[str, frozenset[str]],
    task_responses: Mapping[str, TaskResponse],
    report: Report,
) -> dict[str, tuple[TableRead, ...]]:
    """Check each statement; return the lake tables each one that parses reads (join
    tables, named by their placeholders, excepted)."""
    from chalicelib.sql import analysis

    reads: dict[str, tuple[TableRead, ...]] = {}
    for field, expected in fields:
        if field.placeholders is None:
            continue
        try:
            result = analysis.analyze(field.sql)
        except analysis.SqlSyntaxError as error:
            _add(field, report, error.offset, "sql-syntax", error.message)
            continue
        if result.kind != expected:
            message = f"a Query task runs a SELECT (or WITH ... SELECT), not {result.kind}"
            _add_at_statement(field, report, message)
            continue
        join_tables = {p.start for p in field.placeholders if p.kind is Kind.JOIN_TABLE}
        reads[field.subject] = tuple(
            TableRead(t.name, t.offset)
            for t in result.tables
            if not t.qualified and t.offset not in join_tables
        )
        for table in result.tables:
            if table.qualified:
                message = (
                    f"write {table.name} without a database: "
                    "tasks run in the project's Glue database"
                )
                _add(field, report, table.offset, "unknown-table", message)
            elif table.name.lower() not in tables and table.offset not in join_tables:
                message = f"unknown table {table.name} (tables: {', '.join(sorted(tables))})"
                _add(field, report, table.offset, "unknown-table", message)
        for column in result.columns:
            known = tables.get(column.table.lower())
            if known is not None and column.column.lower() not in known:
                message = f"table {column.table.lower()} has no column {column.column}"
                _add(field, report, column.offset, "unknown-column", message)
        response = task_responses.get(field.type.name) if field.type else None
        if response is not None and result.outputs is not None:
            _check_result_columns(field, response, result.outputs, report)
    return reads


def _check_result_columns(
    field: SqlField, response: TaskResponse, outputs: tuple[str, ...], report: Report
) -> None:
    """Every non-null field of the result type needs a column of its name (in any case,
    as Athena lower-cases them): otherwise every run would fail when read."""
    for result_field in response.fields:
        if result_field.type.non_null and result_field.name.lower() not in outputs:
            message = (
                f"the SELECT returns no column {result_field.name} for the non-null field "
                f"{response.name}.{result_field.name} (columns: {', '.join(outputs)})"
            )
            _add(
                field,
                report,
                len(field.sql) - len(field.sql.lstrip()),
                "result-columns",
                message,
            )


def _omitted_type(field: SqlField, report: Report) -> bool:
    loc = field.node.type.loc
    return loc is not None and report.source.is_inserted(loc.start)


def _add(field: SqlField, report: Report, offset: int, rule: str, message: str) -> None:
    """A problem at character ``offset`` of the field's SQL."""
    report.add_sql(field.sql_node, offset, field.subject, rule, message)


def _add_at_statement(field: SqlField, report: Report, message: str) -> None:
    _add(field, report, len(field.sql) - len(field.sql.lstrip()), "statement-kind", message)


def _insert_mutation(field: SqlField, statement: InsertStatement) -> InsertMutation:
    values = tuple(
        (c.name, v.name) for c, v in zip(statement.columns, statement.values, strict=False)
    )
    return InsertMutation(field.name, field.arguments, statement.table.name, values)
