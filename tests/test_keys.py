"""The storage formats, pinned to the literal examples of the design reference."""

from datetime import UTC, datetime, timedelta, timezone

from chalicelib import keys


def test_relation_id_matches_the_design_example() -> None:
    references = [("user", "u1"), ("product", "p1")]

    assert keys.relation_id("user_favorite_products", references) == (
        "af4f92b1f99f9e7167a1627d42a9d405"
    )
    assert keys.relation_id("user_favorite_products", references[::-1]) == (
        "af4f92b1f99f9e7167a1627d42a9d405"
    )


def test_item_keys() -> None:
    assert keys.entity_item_keys("user", "42") == {"PK": "user#42", "SK": "user#42"}
    assert keys.entity_list_keys("user", "42", "2026-11-23T19:22:14.123Z") == {
        "GSI2-PK": "user",
        "GSI2-SK": "2026-11-23T19:22:14.123Z#42",
    }
    assert keys.join_row_item_keys("r1") == {"PK": "joinTableData#r1", "SK": "joinTableData#r1"}
    assert keys.join_relation_item_keys("user", "u1", "r1") == {
        "PK": "joinRelation#user#u1",
        "SK": "joinRelation#r1",
        "GSI1-PK": "joinRelation#r1",
        "GSI1-SK": "joinRelation#user#u1",
    }
    assert keys.entity_relations_partition("user", "u1") == "joinRelation#user#u1"


def test_lake_object_key_is_dated_by_created_at() -> None:
    assert keys.lake_object_key("user", "2026-01-05T23:59:59.999Z", "42") == (
        "tables/user/year=2026/month=01/day=05/42.parquet"
    )


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 23, 20, 22, 14, 123456, tzinfo=timezone(timedelta(hours=1)))

    assert keys.timestamp_text(moment) == "2026-11-23T19:22:14.123Z"
    assert keys.timestamp_text(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"
