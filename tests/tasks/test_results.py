"""Athena's text rows read as GraphQL values of the result type."""

from __future__ import annotations

import pytest

from chalicelib.schema.model import Field, TypeKind, TypeRef
from chalicelib.tasks.engine import ResultPage
from chalicelib.tasks.results import ResultConversionError, RowReader, split_array


def scalar(name: str, *, non_null: bool = False, is_list: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, non_null=non_null, is_list=is_list)


ROW_TYPE = TypeRef("Row", TypeKind.OBJECT, non_null=True)
FIELDS = (
    Field("id", scalar("ID", non_null=True)),
    Field("total", scalar("Int")),
    Field("averagePrice", scalar("Float")),
    Field("vip", scalar("Boolean")),
    Field("createdAt", scalar("AWSDateTime")),
    Field("tags", scalar("String", is_list=True)),
    Field("scores", scalar("Int", is_list=True)),
    Field("status", TypeRef("Status", TypeKind.ENUM)),
)


def page(columns: tuple[str, ...], *rows: tuple[str | None, ...]) -> ResultPage:
    return ResultPage(columns, rows, None)


def test_columns_are_matched_to_fields_in_any_case_and_typed() -> None:
    reader = RowReader(ROW_TYPE, FIELDS, "Query.rows")
    columns = ("id", "total", "averageprice", "vip", "createdat", "tags", "scores", "status")
    rows = reader.read(
        page(
            columns,
            ("a", "3", "12.5", "true", "2026-11-23 19:22:14.123", "[x, y]", "[1, null]", "NEW"),
            ("b", None, "1.0E10", "false", "2026-01-02 03:04:05.000 UTC", "[]", None, None),
        )
    )

    assert rows == [
        {
            "id": "a",
            "total": 3,
            "averagePrice": 12.5,
            "vip": True,
            "createdAt": "2026-11-23T19:22:14.123Z",
            "tags": ["x", "y"],
            "scores": [1, None],
            "status": "NEW",
        },
        {
            "id": "b",
            "total": None,
            "averagePrice": 1e10,
            "vip": False,
            "createdAt": "2026-01-02T03:04:05.000Z",
            "tags": [],
            "scores": None,
            "status": None,
        },
    ]


def test_a_missing_nullable_column_is_null() -> None:
    reader = RowReader(ROW_TYPE, FIELDS[:2], "Query.rows")

    assert reader.read(page(("id",), ("a",))) == [{"id": "a", "total": None}]


def test_a_missing_non_null_column_names_the_field_and_the_columns() -> None:
    reader = RowReader(ROW_TYPE, FIELDS[:2], "Query.rows")

    with pytest.raises(ResultConversionError, match=r"no column id for the non-null field Row\.id"):
        reader.read(page(("total", "other"), ("1", "x")))


def test_a_scalar_result_reads_the_first_column() -> None:
    reader = RowReader(scalar("Int", non_null=True), (), "Query.count")

    assert reader.read(page(("_col0", "x"), ("42", "y"), ("7", "z"))) == [42, 7]


def test_whole_doubles_may_fill_an_int_but_fractions_may_not() -> None:
    reader = RowReader(scalar("Int"), (), "Query.count")

    assert reader.read(page(("n",), ("3.0",))) == [3]
    with pytest.raises(
        ResultConversionError, match=r"cannot read '3.5' of the first column as Int"
    ):
        reader.read(page(("n",), ("3.5",)))


@pytest.mark.parametrize(
    ("field", "text"),
    [
        (Field("total", scalar("Int")), "many"),
        (Field("total", scalar("Int")), str(2**63)),
        (Field("vip", scalar("Boolean")), "yes"),
        (Field("averagePrice", scalar("Float")), "cheap"),
        (Field("createdAt", scalar("AWSDateTime")), "yesterday"),
        (Field("tags", scalar("String", is_list=True)), "x, y"),
    ],
)
def test_text_the_type_cannot_take_is_a_clear_error(field: Field, text: str) -> None:
    reader = RowReader(ROW_TYPE, (field,), "Query.rows")

    with pytest.raises(
        ResultConversionError, match=f"Query.rows: cannot read .* of column {field.name.lower()}"
    ):
        reader.read(page((field.name.lower(),), (text,)))


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("[]", []),
        ("[a]", ["a"]),
        ("[a, b, null]", ["a", "b", None]),
        ("[[1, 2], [3]]", ["[1, 2]", "[3]"]),
        ("[a,b]", ["a,b"]),
    ],
)
def test_arrays_split_at_top_level_separators(text: str, elements: list[str | None]) -> None:
    assert split_array(text) == elements


def test_no_rows_need_no_columns() -> None:
    reader = RowReader(ROW_TYPE, FIELDS, "Query.rows")

    assert reader.read(page(())) == []
