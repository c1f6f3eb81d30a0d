from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.lake.columns import (
    Column,
    ColumnType,
    LakeSchemaError,
    column_type,
    converter,
    entity_table,
    join_row_table,
    lake_tables,
)
from chalicelib.schema.model import AWS_SCALARS, BUILTIN_SCALARS, Entity, Field, TypeKind, TypeRef
from tests.lake.support import FAVORITES, USER, make_model, scalar, scalar_list

EXPECTED_GLUE_TYPES = {
    "ID": "string",
    "String": "string",
    "Int": "bigint",
    "Float": "double",
    "Boolean": "boolean",
    "AWSDateTime": "timestamp",
    "AWSDate": "string",
    "AWSTime": "string",
    "AWSTimestamp": "bigint",
    "AWSEmail": "string",
    "AWSJSON": "string",
    "AWSURL": "string",
    "AWSPhone": "string",
    "AWSIPAddress": "string",
}


def test_every_entity_scalar_has_a_column_type() -> None:
    assert set(EXPECTED_GLUE_TYPES) == {*BUILTIN_SCALARS, *AWS_SCALARS}
    for name, glue_type in EXPECTED_GLUE_TYPES.items():
        assert Column("c", column_type(scalar(name))).glue_type == glue_type
        assert Column("c", column_type(scalar_list(name)), True).glue_type == f"array<{glue_type}>"


def test_enums_are_strings() -> None:
    assert column_type(TypeRef("Role", TypeKind.ENUM)) is ColumnType.STRING


@pytest.mark.parametrize(
    "ref", [TypeRef("Address", TypeKind.OBJECT), scalar("Money"), scalar_list("Money")]
)
def test_types_without_a_column_are_refused_with_the_field(ref: TypeRef) -> None:
    entity = Entity("Order", (Field("id", scalar("ID")), Field("total", ref)))
    with pytest.raises(LakeSchemaError, match=r"Order\.total: no lake column type for"):
        entity_table(entity)


def test_entity_table_keeps_schema_order_with_managed_fields() -> None:
    spec = entity_table(USER)
    assert spec.name == "user"
    assert [c.name for c in spec.columns] == [f.name for f in USER.fields]
    assert spec.columns[0] == Column("id", ColumnType.STRING)
    assert spec.columns[-2:] == (
        Column("createdAt", ColumnType.TIMESTAMP),
        Column("updatedAt", ColumnType.TIMESTAMP),
    )
    assert Column("logins", ColumnType.TIMESTAMP, True) in spec.columns


def test_join_row_table_columns() -> None:
    spec = join_row_table(FAVORITES)
    assert spec.name == "user_favorite_products"
    assert [(c.name, c.glue_type) for c in spec.columns] == [
        ("relationId", "string"),
        ("userId", "string"),
        ("productId", "string"),
        ("s3Key", "string"),
        ("createdAt", "timestamp"),
    ]


def test_lake_tables_are_entities_then_join_tables() -> None:
    assert [t.name for t in lake_tables(make_model())] == [
        "user",
        "product",
        "user_favorite_products",
    ]


STRING = Column("c", ColumnType.STRING)
BIGINT = Column("c", ColumnType.BIGINT)
DOUBLE = Column("c", ColumnType.DOUBLE)
BOOLEAN = Column("c", ColumnType.BOOLEAN)
TIMESTAMP = Column("c", ColumnType.TIMESTAMP)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (STRING, "Zoë 👩‍💻", "Zoë 👩‍💻"),
        (STRING, {"b": [Decimal("1"), Decimal("1.5")], "a": True}, '{"a":true,"b":[1,1.5]}'),
        (BIGINT, Decimal("9007199254740993"), 9007199254740993),
        (BIGINT, Decimal("-3"), -3),
        (DOUBLE, Decimal("98.6"), 98.6),
        (DOUBLE, Decimal("2"), 2.0),
        (BOOLEAN, False, False),
        (TIMESTAMP, "2026-11-23T23:59:59.999Z", 1795478399999),
        (TIMESTAMP, "2026-11-24T01:59:59.999+02:00", 1795478399999),
        (TIMESTAMP, "2026-11-23T23:59:59.999", 1795478399999),
        (TIMESTAMP, "2026-11-23T23:59:59.999999Z", 1795478399999),
        (STRING, None, None),
        (Column("c", ColumnType.STRING, True), {"b", "a"}, ["a", "b"]),
        (Column("c", ColumnType.BIGINT, True), {Decimal("2"), Decimal("1")}, [1, 2]),
        (Column("c", ColumnType.BIGINT, True), [Decimal("2"), None], [2, None]),
        (Column("c", ColumnType.TIMESTAMP, True), ["1970-01-01T00:00:00.001Z"], [1]),
    ],
)
def test_converted_values(column: Column, value: object, expected: object) -> None:
    assert converter(column)(value) == expected


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (BIGINT, Decimal("1.5")),
        (BIGINT, True),
        (BIGINT, "1"),
        (DOUBLE, "1.5"),
        (BOOLEAN, Decimal("1")),
        (TIMESTAMP, Decimal("1795967999")),
        (TIMESTAMP, "yesterday"),
        (Column("c", ColumnType.STRING, True), "abc"),
        (STRING, b"\x00"),
    ],
)
def test_values_that_do_not_fit_are_errors(column: Column, value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        converter(column)(value)
