"""One lake row -> the bytes of its Parquet file.

The only module that imports pyarrow, and only the stream path imports it: the
GraphQL function ships without pyarrow (too big for Lambda next to everything else).

Arrays are assembled from their buffers rather than converted from Python objects:
``pa.array`` and ``pa.scalar`` import pandas whenever it is installed (to recognise
pandas values), which would cost the stream handler a pandas import in local mode,
and the buffers of a one-row array are a few packed bytes, cheaper than conversion.

Every call must give the same bytes for the same row, so a redelivered stream record
rewrites an identical object: no wall-clock metadata is written (Parquet has none; the
``created_by`` string is the pyarrow version), columns come in the spec's order, and
statistics are off. Statistics would also copy long strings into the footer twice
(min and max), and one-row files gain nothing from them or from dictionary pages.
The Arrow schema is not embedded either: the Parquet logical types already read back
as the same Arrow types, and it would add several hundred bytes to every file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq

from chalicelib.lake.columns import Column, ColumnType, TableSpec, converter

_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.BIGINT: pa.int64(),
    ColumnType.DOUBLE: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.TIMESTAMP: pa.timestamp("ms", tz="UTC"),
}
# struct formats of fixed-width values: little-endian, as Arrow buffers are.
_FIXED_WIDTH = {ColumnType.BIGINT: "q", ColumnType.DOUBLE: "d", ColumnType.TIMESTAMP: "q"}

_WRITE_OPTIONS = {
    "compression": "snappy",
    "use_dictionary": False,
    "write_statistics": False,
    "store_schema": False,
}

# Plain values (as ``columns.converter`` makes them, None for null) -> an Arrow array.
ArrayBuilder = Callable[[Sequence[Any]], pa.Array]


@cache
def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The file schema of a lake table; every column is nullable (a missing field is null).

    List items are named ``element``, as the Parquet list layout names them, so a file
    read back has exactly this schema.
    """
    fields = []
    for column in spec.columns:
        arrow_type = _ARROW_TYPES[column.type]
        if column.is_list:
            arrow_type = pa.list_(pa.field("element", arrow_type))
        fields.append(pa.field(column.name, arrow_type))
    return pa.schema(fields)


def _bitmap(flags: Sequence[bool]) -> pa.Buffer:
    bits = sum(1 << index for index, flag in enumerate(flags) if flag)
    return pa.py_buffer(bits.to_bytes((len(flags) + 7) // 8, "little"))


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    nulls = sum(value is None for value in values)
    return (_bitmap([value is not None for value in values]) if nulls else None), nulls


def _string_array(values: Sequence[Any]) -> pa.Array:
    validity, nulls = _validity(values)
    encoded = [b"" if value is None else value.encode() for value in values]
    offsets = struct.pack(f"<{len(values) + 1}i", *accumulate(map(len, encoded), initial=0))
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
        null_count=nulls,
    )


def _boolean_array(values: Sequence[Any]) -> pa.Array:
    validity, nulls = _validity(values)
    data = _bitmap([value is True for value in values])
    return pa.Array.from_buffers(pa.bool_(), len(values), [validity, data], null_count=nulls)


def _fixed_width_builder(column_type: ColumnType) -> ArrayBuilder:
    arrow_type, code = _ARROW_TYPES[column_type], _FIXED_WIDTH[column_type]

    def build(values: Sequence[Any]) -> pa.Array:
        validity, nulls = _validity(values)
        fixed = [0 if value is None else value for value in values]
        data = pa.py_buffer(struct.pack(f"<{len(values)}{code}", *fixed))
        return pa.Array.from_buffers(arrow_type, len(values), [validity, data], null_count=nulls)

    return build


def _list_builder(list_type: pa.DataType, items: ArrayBuilder) -> ArrayBuilder:
    def build(values: Sequence[Any]) -> pa.Array:
        validity, nulls = _validity(values)
        lists = [[] if value is None else cast(list[Any], value) for value in values]
        offsets = struct.pack(f"<{len(values) + 1}i", *accumulate(map(len, lists), initial=0))
        return pa.Array.from_buffers(
            list_type,
            len(values),
            [validity, pa.py_buffer(offsets)],
            null_count=nulls,
            children=[items([item for value in lists for item in value])],
        )

    return build


def _builder(column: Column, arrow_type: pa.DataType) -> ArrayBuilder:
    values: ArrayBuilder
    if column.type is ColumnType.STRING:
        values = _string_array
    elif column.type is ColumnType.BOOLEAN:
        values = _boolean_array
    else:
        values = _fixed_width_builder(column.type)
    return _list_builder(arrow_type, values) if column.is_list else values


@dataclass(frozen=True)
class _ColumnPlan:
    name: str
    convert: Callable[[object], object]
    build: ArrayBuilder


@dataclass(frozen=True)
class _Plan:
    schema: pa.Schema
    columns: tuple[_ColumnPlan, ...]


@cache
def _plan(spec: TableSpec) -> _Plan:
    """Per column, the converter and array builder, chosen once per table, not per row."""
    schema = arrow_schema(spec)
    return _Plan(
        schema,
        tuple(
            _ColumnPlan(column.name, converter(column), _builder(column, field.type))
            for column, field in zip(spec.columns, schema, strict=True)
        ),
    )


def encode_row(spec: TableSpec, values: Mapping[str, object]) -> bytes:
    """The Parquet file of one row: ``values`` are deserialized attributes by column name.

    Attributes that are not columns are ignored; a column without a value is null.
    """
    plan = _plan(spec)
    arrays = []
    for column in plan.columns:
        try:
            value = column.convert(values.get(column.name))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{spec.name}.{column.name}: {error}") from error
        arrays.append(column.build([value]))
    sink = pa.BufferOutputStream()
    table = pa.Table.from_arrays(arrays, schema=plan.schema)
    pq.write_table(table, sink, **_WRITE_OPTIONS)
    data: bytes = sink.getvalue().to_pybytes()
    return data
