"""The two Mutation statement shapes, read without sqlglot."""

from __future__ import annotations

import pytest

from chalicelib.sql.placeholders import PlaceholderSyntaxError
from chalicelib.sql.statements import (
    InsertColumn,
    StatementSyntaxError,
    first_keyword,
    parse_delete,
    parse_insert,
)

INSERT = (
    "INSERT INTO $join_table(favs) (userId:User, productId : Product)\n"
    "VALUES ($args.userId, $args.productId)"
)


def test_first_keyword() -> None:
    assert first_keyword("  -- comment\n insert INTO x") == "INSERT"
    assert first_keyword("(SELECT 1)") == ""
    assert first_keyword("") == ""


def test_insert() -> None:
    statement = parse_insert(INSERT)
    assert statement.table.name == "favs"
    assert statement.table.start == INSERT.index("$join_table")
    assert statement.columns == (
        InsertColumn("userId", "User", 31, 38),
        InsertColumn("productId", "Product", 44, 56),
    )
    assert [v.name for v in statement.values] == ["userId", "productId"]
    assert statement.values_offset == INSERT.index("VALUES")


def test_insert_keywords_are_case_insensitive_and_a_semicolon_may_end_it() -> None:
    statement = parse_insert("insert into $join_table(t) (a:A) values ($args.a);")
    assert [c.name for c in statement.columns] == ["a"]


@pytest.mark.parametrize(
    ("sql", "offset", "message"),
    [
        ("INSERT t", 7, "expected INTO"),
        ("INSERT INTO t (a:A) VALUES ($args.a)", 12, "the table must be $join_table(name)"),
        ("INSERT INTO $join_table(t) a:A VALUES ($args.a)", 27, "expected '('"),
        ("INSERT INTO $join_table(t) (a) VALUES ($args.a)", 29, "needs its entity type"),
        ("INSERT INTO $join_table(t) (a:A) VALUES ('x')", 41, "only $args.name"),
        ("INSERT INTO $join_table(t) (a:A) VALUES ($args.a", 48, "expected ')'"),
        ("INSERT INTO $join_table(t) (a:A) SELECT 1", 33, "expected VALUES"),
        ("INSERT INTO $join_table(t) (a:A) VALUES ($args.a) x", 50, "unexpected text"),
    ],
)
def test_malformed_insert(sql: str, offset: int, message: str) -> None:
    with pytest.raises(StatementSyntaxError) as caught:
        parse_insert(sql)
    assert caught.value.offset == offset
    assert message in caught.value.message


def test_delete_header() -> None:
    sql = "DELETE f FROM $join_table(favs) AS f JOIN product p ON f.productId = p.id"
    statement = parse_delete(sql)
    assert (statement.target, statement.table.name, statement.alias) == ("f", "favs", "f")
    assert (statement.target_offset, statement.alias_offset) == (7, 35)


@pytest.mark.parametrize(
    ("sql", "offset", "message"),
    [
        ("DELETE FROM $join_table(t) f", 7, "name the alias to delete"),
        ("DELETE f FROM t f", 14, "the table must be $join_table(name)"),
        ("DELETE f FROM $join_table(t) WHERE 1 = 1", 29, "needs an alias"),
        ("DELETE f FROM $join_table(t)", 28, "needs an alias"),
    ],
)
def test_malformed_delete(sql: str, offset: int, message: str) -> None:
    with pytest.raises(StatementSyntaxError) as caught:
        parse_delete(sql)
    assert caught.value.offset == offset
    assert message in caught.value.message


def test_malformed_placeholders_surface_as_placeholder_errors() -> None:
    with pytest.raises(PlaceholderSyntaxError):
        parse_insert("INSERT INTO $join_table(t) (a:A) VALUES ($args)")
