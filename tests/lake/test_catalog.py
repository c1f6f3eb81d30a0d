from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib import keys
from chalicelib.lake.catalog import ensure_catalog, glue_table_inputs
from chalicelib.lake.columns import lake_tables
from chalicelib.lake.compaction import compact_lake
from chalicelib.lake.layers import lake_layers, layer_name
from chalicelib.lake.objects import DirectoryObjectStore
from chalicelib.lake.parquet import encode_row
from chalicelib.lake.stream import process_stream_event
from chalicelib.schema.model import Entity, Field, SchemaModel
from tests.lake.support import (
    BUCKET,
    PRODUCT,
    REGION,
    USER,
    batch,
    captured,
    make_model,
    product_record,
    scalar,
)

DATABASE = "shop_db"


@pytest.fixture
def glue(aws: None) -> Any:
    return boto3.client("glue", region_name=REGION)


def glue_type(arrow_type: pa.DataType) -> str:
    """An Arrow type read back from a file, named as Glue names it."""
    if pa.types.is_list(arrow_type):
        return f"array<{glue_type(arrow_type.value_type)}>"
    if pa.types.is_timestamp(arrow_type):
        assert (arrow_type.unit, arrow_type.tz) == ("ms", "UTC")
        return "timestamp"
    names = {
        pa.string(): "string",
        pa.int64(): "bigint",
        pa.float64(): "double",
        pa.bool_(): "boolean",
    }
    return names[arrow_type]


def written_schemas(model: SchemaModel, tmp_path: Path, sqs: Any) -> dict[str, pa.Schema]:
    """The schema of one real file per lake table, written by the stream handler."""
    lake = DirectoryObjectStore(tmp_path / "lake")
    queue = sqs.create_queue(QueueName="cascade")["QueueUrl"]
    folded = batch(
        captured("stream_insert_user"),
        captured("stream_insert_join_row"),
        product_record("INSERT", "p1", "2026-11-23T10:00:00.000Z"),
    )
    live = batch(
        captured("stream_modify_user"),
        captured("stream_remove_join_row"),
        product_record("INSERT", "p2", "2026-11-23T10:00:00.000Z"),
        product_record("REMOVE", "p1", "2026-11-23T10:00:00.000Z"),
    )
    for event in (folded, live):
        response = process_stream_event(
            event, model=model, object_store=lake, sqs_client=sqs, cascade_queue_url=queue
        )
        assert response == {"batchItemFailures": []}
        if event is folded:
            compact_lake(model, lake)
    schemas = {}
    kinds = {layer.prefix.split("/")[0]: layer.kind for layer in lake_layers(model)}
    for path in sorted(lake.root.rglob("*.parquet")):
        prefix, table = path.relative_to(lake.root).parts[:2]
        schemas[layer_name(table, kinds[prefix])] = pq.read_schema(path)
    return schemas


def test_glue_tables_match_the_files_column_for_column(
    glue: Any, model: SchemaModel, tmp_path: Path
) -> None:
    ensure_catalog(glue, DATABASE, model, BUCKET)
    schemas = written_schemas(model, tmp_path, boto3.client("sqs", region_name=REGION))
    assert set(schemas) == {
        "user__live",
        "user__compacted",
        "product__live",
        "product__compacted",
        "product__deleted",
        "user_favorite_products__compacted",
        "user_favorite_products__deleted",
    }
    for name, schema in schemas.items():
        table = glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]
        columns = table["StorageDescriptor"]["Columns"]
        assert [(c["Name"], c["Type"]) for c in columns] == [
            (field.name.lower(), glue_type(field.type)) for field in schema
        ]


def test_glue_tables_describe_partitioned_parquet(glue: Any, model: SchemaModel) -> None:
    ensure_catalog(glue, DATABASE, model, BUCKET)
    assert glue.get_database(Name=DATABASE)["Database"]["Name"] == DATABASE
    table = glue.get_table(DatabaseName=DATABASE, Name="user_favorite_products__live")["Table"]
    location = f"s3://{BUCKET}/tables/user_favorite_products/"
    for kind, prefix in (("compacted", "compacted"), ("deleted", "deleted")):
        layer = glue.get_table(DatabaseName=DATABASE, Name=f"user_favorite_products__{kind}")
        storage = layer["Table"]["StorageDescriptor"]
        assert storage["Location"] == f"s3://{BUCKET}/{prefix}/user_favorite_products/"
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["PartitionKeys"] == [
        {"Name": "year", "Type": "string"},
        {"Name": "month", "Type": "string"},
        {"Name": "day", "Type": "string"},
    ]
    storage = table["StorageDescriptor"]
    assert storage["Location"] == location
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    assert storage["OutputFormat"].endswith("MapredParquetOutputFormat")
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert table["Parameters"] == {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "parquet.compression": "SNAPPY",
        "projection.enabled": "true",
        "projection.year.type": "integer",
        "projection.year.range": "2020,2099",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "projection.month.digits": "2",
        "projection.day.type": "integer",
        "projection.day.range": "1,31",
        "projection.day.digits": "2",
        "storage.location.template": location + "year=${year}/month=${month}/day=${day}/",
    }


def test_projection_template_matches_the_object_keys() -> None:
    user_input = glue_table_inputs(make_model(entities=(USER,), join_tables=()), BUCKET)[0]
    assert user_input["Name"] == "user__live"
    template = user_input["Parameters"]["storage.location.template"]
    prefix = template.replace("${year}", "2026").replace("${month}", "11").replace("${day}", "03")
    assert (
        f"s3://{BUCKET}/" + keys.lake_object_key("user", "2026-11-03T00:00:00.000Z", "u1")
        == prefix + "u1.parquet"
    )


def test_ensure_catalog_is_idempotent_and_follows_the_schema(glue: Any) -> None:
    ensure_catalog(glue, DATABASE, make_model(), BUCKET)
    ensure_catalog(glue, DATABASE, make_model(), BUCKET)
    grown = Entity("Product", (*PRODUCT.fields, Field("stock", scalar("Int"))))
    ensure_catalog(glue, DATABASE, make_model(entities=(USER, grown)), BUCKET, years=(2024, 2030))
    table = glue.get_table(DatabaseName=DATABASE, Name="product__live")["Table"]
    assert table["StorageDescriptor"]["Columns"][-1] == {"Name": "stock", "Type": "bigint"}
    assert table["Parameters"]["projection.year.range"] == "2024,2030"
    names = [t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]]
    assert sorted(names) == sorted(
        f"{table}__{kind}"
        for table in ("product", "user", "user_favorite_products")
        for kind in ("live", "compacted", "deleted")
    )


def test_table_inputs_are_one_per_layer_of_each_lake_table_in_order(model: SchemaModel) -> None:
    inputs = glue_table_inputs(model, BUCKET)
    assert [i["Name"] for i in inputs] == [
        f"{t.name}__{kind}" for t in lake_tables(model) for kind in ("live", "compacted", "deleted")
    ]


def test_every_glue_type_reads_back_from_a_file(model: SchemaModel) -> None:
    layers = lake_layers(model)
    for layer, table_input in zip(layers, glue_table_inputs(model, BUCKET), strict=True):
        schema = pq.read_schema(io.BytesIO(encode_row(layer.spec, {})))
        columns = table_input["StorageDescriptor"]["Columns"]
        assert [c["Type"] for c in columns] == [glue_type(f.type) for f in schema]
