"""The local lake is plain Parquet in the S3 layout: DuckDB reads it offline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from chalicelib.lake.objects import DirectoryObjectStore
from chalicelib.lake.stream import process_stream_event
from chalicelib.schema.model import SchemaModel
from tests.lake.support import USER_ID, batch, captured, product_record


def files(root: Path, table: str) -> str:
    return (
        f"read_parquet('{root}/tables/{table}/*/*/*/*.parquet', hive_partitioning=true, "
        "hive_types={'year': INTEGER, 'month': VARCHAR, 'day': VARCHAR})"
    )


def test_duckdb_reads_the_directory_lake_with_hive_partitions(
    model: SchemaModel, lake: DirectoryObjectStore, sqs: Any, cascade_queue: str
) -> None:
    event = batch(
        captured("stream_insert_user"),
        captured("stream_insert_join_row"),
        product_record("INSERT", "p1", "2026-11-23T10:00:00.000Z", tags=["a", "b"]),
        product_record("INSERT", "p2", "2027-01-02T10:00:00.000Z"),
    )
    response = process_stream_event(
        event, model=model, object_store=lake, sqs_client=sqs, cascade_queue_url=cascade_queue
    )
    assert response == {"batchItemFailures": []}

    connection = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    user_files = files(lake.root, "user")
    described = connection.sql(f"DESCRIBE SELECT * FROM {user_files}").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["createdAt"] == "TIMESTAMP WITH TIME ZONE"
    assert types["luckyNumbers"] == "BIGINT[]"
    assert types["vip"] == "BOOLEAN"
    users = connection.sql(
        f"SELECT id, name, age, luckyNumbers, createdAt, year, month, day FROM {user_files}"
    ).to_arrow_table()
    assert users.to_pylist() == [
        {
            "id": USER_ID,
            "name": "Zoë Ångström 👩‍💻 東京",
            "age": 36,
            "luckyNumbers": [7, -3, 9007199254740993],
            "createdAt": datetime(2026, 11, 23, 23, 59, 59, 999000, tzinfo=UTC),
            "year": 2026,
            "month": "11",
            "day": "23",
        }
    ]
    products = connection.sql(
        f"SELECT id, tags, price, month FROM {files(lake.root, 'product')} ORDER BY id"
    ).fetchall()
    assert products == [("p1", ["a", "b"], 9.99, "11"), ("p2", None, 9.99, "01")]
    favorites = connection.sql(
        f"SELECT f.userId, u.name FROM {files(lake.root, 'user_favorite_products')} f "
        f"JOIN {user_files} u ON u.id = f.userId"
    ).fetchall()
    assert favorites == [(USER_ID, "Zoë Ångström 👩‍💻 東京")]
