from __future__ import annotations

import io
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from chalicelib.keys import tombstone_key
from chalicelib.lake.objects import DirectoryObjectStore, ObjectWriter, S3ObjectStore
from chalicelib.lake.stream import process_stream_event
from chalicelib.schema.model import SchemaModel
from tests.lake.support import (
    BUCKET,
    JOIN_ROW_KEY,
    PRODUCT_ID,
    RELATION_ID,
    USER_ID,
    USER_KEY,
    batch,
    captured,
    files_under,
    load_event,
    make_model,
    product_key,
    product_record,
    received,
)
from tests.lake.test_parquet import EXPECTED_USER_SCHEMA

NO_FAILURES: dict[str, list[dict[str, str]]] = {"batchItemFailures": []}


class Recorder:
    """Runs a process_stream_event call with the test's model, queue and store."""

    def __init__(self, model: SchemaModel, sqs: Any, queue_url: str) -> None:
        self.model, self.sqs, self.queue_url = model, sqs, queue_url

    def __call__(
        self, event: dict[str, Any], store: ObjectWriter, **options: Any
    ) -> dict[str, list[dict[str, str]]]:
        return process_stream_event(
            event,
            model=self.model,
            object_store=store,
            sqs_client=self.sqs,
            cascade_queue_url=self.queue_url,
            **options,
        )


@pytest.fixture
def process(model: SchemaModel, sqs: Any, cascade_queue: str) -> Recorder:
    return Recorder(model, sqs, cascade_queue)


class FailingStore:
    """A store whose writes and deletes of some keys fail."""

    def __init__(self, inner: ObjectWriter, failing: set[str]) -> None:
        self.inner, self.failing = inner, failing

    def put(self, key: str, body: bytes) -> None:
        if key in self.failing:
            raise OSError(f"cannot write {key}")
        self.inner.put(key, body)

    def delete(self, key: str) -> None:
        if key in self.failing:
            raise OSError(f"cannot delete {key}")
        self.inner.delete(key)


class ShufflingStore:
    """Delays every call at random so concurrent work finishes out of order; logs calls."""

    def __init__(self, inner: ObjectWriter) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _run(self, operation: str, key: str, action: Any) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(random.uniform(0, 0.01))
        action()
        with self._lock:
            self.active -= 1
            self.calls.append((operation, key))

    def put(self, key: str, body: bytes) -> None:
        self._run("put", key, lambda: self.inner.put(key, body))

    def delete(self, key: str) -> None:
        self._run("delete", key, lambda: self.inner.delete(key))


def read(root: Path, key: str) -> dict[str, Any]:
    table = pq.read_table(root / key, use_threads=False, partitioning=None)
    assert table.num_rows == 1
    row: dict[str, Any] = table.to_pylist()[0]
    return row


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_insert_writes_the_entity_file(
    process: Recorder, lake: DirectoryObjectStore, sqs: Any, cascade_queue: str
) -> None:
    assert process(load_event("stream_insert_user"), lake) == NO_FAILURES
    assert list(files_under(lake.root)) == [USER_KEY]
    table = pq.read_table(lake.root / USER_KEY, use_threads=False, partitioning=None)
    assert table.schema.equals(EXPECTED_USER_SCHEMA)
    row = table.to_pylist()[0]
    assert row["id"] == USER_ID and row["name"] == "Zoë Ångström 👩‍💻 東京"
    assert row["createdAt"] == utc("2026-11-23T23:59:59.999Z")
    frame = pd.read_parquet(lake.root / USER_KEY, use_threads=False, partitioning=None)
    assert list(frame.columns) == EXPECTED_USER_SCHEMA.names
    assert received(sqs, cascade_queue) == []


def test_modify_rewrites_the_same_key(process: Recorder, lake: DirectoryObjectStore) -> None:
    process(load_event("stream_insert_user"), lake)
    assert process(load_event("stream_modify_user"), lake) == NO_FAILURES
    assert list(files_under(lake.root)) == [USER_KEY]
    row = read(lake.root, USER_KEY)
    assert (row["name"], row["age"], row["vip"]) == ("Zoë A.", 37, False)
    assert row["tags"] is None and row["score"] is None
    assert row["updatedAt"] == utc("2026-11-24T08:15:00.250Z")
    assert row["createdAt"] == utc("2026-11-23T23:59:59.999Z")


def test_remove_leaves_a_tombstone_deletes_the_file_and_sends_the_cascade_message(
    process: Recorder, lake: DirectoryObjectStore, sqs: Any, cascade_queue: str
) -> None:
    """The tombstone hides a compacted copy of the item (chalicelib.lake.layers)."""
    process(load_event("stream_insert_user"), lake)
    assert process(load_event("stream_remove_user"), lake) == NO_FAILURES
    assert list(files_under(lake.root)) == [tombstone_key(USER_KEY)]
    assert read(lake.root, tombstone_key(USER_KEY)) == {
        "id": USER_ID,
        "_removal": "4421584500000000017450439093",
    }
    assert received(sqs, cascade_queue) == [{"entityType": "user", "entityId": USER_ID}]


