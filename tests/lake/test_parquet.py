from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from boto3.dynamodb.types import TypeDeserializer

from chalicelib.lake.columns import ColumnType, entity_table, join_row_table
from chalicelib.lake.parquet import _ARROW_TYPES, arrow_schema, encode_row
from tests.lake.support import FAVORITES, USER, USER_ID, load_event

USER_TABLE = entity_table(USER)
EXPECTED_USER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("age", pa.int64()),
        ("vip", pa.bool_()),
        ("score", pa.float64()),
        ("role", pa.string()),
        ("tags", pa.list_(pa.field("element", pa.string()))),
        ("luckyNumbers", pa.list_(pa.field("element", pa.int64()))),
        ("birthday", pa.string()),
        ("wakeUpAt", pa.string()),
        ("lastSeenAt", pa.int64()),
        ("preferences", pa.string()),
        ("website", pa.string()),
        ("phone", pa.string()),
        ("lastIp", pa.string()),
        ("logins", pa.list_(pa.field("element", pa.timestamp("ms", tz="UTC")))),
        ("createdAt", pa.timestamp("ms", tz="UTC")),
        ("updatedAt", pa.timestamp("ms", tz="UTC")),
    ]
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def inserted_user() -> dict[str, Any]:
    image = load_event("stream_insert_user")["Records"][0]["dynamodb"]["NewImage"]
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in image.items()}


def test_every_column_type_has_an_arrow_type() -> None:
    assert set(_ARROW_TYPES) == set(ColumnType)


def test_user_file_reads_back_with_pyarrow() -> None:
    data = encode_row(USER_TABLE, inserted_user())
    table = pq.read_table(io.BytesIO(data), use_threads=False)
    assert table.schema.equals(EXPECTED_USER_SCHEMA)
    assert table.schema.equals(arrow_schema(USER_TABLE))
    assert table.to_pylist() == [
        {
            "id": USER_ID,
            "name": "Zoë Ångström 👩‍💻 東京",
            "email": "zoe@example.com",
            "age": 36,
            "vip": None,
            "score": 98.6,
            "role": "ADMIN",
            "tags": ["alpha", "βeta"],
            "luckyNumbers": [7, -3, 9007199254740993],
            "birthday": "1990-02-28",
            "wakeUpAt": "07:30:00.000Z",
            "lastSeenAt": 1795461734,
            "preferences": '{"theme":"dark","lang":"fr"}',
            "website": "https://example.com/zoë",
            "phone": None,
            "lastIp": "2001:db8::1",
            "logins": [utc("2026-11-20T08:00:00.000Z"), utc("2026-11-23T23:59:59.999Z")],
            "createdAt": utc("2026-11-23T23:59:59.999Z"),
            "updatedAt": utc("2026-11-23T23:59:59.999Z"),
        }
    ]


def test_user_file_reads_back_with_pandas() -> None:
    data = encode_row(USER_TABLE, inserted_user())
    frame = pd.read_parquet(io.BytesIO(data), use_threads=False)
    assert list(frame.columns) == EXPECTED_USER_SCHEMA.names
    assert str(frame["createdAt"].dtype) == "datetime64[ms, UTC]"
    assert frame["createdAt"][0] == pd.Timestamp("2026-11-23T23:59:59.999Z")
    assert frame["age"].dtype == "int64" and frame["age"][0] == 36
    assert frame["score"].dtype == "float64"
    assert frame["name"][0] == "Zoë Ångström 👩‍💻 東京"
    assert list(frame["luckyNumbers"][0]) == [7, -3, 9007199254740993]
    assert pd.isna(frame["vip"][0]) and pd.isna(frame["phone"][0])


def test_missing_fields_are_nulls_and_extra_attributes_are_ignored() -> None:
    data = encode_row(USER_TABLE, {"id": "u1", "PK": "user#u1", "entityType": "user"})
    table = pq.read_table(io.BytesIO(data), use_threads=False)
    assert table.schema.equals(EXPECTED_USER_SCHEMA)
    row = table.to_pylist()[0]
    assert row.pop("id") == "u1"
    assert set(row.values()) == {None}


