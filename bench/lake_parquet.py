"""Stream image -> Parquet bytes, records per second: the lake's writer vs pandas.

Both start from a DynamoDB stream image of the example schema's User and end with the
SNAPPY Parquet bytes of its one-row file, deserializing with boto3's TypeDeserializer.
The pandas way is the one the writer replaces: a one-row DataFrame, each column cast
to its schema type, ``pa.Table.from_pandas``, ``pq.write_table``. Target: the writer
at least 15x faster.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from boto3.dynamodb.types import TypeDeserializer

from bench._lake import USER, user_image
from chalicelib.lake.columns import ColumnType, TableSpec, entity_table
from chalicelib.lake.parquet import arrow_schema, encode_row

ROUNDS = 5
ROUND_SECONDS = 0.5
_deserialize = TypeDeserializer().deserialize
_PANDAS_DTYPES = {
    ColumnType.STRING: "string",
    ColumnType.BIGINT: "Int64",
    ColumnType.DOUBLE: "Float64",
    ColumnType.BOOLEAN: "boolean",
}


def with_pyarrow(spec: TableSpec, image: Mapping[str, Any]) -> bytes:
    """The stream handler's path: only the catalog's attributes, straight to Arrow."""
    values = {c.name: _deserialize(image[c.name]) for c in spec.columns if c.name in image}
    return encode_row(spec, values)


def with_pandas(spec: TableSpec, image: Mapping[str, Any]) -> bytes:
    item = {name: _deserialize(value) for name, value in image.items()}
    frame = pd.DataFrame([{column.name: item.get(column.name) for column in spec.columns}])
    for column in spec.columns:
        series = frame[column.name]
        if column.type is ColumnType.TIMESTAMP:
            frame[column.name] = pd.to_datetime(series, utc=True).dt.as_unit("ms")
        elif column.type in (ColumnType.BIGINT, ColumnType.DOUBLE):
            frame[column.name] = pd.to_numeric(series).astype(_PANDAS_DTYPES[column.type])
        else:
            frame[column.name] = series.astype(_PANDAS_DTYPES[column.type])
    table = pa.Table.from_pandas(frame, schema=arrow_schema(spec), preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def rate(convert: Callable[[TableSpec, Mapping[str, Any]], bytes], spec: TableSpec) -> float:
    """Median records per second over several timed rounds, after a warm-up."""
    images = [user_image(number) for number in range(100)]
    for image in images[:10]:
        convert(spec, image)
    rates = []
    for _ in range(ROUNDS):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
            for image in images:
                convert(spec, image)
            count += len(images)
        rates.append(count / elapsed)
    return statistics.median(rates)


def rows(data: bytes) -> list[dict[str, Any]]:
    table = pq.read_table(io.BytesIO(data), use_threads=False)
    content: list[dict[str, Any]] = table.to_pylist()
    return content


def main() -> None:
    spec = entity_table(USER)
    image = user_image(1)
    same = rows(with_pyarrow(spec, image)) == rows(with_pandas(spec, image))
    fast, slow = rate(with_pyarrow, spec), rate(with_pandas, spec)
    print(f"entity: {USER.name} ({len(spec.columns)} columns); same rows both ways: {same}")
    print(f"pyarrow (lake writer):  {fast:10,.0f} records/s  ({1e6 / fast:7.1f} us/record)")
    print(f"pandas per record:      {slow:10,.0f} records/s  ({1e6 / slow:7.1f} us/record)")
    print(f"speed-up: {fast / slow:.1f}x (target >= 15x)")


if __name__ == "__main__":
    main()