def test_join_row_file_holds_its_own_key(
    process: Recorder, lake: DirectoryObjectStore, sqs: Any, cascade_queue: str
) -> None:
    assert process(load_event("stream_insert_join_row"), lake) == NO_FAILURES
    assert list(files_under(lake.root)) == [JOIN_ROW_KEY]
    assert read(lake.root, JOIN_ROW_KEY) == {
        "relationId": RELATION_ID,
        "userId": USER_ID,
        "productId": PRODUCT_ID,
        "s3Key": JOIN_ROW_KEY,
        "createdAt": utc("2026-12-31T23:59:59.999Z"),
    }
    assert process(load_event("stream_remove_join_row"), lake) == NO_FAILURES
    assert list(files_under(lake.root)) == [tombstone_key(JOIN_ROW_KEY)]
    assert read(lake.root, tombstone_key(JOIN_ROW_KEY)) == {
        "relationId": RELATION_ID,
        "_removal": "4421584500000000017450439095",
    }
    assert received(sqs, cascade_queue) == []


def test_tasks_relations_and_items_without_entity_type_are_skipped(
    process: Recorder, lake: DirectoryObjectStore, sqs: Any, cascade_queue: str
) -> None:
    event = load_event("stream_skipped_items")
    removals = batch(*event["Records"])
    for record in removals["Records"]:
        record["eventName"] = "REMOVE"
        record["dynamodb"]["OldImage"] = record["dynamodb"].pop("NewImage")
    assert process(event, lake) == NO_FAILURES
    assert process(removals, lake) == NO_FAILURES
    assert not lake.root.exists()
    assert received(sqs, cascade_queue) == []


def test_types_not_in_the_schema_are_skipped(
    sqs: Any, cascade_queue: str, lake: DirectoryObjectStore
) -> None:
    without_users = Recorder(make_model(entities=(), join_tables=()), sqs, cascade_queue)
    event = batch(captured("stream_insert_user"), captured("stream_insert_join_row"))
    assert without_users(event, lake) == NO_FAILURES
    assert not lake.root.exists()


def test_s3_and_directory_stores_hold_the_same_bytes(
    process: Recorder, lake: DirectoryObjectStore, s3: Any
) -> None:
    event = batch(captured("stream_insert_user"), captured("stream_insert_join_row"))
    assert process(event, S3ObjectStore(s3, BUCKET)) == NO_FAILURES
    assert process(event, lake) == NO_FAILURES
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    in_s3 = {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}
    assert in_s3 == files_under(lake.root)
    assert pq.read_table(io.BytesIO(in_s3[USER_KEY]), use_threads=False).schema.equals(
        EXPECTED_USER_SCHEMA
    )


def mixed_batch() -> dict[str, Any]:
    return batch(
        product_record("INSERT", "p1", "2026-11-23T10:00:00.000Z"),
        captured("stream_insert_user"),
        product_record("INSERT", "p2", "2026-11-24T10:00:00.000Z"),
        captured("stream_insert_join_row"),
        product_record("INSERT", "p3", "2026-11-25T10:00:00.000Z"),
    )


def test_a_failed_record_is_reported_and_redelivery_completes_the_batch(
    process: Recorder, tmp_path: Path
) -> None:
    event = mixed_batch()
    reference = DirectoryObjectStore(tmp_path / "reference")
    assert process(event, reference) == NO_FAILURES

    lake = DirectoryObjectStore(tmp_path / "lake")
    flaky = FailingStore(lake, {product_key("p2", "2026/11/24")})
    third = event["Records"][2]["dynamodb"]["SequenceNumber"]
    assert process(event, flaky) == {"batchItemFailures": [{"itemIdentifier": third}]}
    assert product_key("p2", "2026/11/24") not in files_under(lake.root)
    assert len(files_under(lake.root)) == 4

    # Lambda resumes from the reported record: it and everything after it come again.
    assert process({"Records": event["Records"][2:]}, lake) == NO_FAILURES
    assert files_under(lake.root) == files_under(reference.root)
    # A redelivery of the whole batch is just as harmless.
    assert process(event, lake) == NO_FAILURES
    assert files_under(lake.root) == files_under(reference.root)


def test_only_the_first_failure_is_reported(process: Recorder, lake: DirectoryObjectStore) -> None:
    event = mixed_batch()
    flaky = FailingStore(lake, {USER_KEY, product_key("p3", "2026/11/25")})
    second = event["Records"][1]["dynamodb"]["SequenceNumber"]
    assert process(event, flaky) == {"batchItemFailures": [{"itemIdentifier": second}]}


