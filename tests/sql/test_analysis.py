"""SQL analysis with sqlglot: statement kind, tables, qualified columns, DELETE as SELECT."""

from __future__ import annotations

import duckdb
import pytest

from chalicelib.sql.analysis import (
    ColumnRef,
    OwnedColumn,
    SqlSyntaxError,
    TableRef,
    analyze,
    delete_to_select,
)


def test_select_tables_and_columns_with_offsets_in_the_users_text() -> None:
    sql = (
        'SELECT u.name FROM "user" u JOIN $join_table(favs) f ON f.userId = u.id '
        "WHERE u.age > $args.age"
    )
    result = analyze(sql)
    assert result.kind == "SELECT"
    assert result.tables == (
        TableRef("user", sql.index('"user"'), qualified=False),
        TableRef("favs", sql.index("$join_table"), qualified=False),
    )
    assert ColumnRef("user", "name", sql.index("name")) in result.columns
    assert ColumnRef("favs", "userId", sql.index("userId")) in result.columns
    assert ColumnRef("user", "age", sql.index("age")) in result.columns


def test_placeholders_inside_strings_stay_text() -> None:
    result = analyze("SELECT p.id FROM product p WHERE p.name LIKE '$args.prefix%'")
    assert [t.name for t in result.tables] == ["product"]


def test_cte_names_are_not_tables_and_correlated_columns_resolve() -> None:
    sql = (
        "WITH recent AS (SELECT o.id FROM orders o) "
        "SELECT r.id FROM recent r WHERE EXISTS (SELECT 1 FROM item i WHERE i.orderId = r.id)"
    )
    result = analyze(sql)
    assert [t.name for t in result.tables] == ["orders", "item"]
    assert {(c.table, c.column) for c in result.columns} == {
        ("orders", "id"),
        ("item", "orderId"),
    }


def test_qualified_tables_are_marked() -> None:
    (table,) = analyze("SELECT 1 FROM shop_db.product").tables
    assert table == TableRef("product", 22, qualified=True)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1 UNION ALL SELECT 2", "SELECT"),
        ("WITH a AS (SELECT 1) SELECT * FROM a", "SELECT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("DROP TABLE t", "DROP"),
        ("DELETE f FROM $join_table(favs) f WHERE f.a = $args.a", "DELETE"),
    ],
)
def test_statement_kind(sql: str, kind: str) -> None:
    assert analyze(sql).kind == kind


def test_delete_reads_its_join_table_and_joins() -> None:
    sql = "DELETE f FROM $join_table(favs) f JOIN product p ON f.productId = p.id WHERE p.x = 1"
    result = analyze(sql)
    assert [t.name for t in result.tables] == ["favs", "product"]
    assert ("favs", "productId") in {(c.table, c.column) for c in result.columns}


@pytest.mark.parametrize(
    ("sql", "offset", "message"),
    [
        ("SELECT * FROM t WHERE", 16, "near 'WHERE'"),
        ("SELECT *\nFROM t\nWHERE x = = 1", 26, "near '='"),
        ("SELECT 1; SELECT 2", 0, "expected one SQL statement, found 2"),
        ("", 0, "expected one SQL statement, found 0"),
        ("DELETE FROM t USING u WHERE t.a = u.a", 0, "not supported"),
    ],
)
def test_syntax_errors_carry_an_offset(sql: str, offset: int, message: str) -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        analyze(sql)
    assert caught.value.offset == offset
    assert message in caught.value.message


def test_delete_to_select_keeps_the_joins() -> None:
    sql = "DELETE f FROM favs f JOIN product p ON f.productId = p.id WHERE p.brandId = 'b1'"
    assert delete_to_select(sql) == (
        "SELECT f.s3Key, f.relationId FROM favs AS f JOIN product AS p "
        "ON f.productId = p.id WHERE p.brandId = 'b1'"
    )


def test_a_caller_held_to_their_items_selects_only_rows_referencing_them() -> None:
    owned = [OwnedColumn("noteId", "note", "owner", "o'brien' OR 1=1 --")]

    sql = delete_to_select("DELETE p FROM pins p WHERE p.a = 'x' OR p.a = 'y'", owned)

    assert sql == (
        "SELECT p.s3Key, p.relationId FROM pins AS p WHERE (p.a = 'x' OR p.a = 'y') AND "
        '"p"."noteId" IN (SELECT "id" FROM "note" WHERE "owner" = \'o\'\'brien\'\' OR 1=1 --\')'
    )
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE note AS SELECT * FROM "
        "(VALUES ('n1', 'o''brien'' OR 1=1 --'), ('n2', 'x')) v(id, owner)"
    )
    connection.execute(
        "CREATE TABLE pins AS SELECT * FROM (VALUES ('k1', 'r1', 'n1', 'x'), "
        "('k2', 'r2', 'n2', 'x')) v(s3Key, relationId, noteId, a)"
    )
    assert connection.execute(sql).fetchall() == [("k1", "r1")]


def test_delete_to_select_without_where() -> None:
    assert delete_to_select("DELETE f FROM favs f") == "SELECT f.s3Key, f.relationId FROM favs AS f"


def test_delete_to_select_needs_a_delete() -> None:
    with pytest.raises(SqlSyntaxError):
        delete_to_select("SELECT 1")