def test_file_is_snappy_without_statistics() -> None:
    metadata = pq.ParquetFile(io.BytesIO(encode_row(USER_TABLE, inserted_user()))).metadata
    assert metadata.num_rows == 1 and metadata.num_row_groups == 1
    for index in range(metadata.num_columns):
        column = metadata.row_group(0).column(index)
        assert column.compression == "SNAPPY"
        assert column.statistics is None


def test_same_row_gives_the_same_bytes() -> None:
    first = encode_row(USER_TABLE, inserted_user())
    shuffled = dict(reversed(list(inserted_user().items())))
    assert encode_row(USER_TABLE, shuffled) == first
    # A DynamoDB number set has no order; the file must not depend on it.
    number_set = {Decimal(n) for n in ("3", "1", "2")}
    assert encode_row(USER_TABLE, {"luckyNumbers": number_set}) == encode_row(
        USER_TABLE, {"luckyNumbers": [Decimal(1), Decimal(2), Decimal(3)]}
    )


def test_a_120_kb_text_stays_small() -> None:
    name = ("The quick brown fox jumps over the lazy dog. " * 3000)[:120_000]
    data = encode_row(USER_TABLE, {**inserted_user(), "name": name})
    assert len(data) <= 8 * 1024
    assert pq.read_table(io.BytesIO(data), use_threads=False).column("name").to_pylist() == [name]


def test_join_row_file() -> None:
    spec = join_row_table(FAVORITES)
    values = {
        "relationId": "r1",
        "userId": "u1",
        "productId": "p1",
        "s3Key": "tables/user_favorite_products/year=2026/month=12/day=31/r1.parquet",
        "createdAt": "2026-12-31T23:59:59.999Z",
        "tableName": "user_favorite_products",
    }
    table = pq.read_table(io.BytesIO(encode_row(spec, values)), use_threads=False)
    assert table.schema.names == ["relationId", "userId", "productId", "s3Key", "createdAt"]
    assert table.to_pylist()[0] == {
        **{k: v for k, v in values.items() if k not in ("createdAt", "tableName")},
        "createdAt": utc("2026-12-31T23:59:59.999Z"),
    }


def test_a_value_that_does_not_fit_names_the_column() -> None:
    with pytest.raises(ValueError, match=r"^user\.age: "):
        encode_row(USER_TABLE, {"age": Decimal("1.5")})


def test_arrays_built_from_buffers_are_valid_at_every_edge() -> None:
    """Bitmaps past one byte, empty and null lists, empty strings, extreme numbers."""
    values = {
        "id": "",
        "name": "x" * 70_000,
        "age": Decimal(-(2**63)),
        "score": Decimal("-0.0"),
        "vip": False,
        "tags": [],
        "luckyNumbers": [None, *(Decimal(n) for n in range(9)), None, Decimal(2**63 - 1)],
        "logins": ["2026-01-01T00:00:00Z", None, "1969-12-31T23:59:59.999Z"],
    }
    table = pq.read_table(io.BytesIO(encode_row(USER_TABLE, values)), use_threads=False)
    table.validate(full=True)
    row = table.to_pylist()[0]
    assert row["id"] == "" and row["name"] == "x" * 70_000
    assert row["age"] == -(2**63) and row["score"] == 0.0 and row["vip"] is False
    assert row["tags"] == []
    assert row["luckyNumbers"] == [None, *range(9), None, 2**63 - 1]
    assert row["logins"] == [
        utc("2026-01-01T00:00:00Z"),
        None,
        utc("1969-12-31T23:59:59.999Z"),
    ]


def test_integers_beyond_64_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit in a 64-bit integer"):
        encode_row(USER_TABLE, {"lastSeenAt": Decimal(2**63)})
