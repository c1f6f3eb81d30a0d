"""Where placeholders are, by SQL's lexical rules: code, strings, identifiers, comments."""

from __future__ import annotations

import pytest

from chalicelib.sql.placeholders import (
    Context,
    Kind,
    Placeholder,
    PlaceholderSyntaxError,
    find_placeholders,
    substitute,
)


def test_finds_both_kinds_with_offsets_in_text_order() -> None:
    sql = "SELECT * FROM $join_table(favs) f WHERE f.userId = $args.userId"
    assert find_placeholders(sql) == (
        Placeholder(Kind.JOIN_TABLE, "favs", 14, 31, Context.CODE),
        Placeholder(Kind.ARGUMENT, "userId", 51, 63, Context.CODE),
    )
    assert [p.text for p in find_placeholders(sql)] == ["$join_table(favs)", "$args.userId"]


def test_an_argument_is_a_whole_identifier() -> None:
    (placeholder,) = find_placeholders("WHERE x = $args.city2_b+1")
    assert placeholder.name == "city2_b"
    assert placeholder.end == len("WHERE x = $args.city2_b")


def test_join_table_may_have_spaces_inside_its_parentheses() -> None:
    (placeholder,) = find_placeholders("FROM $join_table( favs )")
    assert (placeholder.name, placeholder.end) == ("favs", len("FROM $join_table( favs )"))


def test_context_of_each_placeholder() -> None:
    sql = "SELECT 'it''s $args.a%', \"$args.b\", $args.c"
    contexts = [(p.name, p.context) for p in find_placeholders(sql)]
    assert contexts == [("a", Context.STRING), ("b", Context.IDENTIFIER), ("c", Context.CODE)]


def test_comments_are_text() -> None:
    sql = "SELECT 1 -- $args.a\n/* $args.b\n$join_table(x) */ + $args.c"
    assert [p.name for p in find_placeholders(sql)] == ["c"]


def test_quote_characters_inside_comments_and_strings_do_not_open_anything() -> None:
    sql = "SELECT '--', '/*' -- it's\n, $args.a /* \" */ , \"a'b\" , $args.b"
    assert [(p.name, p.context) for p in find_placeholders(sql)] == [
        ("a", Context.CODE),
        ("b", Context.CODE),
    ]


def test_unterminated_string_runs_to_the_end() -> None:
    (placeholder,) = find_placeholders("SELECT 'abc $args.a")
    assert placeholder.context is Context.STRING


@pytest.mark.parametrize(
    ("sql", "offset"),
    [
        ("WHERE a = $args", 10),
        ("WHERE a = $args.", 10),
        ("WHERE a = $args.1x", 10),
        ("WHERE a = $argsx", 10),
        ("FROM $join_table", 5),
        ("FROM $join_table(a b)", 5),
        ("SELECT '$args'", 8),
        ("WHERE o = $identity", 10),
        ("WHERE o = $identity.email", 10),
        ("WHERE o = '$identity.'", 11),
    ],
)
def test_malformed_placeholders_are_errors(sql: str, offset: int) -> None:
    with pytest.raises(PlaceholderSyntaxError) as caught:
        find_placeholders(sql)
    assert caught.value.offset == offset
    assert "write $args.name, $join_table(name) or $identity.sub" in caught.value.message


def test_identity_placeholders_in_code_and_in_literals() -> None:
    found = find_placeholders(
        "WHERE o = $identity.sub AND n LIKE '%$identity.username' AND contains($identity.groups, g)"
    )

    assert [(p.kind, p.name, p.text) for p in found] == [
        (Kind.IDENTITY, "sub", "$identity.sub"),
        (Kind.IDENTITY, "username", "$identity.username"),
        (Kind.IDENTITY, "groups", "$identity.groups"),
    ]
    assert [p.enclosing is not None for p in found] == [False, True, False]


def test_other_dollars_are_text() -> None:
    assert find_placeholders("SELECT \"$path\", '$5', $$x") == ()


def test_substitute_replaces_in_one_pass() -> None:
    sql = "SELECT $args.a, '$args.b' FROM $join_table(t) -- $args.c"

    def render(placeholder: Placeholder) -> str:
        return "$args.b" if placeholder.name == "a" else f"<{placeholder.name}>"

    assert substitute(sql, render) == "SELECT $args.b, '<b>' FROM <t> -- $args.c"
