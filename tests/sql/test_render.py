"""Rendering ``@sql_query`` at run time: literals of every type, NULL, values in literals."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from chalicelib.schema import load_schema
from chalicelib.schema.model import Argument, SchemaModel, TypeKind, TypeRef
from chalicelib.sql.analysis import delete_to_select
from chalicelib.sql.placeholders import Context, find_placeholders
from chalicelib.sql.render import RenderError, render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "schema.graphql"


def scalar(name: str, *, non_null: bool = False, is_list: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, non_null=non_null, is_list=is_list)


ARGUMENTS = (
    Argument("s", scalar("String")),
    Argument("id", scalar("ID", non_null=True)),
    Argument("json", scalar("AWSJSON")),
    Argument("date", scalar("AWSDate")),
    Argument("i", scalar("Int")),
    Argument("epoch", scalar("AWSTimestamp")),
    Argument("f", scalar("Float")),
    Argument("b", scalar("Boolean")),
    Argument("ts", scalar("AWSDateTime")),
    Argument("color", TypeRef("Color", TypeKind.ENUM)),
    Argument("tags", scalar("String", is_list=True)),
    Argument("nums", scalar("Int", is_list=True)),
    Argument("limit", scalar("Int"), has_default=True, default=10),
)


def one(placeholder: str, value: Any) -> str:
    """The rendering of a lone placeholder with one value."""
    name = placeholder.removeprefix("$args.")
    return render(placeholder, ARGUMENTS, {name: value})


class Color(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("placeholder", "value", "literal"),
    [
        ("$args.s", "Zürich", "'Zürich'"),
        ("$args.s", "it's", "'it''s'"),
        ("$args.s", "", "''"),
        ("$args.s", "''", "''''''"),
        ("$args.s", "a\\", "'a\\'"),
        ("$args.s", "x' OR 1=1 --", "'x'' OR 1=1 --'"),
        ("$args.s", "line\n-- not a comment */ /*", "'line\n-- not a comment */ /*'"),
        # Unicode quotes are text to Trino; so are NUL and emoji.
        ("$args.s", "\u02bc\u2019\u2018\u0000\U0001f600", "'\u02bc\u2019\u2018\u0000\U0001f600'"),
        ("$args.id", "42", "'42'"),
        ("$args.json", '{"a": "b\'c"}', "'{\"a\": \"b''c\"}'"),
        ("$args.date", "2026-11-23", "'2026-11-23'"),
        ("$args.i", 42, "42"),
        ("$args.i", 0, "0"),
        ("$args.i", -(2**63), "-9223372036854775808"),
        ("$args.i", 2**63 - 1, "9223372036854775807"),
        ("$args.epoch", 1_795_000_000, "1795000000"),
        ("$args.f", 1.5, "1.5E0"),
        ("$args.f", -0.25, "-0.25E0"),
        ("$args.f", 1e300, "1E+300"),
        ("$args.f", 5e-324, "5E-324"),
        ("$args.f", 3, "3.0E0"),
        ("$args.b", True, "TRUE"),
        ("$args.b", False, "FALSE"),
        ("$args.ts", "2026-11-23T19:22:14.123Z", "TIMESTAMP '2026-11-23 19:22:14.123'"),
        ("$args.ts", "2026-11-23T20:22:14+01:00", "TIMESTAMP '2026-11-23 19:22:14.000'"),
        ("$args.ts", "2026-11-23T19:22:14.123456789Z", "TIMESTAMP '2026-11-23 19:22:14.123'"),
        ("$args.ts", "2026-11-23T19:22:14", "TIMESTAMP '2026-11-23 19:22:14.000'"),
        ("$args.ts", "0001-01-01T00:00:00Z", "TIMESTAMP '0001-01-01 00:00:00.000'"),
        (
            "$args.ts",
            datetime(2026, 11, 23, 20, 22, 14, 123000, tzinfo=timezone(timedelta(hours=1))),
            "TIMESTAMP '2026-11-23 19:22:14.123'",
        ),
        ("$args.color", "RED", "'RED'"),
        ("$args.color", Color.RED, "'RED'"),
        ("$args.tags", ["a", "b'c", None], "ARRAY['a', 'b''c', NULL]"),
        ("$args.tags", (), "ARRAY[]"),
        ("$args.nums", [1, -2], "ARRAY[1, -2]"),
    ],
)
def test_literal_of_each_type(placeholder: str, value: Any, literal: str) -> None:
    assert one(placeholder, value) == literal


@pytest.mark.parametrize("placeholder", [a.name for a in ARGUMENTS if a.name != "limit"])
def test_null_and_omitted_arguments_are_null(placeholder: str) -> None:
    assert render(f"$args.{placeholder}", ARGUMENTS, {placeholder: None}) == "NULL"
    assert render(f"$args.{placeholder}", ARGUMENTS, {}) == "NULL"


def test_an_omitted_argument_takes_its_default_and_an_explicit_null_is_null() -> None:
    assert render("LIMIT $args.limit", ARGUMENTS, {}) == "LIMIT 10"
    assert render("LIMIT $args.limit", ARGUMENTS, {"limit": 3}) == "LIMIT 3"
    assert render("LIMIT $args.limit", ARGUMENTS, {"limit": None}) == "LIMIT NULL"


def test_several_placeholders_the_same_one_twice_and_the_join_table() -> None:
    sql = (
        "SELECT * FROM $join_table(favs) f WHERE f.s = $args.s AND f.i >= $args.i OR f.t = $args.s"
    )
    assert render(sql, ARGUMENTS, {"s": "x", "i": 2}) == (
        "SELECT * FROM favs f WHERE f.s = 'x' AND f.i >= 2 OR f.t = 'x'"
    )


def test_placeholder_text_inside_a_value_is_not_substituted_again() -> None:
    sql = "WHERE a = $args.s AND b = $args.i AND c = '$args.s'"
    values = {"s": "$args.i $join_table(t) '$args.s'", "i": 1}
    assert render(sql, ARGUMENTS, values) == (
        "WHERE a = '$args.i $join_table(t) ''$args.s''' AND b = 1 "
        "AND c = '$args.i $join_table(t) ''$args.s'''"
    )


def test_comments_are_left_as_written() -> None:
    sql = "SELECT $args.i -- $args.s\n/* $args.s\n $join_table(t) */ FROM t"
    assert render(sql, ARGUMENTS, {"i": 1, "s": "x"}) == (
        "SELECT 1 -- $args.s\n/* $args.s\n $join_table(t) */ FROM t"
    )


def test_a_value_inside_a_string_literal_stays_in_it() -> None:
    sql = "WHERE p.name LIKE '$args.s%' AND q = 'it''s $args.s'"
    assert render(sql, ARGUMENTS, {"s": "O'Brien' OR 1=1 --"}) == (
        "WHERE p.name LIKE 'O''Brien'' OR 1=1 --%' AND q = 'it''s O''Brien'' OR 1=1 --'"
    )


def test_a_null_value_inside_a_string_literal_makes_the_whole_literal_null() -> None:
    sql = "WHERE p.name LIKE '$args.s%' OR $args.s IS NULL OR x = 'a''$args.i-$args.s'"
    assert render(sql, ARGUMENTS, {"i": 1}) == (
        "WHERE p.name LIKE NULL OR NULL IS NULL OR x = NULL"
    )
    # A null list item too: the literal is a concatenation of the items.
    assert render("x = '$args.tags'", ARGUMENTS, {"tags": ["a", None]}) == "x = NULL"


def test_a_null_literal_is_set_apart_from_a_keyword_it_touches() -> None:
    assert render("WHERE n LIKE'$args.s%'", ARGUMENTS, {}) == "WHERE n LIKE NULL"


@pytest.mark.parametrize(
    ("placeholder", "value", "text"),
    [
        ("s", "a'b", "a''b"),
        ("i", -7, "-7"),
        ("f", 1.5, "1.5"),
        ("f", 1e300, "1e+300"),
        ("b", True, "true"),
        ("b", False, "false"),
        ("ts", "2026-11-23T20:22:14.5+01:00", "2026-11-23T19:22:14.500Z"),
        ("color", Color.RED, "RED"),
        ("tags", ["a", "b'c"], "a,b''c"),
        ("tags", [], ""),
        ("nums", [1, 2], "1,2"),
    ],
)
def test_text_of_each_type_inside_a_literal(placeholder: str, value: Any, text: str) -> None:
    rendered = render(f"SELECT '<$args.{placeholder}>'", ARGUMENTS, {placeholder: value})
    assert rendered == f"SELECT '<{text}>'"


@pytest.mark.parametrize(
    ("sql", "values", "rendered"),
    [
        # "5--3" would start a comment.
        ("5-$args.i", {"i": -3}, "5- -3"),
        ("5-$args.i", {"i": 3}, "5- 3"),
        ("$args.i-1", {"i": 3}, "3 -1"),
        ("x=-$args.i", {"i": -3}, "x=- -3"),
        # 'a''b' would be one literal, N'b' a national string, x3 an identifier.
        ("'a'$args.s", {"s": "b"}, "'a' 'b'"),
        ("N$args.s", {"s": "b"}, "N 'b'"),
        ("x$args.i", {"i": 3}, "x 3"),
        ("$args.i$args.i", {"i": 3}, "3  3"),
        ("$args.s'c'", {"s": "b"}, "'b' 'c'"),
        ("$args.i.5", {"i": 3}, "3 .5"),
        # Operators and brackets do not fuse with a literal: no space added.
        ("f($args.i,$args.i)>=$args.i||$args.s;", {"i": -3, "s": "b"}, "f(-3,-3)>=-3||'b';"),
        ("ARRAY[$args.i]", {"i": 3}, "ARRAY[3]"),
    ],
)
def test_a_literal_never_fuses_with_its_neighbours(
    sql: str, values: dict[str, Any], rendered: str
) -> None:
    assert render(sql, ARGUMENTS, values) == rendered


@pytest.mark.parametrize(
    ("placeholder", "value", "message"),
    [
        ("f", float("nan"), "argument f (Float): nan is not a finite number"),
        ("f", float("inf"), "argument f (Float): inf is not a finite number"),
        ("f", float("-inf"), "argument f (Float): -inf is not a finite number"),
        ("f", 10**400, "is too large for a Float"),
        ("f", "1.5", "argument f (Float): expected a number, got '1.5'"),
        ("f", True, "expected a number"),
        ("i", 2**63, "argument i (Int): 9223372036854775808 does not fit in a 64-bit integer"),
        ("i", -(2**63) - 1, "does not fit in a 64-bit integer"),
        ("i", True, "argument i (Int): expected an integer, got True"),
        ("i", 1.0, "expected an integer"),
        ("i", "1", "expected an integer"),
        ("epoch", 2**64, "argument epoch (AWSTimestamp): 18446744073709551616 does not fit"),
        ("b", 1, "argument b (Boolean): expected a boolean, got 1"),
        ("s", 1, "argument s (String): expected a string, got 1"),
        ("id", ["a"], "argument id (ID!): expected a string"),
        ("ts", "garbage", "argument ts (AWSDateTime): expected a date and time"),
        ("ts", "2026-13-01T00:00:00Z", "expected a date and time"),
        ("ts", "0001-01-01T00:00:00+01:00", "expected a date and time"),
        ("ts", 1_795_000_000, "expected a date and time"),
        ("tags", "abc", "argument tags ([String]): expected a list, got 'abc'"),
        ("nums", [1, 2**63], "argument nums ([Int]): 9223372036854775808 does not fit"),
        ("s", ["x" * 1000], "expected a string, got ['xxxx"),
    ],
)
def test_values_that_are_not_of_the_arguments_type_are_refused(
    placeholder: str, value: Any, message: str
) -> None:
    with pytest.raises(RenderError) as caught:
        render(f"SELECT $args.{placeholder}", ARGUMENTS, {placeholder: value})
    assert message in str(caught.value)
    assert len(str(caught.value)) < 200  # a huge value is not echoed whole


@pytest.mark.parametrize(
    ("placeholder", "value"), [("f", float("nan")), ("i", 2**63), ("ts", "garbage")]
)
def test_inside_a_literal_too(placeholder: str, value: Any) -> None:
    with pytest.raises(RenderError):
        render(f"SELECT '<$args.{placeholder}>'", ARGUMENTS, {placeholder: value})


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ('SELECT "$args.s"', "inside a quoted identifier"),
        ("SELECT '$join_table(t)'", "inside a string literal"),
        ("SELECT U&'$args.s'", "inside a U&'...' literal"),
        ("SELECT $args.nope", "$args.nope: the field has no argument 'nope'"),
        ("SELECT $args.", "malformed placeholder"),
    ],
)
def test_statements_that_cannot_take_values_are_refused(sql: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        render(sql, ARGUMENTS, {"s": "x"})
    assert message in str(caught.value)


def test_placeholders_know_the_literal_they_stand_in() -> None:
    sql = "SELECT $args.a, 'x $args.b y', \"$args.c\""
    spans = [(p.context, p.enclosing) for p in find_placeholders(sql)]
    string = sql.index("'x")
    identifier = sql.index('"')
    assert spans == [
        (Context.CODE, None),
        (Context.STRING, (string, string + len("'x $args.b y'"))),
        (Context.IDENTIFIER, (identifier, len(sql))),
    ]


def test_duckdb_reads_each_literal_as_its_value() -> None:
    """The local engine runs the transpiled SQL: each literal keeps its value and type."""
    sql = "SELECT $args.s, $args.i, $args.f, $args.b, $args.ts, $args.tags, '<$args.s>'"
    values = {
        "s": "it's -- \\ /*",
        "i": -(2**63),
        "f": 0.1,
        "b": True,
        "ts": "2026-11-23T19:22:14.123Z",
        "tags": ["a", "b'c"],
    }
    (duck_sql,) = sqlglot.transpile(render(sql, ARGUMENTS, values), read="trino", write="duckdb")
    with duckdb.connect() as connection:
        row = connection.execute(duck_sql).fetchone()
    assert row == (
        values["s"],
        -(2**63),
        0.1,
        True,
        datetime(2026, 11, 23, 19, 22, 14, 123000),
        ["a", "b'c"],
        f"<{values['s']}>",
    )


@pytest.fixture(scope="module")
def example() -> SchemaModel:
    return load_schema(EXAMPLE, check_sql=True)


def sample(argument: Argument) -> Any:
    samples = {"String": "O'Brien -- x", "ID": "id-1'", "Int": -5, "Float": 2.5, "Boolean": True}
    return samples[argument.type.name]


def test_every_statement_of_the_example_schema_renders_to_trino_and_duckdb(
    example: SchemaModel,
) -> None:
    statements = [(t.sql, t.arguments, False) for t in example.query_tasks] + [
        (d.sql, d.arguments, True) for d in example.delete_mutations
    ]
    assert len(statements) == 5
    for sql, arguments, is_delete in statements:
        for values in ({a.name: sample(a) for a in arguments}, {}):
            rendered = render(sql, arguments, values)
            assert "$" not in rendered
            parsed = [s for s in sqlglot.parse(rendered, read="trino") if s is not None]
            assert len(parsed) == 1, rendered
            assert sqlglot.transpile(rendered, read="trino", write="duckdb")
            if is_delete:
                select = delete_to_select(rendered)
                assert sqlglot.transpile(select, read="trino", write="duckdb")


def test_the_example_prefix_search(example: SchemaModel) -> None:
    (task,) = [t for t in example.query_tasks if t.name == "brandPopularity"]
    rendered = render(task.sql, task.arguments, {"namePrefix": "Jo'"})
    assert "LIKE 'Jo''%' OR 'Jo''' IS NULL" in rendered
    assert "HAVING COUNT(*) >= 1" in rendered  # the default
    rendered = render(task.sql, task.arguments, {"minFavorites": 2})
    assert "LIKE NULL OR NULL IS NULL" in rendered
    assert "HAVING COUNT(*) >= 2" in rendered


def test_rendering_does_not_import_sqlglot() -> None:
    """It runs in the GraphQL function on every trigger; sqlglot takes ~75 ms to import."""
    code = "import sys, chalicelib.sql.render; assert 'sqlglot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_values_of_other_fields_are_ignored() -> None:
    assert render("SELECT 1", ARGUMENTS, {"other": object()}) == "SELECT 1"
