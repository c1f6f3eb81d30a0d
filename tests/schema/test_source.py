"""Positions in the user's file survive inserted return types, escapes and dedenting."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.schema import SchemaError, load_schema

ENTITIES = "type User {\n  id: ID!\n}\n"


def problem_at(tmp_path: Path, sdl: str, *, newline: str = "\n") -> tuple[str, int, int]:
    path = tmp_path / "schema.graphql"
    path.write_bytes(sdl.replace("\n", newline).encode())
    with pytest.raises(SchemaError) as caught:
        load_schema(path)
    first = caught.value.problems[0]
    return first.rule, first.line, first.column


def test_columns_after_an_inserted_return_type_are_the_files(tmp_path: Path) -> None:
    sdl = ENTITIES + 'type Mutation {\n  m(a: ID!) @sql_query(query: "DELETE $args.b")\n}\n'
    assert problem_at(tmp_path, sdl) == ("delete-syntax", 5, 39)


def test_escapes_in_a_string_do_not_shift_the_column(tmp_path: Path) -> None:
    sql = r"SELECT \"u\u0073er\"\t $args.x"
    sdl = ENTITIES + f'type Query {{\n  q: Int @sql_query(query: "{sql}")\n}}\n'
    assert problem_at(tmp_path, sdl) == ("unknown-argument", 5, 52)


BLOCK = (
    "type Query {\n"
    '  q: Int @sql_query(query: """\n'
    "\n"
    '\t  SELECT \'\\"""\' AS x,\n'
    "\t    $args.x\n"
    '  """)\n'
    "}\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_lines_inside_a_block_string(tmp_path: Path, newline: str) -> None:
    assert problem_at(tmp_path, ENTITIES + BLOCK, newline=newline) == ("unknown-argument", 8, 6)


def test_block_string_on_one_line(tmp_path: Path) -> None:
    sdl = ENTITIES + 'type Query {\n  q: Int @sql_query(query: """  SELECT $args.x """)\n}\n'
    assert problem_at(tmp_path, sdl) == ("unknown-argument", 5, 40)


def test_syntax_error_after_an_inserted_return_type(tmp_path: Path) -> None:
    sdl = ENTITIES + 'type Mutation {\n  m(a: ID!) @sql_query(query: "x") ]\n}\n'
    assert problem_at(tmp_path, sdl) == ("syntax", 5, 36)


@pytest.mark.parametrize(
    ("raw", "line", "column"),
    [
        (b"\xff\xfetype User { id: ID! }", 1, 1),
        (b"type User {\n  id: ID!\n  n\xe9: String\n}\n", 3, 4),
    ],
)
def test_a_file_that_is_not_utf8_is_an_encoding_error_at_the_bad_byte(
    tmp_path: Path, raw: bytes, line: int, column: int
) -> None:
    path = tmp_path / "schema.graphql"
    path.write_bytes(raw)

    with pytest.raises(SchemaError) as caught:
        load_schema(path)

    (problem,) = caught.value.problems
    assert (problem.rule, problem.line, problem.column) == ("encoding", line, column)
    assert str(problem).startswith(f"{path}:{line}:{column}: [encoding] the file is not UTF-8")
