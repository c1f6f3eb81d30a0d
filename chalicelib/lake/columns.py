"""The lake's column types: one mapping from GraphQL types, read by the files and the catalog.

The Parquet writer (``parquet.py``) and the Glue definitions (``catalog.py``) both
start from the :class:`TableSpec` built here, so a file's columns are the catalog's
columns by construction. This module stays free of pyarrow: the catalog is generated
where pyarrow is not installed (the GraphQL function, deployment).

GraphQL type -> lake type, and why where it is a choice:

- ID, String, enums, AWSEmail, AWSURL, AWSPhone, AWSIPAddress -> ``string``.
- AWSDate, AWSTime -> ``string``: their AppSync formats allow a zone offset
  (``1970-01-01Z``, ``12:30:00+01:00``) that neither Parquet ``date`` nor Glue ``date``
  can hold, and the ISO text still sorts and compares correctly.
- AWSJSON -> ``string``: Glue has no JSON type; Athena's ``json_extract`` reads text.
  A value stored as a map or list is written as canonical JSON text.
- Int -> ``bigint`` (int64); AWSTimestamp (epoch seconds) -> ``bigint`` too: it is an
  integer in DynamoDB and stays comparable with ``to_unixtime``.
- Float -> ``double``; Boolean -> ``boolean``.
- AWSDateTime -> ``timestamp``, stored as milliseconds since the epoch, UTC (the store
  keeps milliseconds, and Athena reads Parquet millisecond timestamps).
- Lists -> ``array<...>`` of the item's type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum

from chalicelib import keys
from chalicelib.schema.model import (
    INTEGER_RANGE,
    Entity,
    JoinTable,
    SchemaModel,
    TypeKind,
    TypeRef,
)


class LakeSchemaError(ValueError):
    """A schema type the lake has no column type for."""


class ColumnType(Enum):
    """A lake column's type; the value is its name in Glue (Hive DDL)."""

    STRING = "string"
    BIGINT = "bigint"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"


_SCALAR_TYPES: dict[str, ColumnType] = {
    "ID": ColumnType.STRING,
    "String": ColumnType.STRING,
    "Int": ColumnType.BIGINT,
    "Float": ColumnType.DOUBLE,
    "Boolean": ColumnType.BOOLEAN,
    "AWSDateTime": ColumnType.TIMESTAMP,
    "AWSTimestamp": ColumnType.BIGINT,
    "AWSDate": ColumnType.STRING,
    "AWSTime": ColumnType.STRING,
    "AWSJSON": ColumnType.STRING,
    "AWSEmail": ColumnType.STRING,
    "AWSURL": ColumnType.STRING,
    "AWSPhone": ColumnType.STRING,
    "AWSIPAddress": ColumnType.STRING,
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    is_list: bool = False

    @property
    def glue_type(self) -> str:
        return f"array<{self.type.value}>" if self.is_list else self.type.value


@dataclass(frozen=True)
class TableSpec:
    """One lake table: its folder under ``tables/``, its Glue table and its file columns."""

    name: str
    columns: tuple[Column, ...]
    # The column that names a row, as its object's file name does: what compaction and
    # the merged read (``chalicelib.lake.layers``) match a row's versions by.
    key: str = "id"


def column_type(ref: TypeRef) -> ColumnType:
    if ref.kind is TypeKind.ENUM:
        return ColumnType.STRING
    if ref.kind is TypeKind.SCALAR and ref.name in _SCALAR_TYPES:
        return _SCALAR_TYPES[ref.name]
    raise LakeSchemaError(f"no lake column type for {ref.sdl()}")


def entity_table(entity: Entity) -> TableSpec:
    """An entity's fields in schema order, the managed ``id``/``createdAt``/``updatedAt`` too."""
    columns = []
    for field in entity.fields:
        try:
            columns.append(Column(field.name, column_type(field.type), field.type.is_list))
        except LakeSchemaError as error:
            raise LakeSchemaError(f"{entity.name}.{field.name}: {error}") from None
    return TableSpec(entity.key, tuple(columns))


def join_row_table(table: JoinTable) -> TableSpec:
    """``relationId``, the typed columns (referenced ids), ``s3Key``, ``createdAt``."""
    return TableSpec(
        table.name,
        (
            Column(keys.JOIN_ROW_RELATION_ID, ColumnType.STRING),
            *(Column(column.name, ColumnType.STRING) for column in table.columns),
            Column(keys.LAKE_S3_KEY, ColumnType.STRING),
            Column(keys.CREATED_AT, ColumnType.TIMESTAMP),
        ),
        key=keys.JOIN_ROW_RELATION_ID,
    )


def lake_tables(model: SchemaModel) -> tuple[TableSpec, ...]:
    """Every lake table of the schema: the entities, then the join tables."""
    return (
        *(entity_table(entity) for entity in model.entities),
        *(join_row_table(table) for table in model.join_tables),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def parse_timestamp(text: str) -> datetime:
    """An AWSDateTime in UTC; a value without a zone is taken as UTC (the store writes UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_millis(moment: datetime) -> int:
    """Exact integer milliseconds: float seconds would round some values off by one."""
    return (moment - _EPOCH) // _MILLISECOND


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _to_string(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        raise TypeError("binary value in a string column")
    return json.dumps(
        value, default=_json_default, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )


def _to_bigint(value: object) -> int:
    if isinstance(value, Decimal) and value == value.to_integral_value():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise TypeError(f"{value!r} is not an integer")
    if number not in INTEGER_RANGE:
        raise ValueError(f"{number} does not fit in a 64-bit integer")
    return number


def _to_double(value: object) -> float:
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{value!r} is not a number")


def _to_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"{value!r} is not a boolean")


def _to_timestamp(value: object) -> int:
    if isinstance(value, str):
        return epoch_millis(parse_timestamp(value))
    raise TypeError(f"{value!r} is not an AWSDateTime")


_CONVERTERS: dict[ColumnType, Callable[[object], object]] = {
    ColumnType.STRING: _to_string,
    ColumnType.BIGINT: _to_bigint,
    ColumnType.DOUBLE: _to_double,
    ColumnType.BOOLEAN: _to_boolean,
    ColumnType.TIMESTAMP: _to_timestamp,
}


def converter(column: Column) -> Callable[[object], object]:
    """How a deserialized DynamoDB value becomes the column's plain Python value.

    None stays None; timestamps become epoch milliseconds. String and number sets come
    out of DynamoDB unordered, so they are sorted: the same item must always give the
    same bytes. A value that does not fit its column raises (TypeError or ValueError):
    the record is reported, never written half-right. Built once per column, so the
    per-row work is one call.
    """
    convert = _CONVERTERS[column.type]
    if not column.is_list:
        return lambda value: None if value is None else convert(value)

    def convert_list(value: object) -> object:
        if value is None:
            return None
        if isinstance(value, set | frozenset):
            value = sorted(value)
        if not isinstance(value, Iterable) or isinstance(value, str | bytes | dict):
            raise TypeError(f"{value!r} is not a list")
        return [None if item is None else convert(item) for item in value]

    return convert_list