def test_a_record_that_cannot_be_converted_is_reported(
    process: Recorder, lake: DirectoryObjectStore
) -> None:
    event = batch(
        product_record("INSERT", "p1", "2026-11-23T10:00:00.000Z"),
        product_record("INSERT", "p2", "2026-11-23T10:00:00.000Z", price="free"),
        product_record("INSERT", "p3", "2026-11-23T10:00:00.000Z", createdAt="yesterday"),
    )
    second = event["Records"][1]["dynamodb"]["SequenceNumber"]
    assert process(event, lake) == {"batchItemFailures": [{"itemIdentifier": second}]}
    assert list(files_under(lake.root)) == [product_key("p1")]


@pytest.mark.parametrize(
    "damage",
    [
        lambda record: record.update(eventName="TRUNCATE"),
        lambda record: record["dynamodb"].pop("NewImage"),
        lambda record: record["dynamodb"]["NewImage"].pop("createdAt"),
    ],
)
def test_malformed_records_are_reported(
    process: Recorder, lake: DirectoryObjectStore, damage: Any
) -> None:
    event = batch(captured("stream_insert_join_row"), captured("stream_insert_user"))
    damage(event["Records"][1])
    second = event["Records"][1]["dynamodb"]["SequenceNumber"]
    assert process(event, lake) == {"batchItemFailures": [{"itemIdentifier": second}]}
    assert list(files_under(lake.root)) == [JOIN_ROW_KEY]


def test_a_record_without_a_sequence_number_fails_the_invocation(
    process: Recorder, lake: DirectoryObjectStore
) -> None:
    event = load_event("stream_insert_user")
    del event["Records"][0]["dynamodb"]["SequenceNumber"]
    with pytest.raises(KeyError):
        process(event, lake)


def test_a_failed_cascade_message_is_reported(
    model: SchemaModel, sqs: Any, lake: DirectoryObjectStore
) -> None:
    missing_queue = Recorder(model, sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/gone")
    event = batch(captured("stream_insert_join_row"), captured("stream_remove_user"))
    second = event["Records"][1]["dynamodb"]["SequenceNumber"]
    assert missing_queue(event, lake) == {"batchItemFailures": [{"itemIdentifier": second}]}


def test_duplicated_and_redelivered_batches_change_nothing(
    process: Recorder, tmp_path: Path
) -> None:
    once = DirectoryObjectStore(tmp_path / "once")
    process(mixed_batch(), once)
    expected = files_under(once.root)

    again = DirectoryObjectStore(tmp_path / "again")
    process(mixed_batch(), again)
    process(mixed_batch(), again)
    doubled = batch(*mixed_batch()["Records"], *mixed_batch()["Records"])
    process(doubled, again)
    assert files_under(again.root) == expected


def test_last_record_of_an_item_wins_under_concurrency(
    process: Recorder, lake: DirectoryObjectStore, sqs: Any, cascade_queue: str
) -> None:
    records = []
    for number in range(40):
        product_id = f"p{number}"
        created = "2026-11-23T10:00:00.000Z"
        records.append(product_record("INSERT", product_id, created))
        records.append(product_record("MODIFY", product_id, created, name=f"v2 of {number}"))
        if number % 2:
            records.append(product_record("REMOVE", product_id, created))
    records.append(captured("stream_insert_user"))
    records.append(captured("stream_modify_user"))
    store = ShufflingStore(lake)
    assert process(batch(*records), store, max_workers=8) == NO_FAILURES

    kept = {product_key(f"p{n}") for n in range(0, 40, 2)}
    removed = {tombstone_key(product_key(f"p{n}")) for n in range(1, 40, 2)}
    assert set(files_under(lake.root)) == kept | removed | {USER_KEY}
    for number in range(0, 40, 2):
        assert read(lake.root, product_key(f"p{number}"))["name"] == f"v2 of {number}"
    assert read(lake.root, USER_KEY)["name"] == "Zoë A."
    for number in range(1, 40, 2):
        key = product_key(f"p{number}")
        assert [op for op, k in store.calls if k == key] == ["put", "put", "delete"]
    assert 1 < store.peak <= 8
    assert len(received(sqs, cascade_queue)) == 20


def test_the_partition_is_the_utc_date_of_created_at(
    process: Recorder, lake: DirectoryObjectStore
) -> None:
    event = batch(product_record("INSERT", "p1", "2026-11-24T01:30:00.000+02:00"))
    assert process(event, lake) == NO_FAILURES
    assert list(files_under(lake.root)) == [product_key("p1", "2026/11/23")]
