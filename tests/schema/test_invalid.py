"""Broken schemas: each names its rule, field, line and column in the user's file."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from chalicelib.schema import SchemaError, load_schema

USER = "type User {\n  id: ID!\n  name: String\n}\n"  # lines 1-4
ENTITIES = "type User {\n  id: ID!\n}\ntype Product {\n  id: ID!\n}\n"  # lines 1-6
INSERT = (
    "INSERT INTO $join_table(favs) (userId:User, productId:Product) "
    "VALUES ($args.userId, $args.productId)"
)
ADD = f'  add(userId: ID!, productId: ID!) @sql_query(query: "{INSERT}")\n'  # line 8

WIDE = range(50)  # a relation item and an existence check per column, plus the row: 101
WIDE_INSERT = (
    f"INSERT INTO $join_table(wide) ({', '.join(f'u{n}:User' for n in WIDE)}) "
    f"VALUES ({', '.join(f'$args.u{n}' for n in WIDE)})"
)
WIDE_ADD = f'  wide({", ".join(f"u{n}: ID!" for n in WIDE)}) @sql_query(query: "{WIDE_INSERT}")\n'


def query(*lines: str) -> str:
    """USER, then ``type Query`` whose first field is on line 6."""
    return USER + "type Query {\n" + "".join(lines) + "}\n"


def mutation(*lines: str) -> str:
    """ENTITIES, then ``type Mutation`` whose first field is on line 8."""
    return ENTITIES + "type Mutation {\n" + "".join(lines) + "}\n"


class Case(NamedTuple):
    sdl: str
    rule: str
    field: str
    line: int
    column: int


CASES = {
    # GraphQL itself
    "syntax error": Case("type User {\n  id: ID!\n  name String\n}\n", "syntax", "", 3, 8),
    "unknown type": Case(
        "type User {\n  id: ID!\n  friend: Person\n}\n", "graphql", "User.friend", 3, 11
    ),
    "repeated directive": Case(
        query('  n: Int @sql_query(query: "SELECT 1") @sql_query(query: "SELECT 2")\n'),
        "graphql",
        "Query.n",
        6,
        10,
    ),
    "invalid default value": Case(
        query('  n(x: Int = "s"): Int @sql_query(query: "SELECT $args.x")\n'),
        "graphql",
        "Query.n",
        6,
        14,
    ),
    # definitions
    "interface": Case(
        "interface Node {\n  id: ID!\n}\n" + USER, "unsupported-definition", "Node", 1, 11
    ),
    "input type": Case(
        USER + "input Filter {\n  name: String\n}\n", "unsupported-definition", "Filter", 5, 7
    ),
    "union": Case(USER + "union Any = User\n", "unsupported-definition", "Any", 5, 7),
    "custom scalar": Case("scalar Money\n" + USER, "unsupported-definition", "Money", 1, 8),
    "other directive": Case(
        "directive @key on OBJECT\n" + USER, "unsupported-definition", "@key", 1, 12
    ),
    "directive declared differently": Case(
        "directive @sql_query(sql: String!) on FIELD_DEFINITION\n" + USER,
        "directive-declaration",
        "@sql_query",
        1,
        12,
    ),
    "subscription type": Case(
        USER + "type Subscription {\n  userCreated: User\n}\n",
        "subscription-unsupported",
        "Subscription",
        5,
        6,
    ),
    "renamed query root": Case(
        "schema {\n  query: Root\n}\n" + USER + "type Root {\n  n: Int\n}\n",
        "root-type-name",
        "schema",
        2,
        10,
    ),
    "AWS scalar as a type": Case(
        USER + "type AWSDate {\n  id: ID!\n}\n", "reserved-type-name", "AWSDate", 5, 6
    ),
    "no entities": Case(
        'type Query {\n  n: Int @sql_query(query: "SELECT 1")\n}\n', "no-entities", "", 1, 1
    ),
    # entities
    "entity without id": Case("type User {\n  name: String\n}\n", "entity-id", "User", 1, 6),
    "id not ID!": Case("type User {\n  id: String!\n}\n", "entity-id", "User.id", 2, 7),
    "object field": Case(
        "type Brand {\n  id: ID!\n}\ntype User {\n  id: ID!\n  brand: Brand\n}\n",
        "entity-field-type",
        "User.brand",
        6,
        10,
    ),
    "nested list field": Case(
        "type User {\n  id: ID!\n  tags: [[String]]\n}\n", "entity-field-type", "User.tags", 3, 9
    ),
    "createdAt not AWSDateTime!": Case(
        "type User {\n  id: ID!\n  createdAt: String\n}\n",
        "managed-field-type",
        "User.createdAt",
        3,
        14,
    ),
    "TTL attribute as a field": Case(
        "type User {\n  id: ID!\n  expiresAt: Int\n}\n",
        "reserved-field-name",
        "User.expiresAt",
        3,
        3,
    ),
    "key attribute as a field": Case(
        "type User {\n  id: ID!\n  PK: String\n}\n", "reserved-field-name", "User.PK", 3, 3
    ),
    "partition column as a field": Case(
        "type User {\n  id: ID!\n  Year: Int\n}\n", "reserved-field-name", "User.Year", 3, 3
    ),
    "fields differing in case": Case(
        "type User {\n  id: ID!\n  userId: ID\n  userid: ID\n}\n",
        "field-name-collision",
        "User.userid",
        4,
        3,
    ),
    "field with arguments": Case(
        "type User {\n  id: ID!\n  name(upper: Boolean): String\n}\n",
        "field-arguments",
        "User.name",
        3,
        8,
    ),
    "@sql_query on an entity field": Case(
        'type User {\n  id: ID!\n  name: String @sql_query(query: "SELECT 1")\n}\n',
        "directive-placement",
        "User.name",
        3,
        16,
    ),
    "@task_response on Query": Case(
        USER + 'type Query @task_response {\n  n: Int @sql_query(query: "SELECT 1")\n}\n',
        "directive-placement",
        "Query",
        5,
        12,
    ),
    "object field in a task response": Case(
        USER
        + "type Row @task_response {\n  user: User\n}\n"
        + 'type Query {\n  rows: [Row] @sql_query(query: "SELECT 1")\n}\n',
        "task-response-field-type",
        "Row.user",
        6,
        9,
    ),
    # name collisions
    "entity named like a connection": Case(
        "type UserConnection {\n  id: ID!\n}\n" + USER, "name-collision", "User", 4, 6
    ),
    "entities differing in case": Case(
        USER + "type USER {\n  id: ID!\n}\n", "name-collision", "USER", 5, 6
    ),
    "entity whose table is the task items' key prefix": Case(
        USER + "type Task {\n  id: ID!\n}\n", "name-collision", "Task", 5, 6
    ),
    "entity whose table is the join rows' key prefix": Case(
        USER + "type JoinTableData {\n  id: ID!\n}\n", "name-collision", "JoinTableData", 5, 6
    ),
    "entity named DeleteResult": Case(
        USER + "type DeleteResult {\n  id: ID!\n}\n", "name-collision", "DeleteResult", 5, 6
    ),
    "enum named SortOrder": Case(
        "enum SortOrder {\n  UP\n  DOWN\n}\n" + USER, "name-collision", "SortOrder", 1, 6
    ),
    "mutation named like a generated one": Case(
        mutation(ADD.replace("  add(", "  createUser(")),
        "name-collision",
        "Mutation.createUser",
        8,
        3,
    ),
    "join table named like an entity": Case(
        mutation(ADD.replace("$join_table(favs)", "$join_table(user)")),
        "name-collision",
        "Mutation.add",
        8,
        67,
    ),
    # Query tasks
    "query field without @sql_query": Case(
        query("  n: Int\n"), "query-needs-sql-query", "Query.n", 6, 3
    ),
    "query returning an entity": Case(
        query('  users: [User!]! @sql_query(query: "SELECT * FROM \\"user\\"")\n'),
        "query-return-type",
        "Query.users",
        6,
        10,
    ),
    "list argument": Case(
        query('  n(ids: [ID!]): Int @sql_query(query: "SELECT 1")\n'),
        "argument-type",
        "Query.n",
        6,
        10,
    ),
    "query argument not a string": Case(
        query("  n: Int @sql_query(query: 42)\n"), "directive-argument", "Query.n", 6, 10
    ),
    "query task that updates": Case(
        query('  n: Int @sql_query(query: "UPDATE \\"user\\" SET name = \'x\'")\n'),
        "statement-kind",
        "Query.n",
        6,
        29,
    ),
    "SQL syntax error in a block string": Case(
        query(
            '  n: Int @sql_query(query: """\n    SELECT COUNT(*)\n    FROM "user" WHERE\n  """)\n'
        ),
        "sql-syntax",
        "Query.n",
        8,
        17,
    ),
    "two statements": Case(
        query('  n: Int @sql_query(query: "SELECT 1; SELECT 2")\n'), "sql-syntax", "Query.n", 6, 29
    ),
    "unknown table": Case(
        query('  n: Int @sql_query(query: "SELECT COUNT(*) FROM users")\n'),
        "unknown-table",
        "Query.n",
        6,
        50,
    ),
    "table with a database": Case(
        query('  n: Int @sql_query(query: "SELECT COUNT(*) FROM shop_db.user")\n'),
        "unknown-table",
        "Query.n",
        6,
        58,
    ),
    "unknown join table placeholder": Case(
        query('  n: Int @sql_query(query: "SELECT COUNT(*) FROM $join_table(likes)")\n'),
        "unknown-table",
        "Query.n",
        6,
        50,
    ),
    "a placeholder in a unicode literal": Case(
        query(
            '  n(q: String): Int @sql_query(query: "SELECT COUNT(*) FROM \\"user\\" u '
            "WHERE u.name = U&'$args.q'\")\n"
        ),
        "placeholder-context",
        "Query.n",
        6,
        90,
    ),
    "a result type's non-null field the SELECT does not return": Case(
        USER
        + "type Row @task_response {\n  name: String!\n  total: Int!\n}\n"
        + 'type Query {\n  rows: [Row!]! @sql_query(query: "SELECT name FROM \\"user\\"")\n}\n',
        "result-columns",
        "Query.rows",
        10,
        36,
    ),
    "unknown column": Case(
        query('  n: Int @sql_query(query: "SELECT COUNT(u.nope) FROM \\"user\\" u")\n'),
        "unknown-column",
        "Query.n",
        6,
        44,
    ),
    "unknown argument in a block string": Case(
        query(
            "  n(city: String!): Int\n",
            '    @sql_query(query: """\n',
            '      SELECT COUNT(*) FROM "user" u\n',
            "      WHERE u.name = $args.town\n",
            '    """)\n',
        ),
        "unknown-argument",
        "Query.n",
        9,
        22,
    ),
    "malformed placeholder": Case(
        query('  n(city: String): Int @sql_query(query: "SELECT COUNT(*) WHERE $args city")\n'),
        "placeholder-syntax",
        "Query.n",
        6,
        65,
    ),
    "placeholder in a quoted identifier": Case(
        query(
            '  n(col: String): Int @sql_query(query: "SELECT \\"$args.col\\" FROM \\"user\\"")\n'
        ),
        "placeholder-context",
        "Query.n",
        6,
        51,
    ),
    "join table placeholder in a string": Case(
        mutation(ADD)
        + "type Query {\n  n: String @sql_query(query: \"SELECT '$join_table(favs)'\")\n}\n",
        "placeholder-context",
        "Query.n",
        11,
        40,
    ),
    # Mutations
    "mutation without @sql_query": Case(
        mutation("  ping: Boolean\n"), "mutation-needs-sql-query", "Mutation.ping", 8, 3
    ),
    "mutation that updates": Case(
        mutation('  bump(id: ID!) @sql_query(query: "UPDATE \\"user\\" SET name = 1")\n'),
        "statement-kind",
        "Mutation.bump",
        8,
        36,
    ),
    "INSERT into a plain table": Case(
        mutation(ADD.replace("$join_table(favs)", "favs")),
        "insert-syntax",
        "Mutation.add",
        8,
        67,
    ),
    "INSERT column typed with a non-entity": Case(
        mutation(ADD.replace("productId:Product", "productId:Item")),
        "insert-column-type",
        "Mutation.add",
        8,
        109,
    ),
    "INSERT with fewer values than columns": Case(
        mutation(ADD.replace("$args.userId, $args.productId", "$args.userId")),
        "insert-value-count",
        "Mutation.add",
        8,
        118,
    ),
    "INSERT naming a column twice": Case(
        mutation(ADD.replace("productId:Product", "userId:User")),
        "duplicate-column",
        "Mutation.add",
        8,
        99,
    ),
    "INSERT value of a non-id type": Case(
        mutation(ADD.replace("productId: ID!", "productId: Int!")),
        "insert-value-type",
        "Mutation.add",
        8,
        141,
    ),
    "INSERT into a column named like a row attribute": Case(
        mutation(ADD.replace("productId:Product", "tableName:Product")),
        "reserved-column-name",
        "Mutation.add",
        8,
        99,
    ),
    "INSERT into a reserved column": Case(
        mutation(ADD.replace("productId:Product", "s3Key:Product")),
        "reserved-column-name",
        "Mutation.add",
        8,
        99,
    ),
    "join table name with capitals": Case(
        mutation(ADD.replace("$join_table(favs)", "$join_table(Favs)")),
        "join-table-name",
        "Mutation.add",
        8,
        67,
    ),
    "INSERT into a join table too wide for one transaction": Case(
        mutation(WIDE_ADD),
        "join-table-columns",
        "Mutation.wide",
        8,
        WIDE_ADD.index("$join_table") + 1,
    ),
    "INSERTs disagreeing on a column type": Case(
        mutation(
            ADD, ADD.replace("  add(", "  add2(").replace("productId:Product", "productId:User")
        ),
        "join-table-mismatch",
        "Mutation.add2",
        9,
        110,
    ),
    "INSERT naming a column the join table lacks": Case(
        mutation(
            ADD,
            ADD.replace("  add(", "  add2(")
            .replace("productId:Product)", "productId:Product, itemId:Product)")
            .replace("$args.productId)", "$args.productId, $args.productId)"),
        ),
        "unknown-column",
        "Mutation.add2",
        9,
        119,
    ),
    "INSERT returning a string": Case(
        mutation(ADD.replace("productId: ID!)", "productId: ID!): String")),
        "mutation-return-type",
        "Mutation.add",
        8,
        37,
    ),
    "DELETE from an undeclared join table": Case(
        mutation(
            ADD,
            '  clear(userId: ID!) @sql_query(query: "DELETE f FROM $join_table(likes) f")\n',
        ),
        "unknown-table",
        "Mutation.clear",
        9,
        55,
    ),
    "DELETE without alias": Case(
        mutation(
            ADD,
            '  clear(userId: ID!) @sql_query(query: "DELETE FROM $join_table(favs) WHERE 1 = 1")\n',
        ),
        "delete-syntax",
        "Mutation.clear",
        9,
        48,
    ),
    "DELETE of another alias": Case(
        mutation(
            ADD,
            '  clear(userId: ID!) @sql_query(query: "DELETE g FROM $join_table(favs) f")\n',
        ),
        "delete-alias",
        "Mutation.clear",
        9,
        48,
    ),
    "DELETE with a return type": Case(
        mutation(
            ADD,
            "  clear(userId: ID!): Boolean\n",
            '    @sql_query(query: "DELETE f FROM $join_table(favs) f")\n',
        ),
        "mutation-return-type",
        "Mutation.clear",
        9,
        23,
    ),
    "DELETE reading an unknown column": Case(
        mutation(
            ADD,
            '  clear(userId: ID!) @sql_query(query: "DELETE f FROM $join_table(favs) f '
            'WHERE f.user = $args.userId")\n',
        ),
        "unknown-column",
        "Mutation.clear",
        9,
        83,
    ),
    "DELETE joining an unknown table": Case(
        mutation(
            ADD,
            '  clear(userId: ID!) @sql_query(query: "DELETE f FROM $join_table(favs) f '
            'JOIN orders o ON o.id = f.userId")\n',
        ),
        "unknown-table",
        "Mutation.clear",
        9,
        80,
    ),
    "task and deletion task with one name": Case(
        mutation(
            ADD,
            '  count(userId: ID!) @sql_query(query: "DELETE f FROM $join_table(favs) f")\n',
        )
        + 'type Query {\n  Count: Int @sql_query(query: "SELECT 1")\n}\n',
        "name-collision",
        "Query.Count",
        12,
        3,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_broken_schema_is_reported_where_it_breaks(tmp_path: Path, case: Case) -> None:
    path = tmp_path / "broken.graphql"
    path.write_text(case.sdl)
    with pytest.raises(SchemaError) as caught:
        load_schema(path)
    problems = caught.value.problems
    found = [(p.rule, p.field, p.line, p.column) for p in problems]
    assert found[0] == (case.rule, case.field, case.line, case.column), str(caught.value)
    assert str(path) in str(caught.value)
    assert str(caught.value).splitlines()[0].startswith(f"{path}:{case.line}:{case.column}: ")


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "schema.graphql"
    path.write_text(
        "type User {\n  name: String\n  expiresAt: Int\n}\n"
        + "type Query {\n  n(city: String): Int\n"
        + '    @sql_query(query: "SELECT COUNT(*) FROM \\"user\\" WHERE name = $args.town")\n}\n'
    )
    with pytest.raises(SchemaError) as caught:
        load_schema(path)
    assert str(caught.value).splitlines() == [
        f"{path}:1:6: User: [entity-id] entity User needs a field id: ID! (its key)",
        f"{path}:3:3: User.expiresAt: [reserved-field-name] expiresAt is reserved: "
        "the table's TTL attribute",
        f"{path}:7:67: Query.n: [unknown-argument] $args.town has no argument 'town' "
        "(arguments: city)",
    ]


def test_without_sql_checks_placeholders_and_insert_shapes_are_still_checked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "schema.graphql"
    path.write_text(
        mutation(ADD.replace("productId:Product", "productId:Item"))
        + 'type Query {\n  n: Int @sql_query(query: "DELETE FROM nowhere WHERE $args.x")\n}\n'
    )
    with pytest.raises(SchemaError) as caught:
        load_schema(path, check_sql=False)
    assert [p.rule for p in caught.value.problems] == ["insert-column-type", "unknown-argument"]


def test_without_sql_checks_sql_itself_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "schema.graphql"
    path.write_text(query('  n: Int @sql_query(query: "UPDATE nowhere SET")\n'))
    (task,) = load_schema(path, check_sql=False).query_tasks
    assert task.sql == "UPDATE nowhere SET"
