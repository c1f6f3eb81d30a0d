"""The Glue catalog of the lake (DESIGN §4): one external Parquet table per layer of each
lake table (``chalicelib.lake.layers``: ``t__live``, ``t__compacted``, ``t__deleted``);
task SQL reads a lake table through the three.

The definitions are pure data built from the same :class:`TableSpec` as the files, so
local start-up (``ensure_catalog``) and deployment (CloudFormation) describe the files
exactly as the stream handler writes them.

Column names are lower-cased: Glue wants lower-case names and Athena lower-cases every
identifier anyway, while it matches Parquet columns (``createdAt``) by name without
regard to case. The files keep the schema's spelling for pandas and DuckDB users.

Partitions are projected, never registered: ``year``/``month``/``day`` are computed
from the table properties. The year is an integer range. Athena's ``NOW`` bound exists
only for date projections, and the range must cover every ``createdAt``, which the
store stamps at write time, so no row predates the product: 2020 is a safe floor and
2099 leaves decades of headroom. A query without a date filter projects
80 x 12 x 31 = 29,760 partitions (missing ones are simply empty), far below Athena's
cap of one million.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib import keys
from chalicelib.lake.layers import Layer, lake_layers
from chalicelib.schema.model import SchemaModel

DEFAULT_YEARS = (2020, 2099)
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
# As ``keys.lake_object_key`` spells them in object keys.


def table_location(bucket: str, layer: Layer) -> str:
    return f"s3://{bucket}/{layer.prefix}"


def _projection(location: str, years: tuple[int, int]) -> dict[str, str]:
    first_year, last_year = years
    template = "".join(f"{name}=${{{name}}}/" for name in keys.PARTITION_KEYS)
    return {
        "projection.enabled": "true",
        "projection.year.type": "integer",
        "projection.year.range": f"{first_year},{last_year}",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "projection.month.digits": "2",
        "projection.day.type": "integer",
        "projection.day.range": "1,31",
        "projection.day.digits": "2",
        "storage.location.template": f"{location}{template}",
    }


def glue_table_input(
    layer: Layer, bucket: str, *, years: tuple[int, int] = DEFAULT_YEARS
) -> dict[str, Any]:
    """The ``TableInput`` of one layer of a lake table, as ``glue.create_table`` takes it."""
    location = table_location(bucket, layer)
    spec = layer.spec
    return {
        "Name": spec.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "parquet.compression": "SNAPPY",
            **_projection(location, years),
        },
        "StorageDescriptor": {
            "Columns": [
                {"Name": column.name.lower(), "Type": column.glue_type} for column in spec.columns
            ],
            "Location": location,
            "InputFormat": PARQUET_INPUT_FORMAT,
            "OutputFormat": PARQUET_OUTPUT_FORMAT,
            "SerdeInfo": {
                "SerializationLibrary": PARQUET_SERDE,
                "Parameters": {"serialization.format": "1"},
            },
        },
        "PartitionKeys": [{"Name": name, "Type": "string"} for name in keys.PARTITION_KEYS],
    }


def glue_table_inputs(
    model: SchemaModel, bucket: str, *, years: tuple[int, int] = DEFAULT_YEARS
) -> list[dict[str, Any]]:
    """One ``TableInput`` per layer of each entity's and each join table's lake table."""
    return [glue_table_input(layer, bucket, years=years) for layer in lake_layers(model)]


def ensure_catalog(
    glue_client: Any,
    database: str,
    model: SchemaModel,
    bucket: str,
    *,
    years: tuple[int, int] = DEFAULT_YEARS,
) -> None:
    """Create the database and tables, or bring existing tables up to the schema.

    Tables of types no longer in the schema are left alone: dropping catalog entries is
    a decision for whoever removed the type, not for a start-up.
    """
    with contextlib.suppress(glue_client.exceptions.AlreadyExistsException):
        glue_client.create_database(DatabaseInput={"Name": database})
    for table_input in glue_table_inputs(model, bucket, years=years):
        try:
            glue_client.create_table(DatabaseName=database, TableInput=table_input)
        except glue_client.exceptions.AlreadyExistsException:
            glue_client.update_table(DatabaseName=database, TableInput=table_input)
