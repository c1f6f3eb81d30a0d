"""DynamoDB stream -> the lake (DESIGN §4): the only writer of ``tables/``.

Each INSERT or MODIFY of an entity or join row item writes its whole Parquet file
(the live layer, ``chalicelib.lake.layers``); each REMOVE writes the item's tombstone,
which hides a compacted copy of it, then deletes its file; an entity REMOVE also asks
the cascade queue to remove the entity's relations. Compaction is none of this
module's business: a live file always wins over compacted rows. Writes are full
overwrites keyed by the item, so applying a record twice is the same as applying it
once; that is what makes retries safe.

Nothing is dropped. A record that fails is reported in the partial batch response;
Lambda then resumes the shard from the lowest reported sequence number, so only the
first failure in the batch is reported, and every later record of the batch is
delivered again. Replaying a later record is harmless because it is idempotent and
each item's records are applied in stream order: records are grouped by object key,
each group runs its records one after the other (stopping at its first failure, as
the rest will be replayed), and different groups run concurrently on a bounded pool.

Each record's log lines carry its ``eventID`` as correlation id (the pool's threads run
in a copy of the invocation's context); the batch counts the lake objects it wrote and
deleted, its failed records and the age of its oldest record
(:mod:`chalicelib.telemetry.metrics`), and logs one line saying so.

Items are classified by key and ``entityType``: task and join relation items, and any
item without ``entityType``, are not part of the lake. Join row items carry
``entityType`` = ``keys.JOIN_ROW_ENTITY_TYPE`` and name their table in ``tableName``.

pyarrow is imported when the first event is processed, not when this module is
imported, so ``app.py`` can import this module in every function: only the stream
function needs the pyarrow layer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from functools import partial
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from chalicelib import keys
from chalicelib.lake.columns import TableSpec, entity_table, join_row_table, parse_timestamp
from chalicelib.lake.layers import REMOVAL, tombstone_spec
from chalicelib.lake.objects import ObjectWriter
from chalicelib.schema.model import SchemaModel
from chalicelib.telemetry import log_fields, metrics

logger = logging.getLogger(__name__)

# S3 calls are I/O bound: enough threads for a full default batch (100 records) to take
# a few round trips, few enough to stay within a small Lambda's memory.
DEFAULT_MAX_WORKERS = 32

_SKIPPED_PREFIXES = frozenset({keys.TASK_PREFIX, keys.JOIN_RELATION_PREFIX})
_IMAGE_OF_EVENT = {"INSERT": "NewImage", "MODIFY": "NewImage", "REMOVE": "OldImage"}
_deserialize = TypeDeserializer().deserialize

Encoder = Callable[[TableSpec, Mapping[str, object]], bytes]
BatchResponse = dict[str, list[dict[str, str]]]


@dataclass(frozen=True)
class _Change:
    """What one stream record does to the lake."""

    index: int
    sequence_number: str
    event_id: str | None  # the record's eventID: the correlation id of its log lines
    object_key: str
    item_id: str
    table: TableSpec
    # The row's attributes by column name; None deletes the object.
    values: Mapping[str, object] | None
    # ``(t, id)`` of a removed entity, for the cascade queue.
    removed_entity: tuple[str, str] | None = None


@dataclass(frozen=True)
class _Applied:
    """What one object's changes did."""

    written: int = 0
    deleted: int = 0
    failed: int | None = None  # the index of the record that failed, if one did


@dataclass(frozen=True)
class _Tables:
    entities: Mapping[str, TableSpec]
    join_rows: Mapping[str, TableSpec]

    @classmethod
    def of(cls, model: SchemaModel) -> _Tables:
        return cls(
            entities={e.key: entity_table(e) for e in model.entities},
            join_rows={t.name: join_row_table(t) for t in model.join_tables},
        )


def _string(image: Mapping[str, Any], name: str) -> str | None:
    value = image.get(name, {}).get("S")
    return value if isinstance(value, str) else None


def _read_change(index: int, record: Mapping[str, Any], tables: _Tables) -> _Change | None:
    """The record's change to the lake, or None when the item is not part of the lake."""
    event_name = record.get("eventName")
    stream = record["dynamodb"]
    partition_key: str = stream["Keys"][keys.PK]["S"]
    prefix, _, item_id = partition_key.partition("#")
    if prefix in _SKIPPED_PREFIXES:
        return None
    if event_name not in _IMAGE_OF_EVENT:
        raise ValueError(f"unknown eventName {event_name!r}")
    image = stream.get(_IMAGE_OF_EVENT[event_name])
    if image is None:
        raise ValueError(
            f"{event_name} of {partition_key} has no {_IMAGE_OF_EVENT[event_name]}: "
            "the stream view type must be NEW_AND_OLD_IMAGES"
        )
    entity_type = _string(image, keys.ENTITY_TYPE)
    removed_entity = None
    if prefix == keys.JOIN_ROW_PREFIX and entity_type == keys.JOIN_ROW_ENTITY_TYPE:
        table = tables.join_rows.get(_string(image, keys.JOIN_ROW_TABLE_NAME) or "")
    elif entity_type == prefix:
        table = tables.entities.get(prefix)
        removed_entity = (prefix, item_id) if event_name == "REMOVE" else None
    else:
        return None
    if table is None:
        logger.warning("%s is not in the schema's lake tables; skipped", partition_key)
        return None
    created_at = _string(image, keys.CREATED_AT)
    if created_at is None:
        raise ValueError(f"{partition_key} has no {keys.CREATED_AT}")
    # Normalised to UTC: the partition is the UTC date even if a zone offset slipped in.
    created_utc = parse_timestamp(created_at).isoformat()
    object_key = keys.lake_object_key(table.name, created_utc, item_id)
    record_ids = (index, str(stream["SequenceNumber"]), record.get("eventID"))
    if event_name == "REMOVE":
        return _Change(*record_ids, object_key, item_id, table, None, removed_entity)
    values: dict[str, object] = {
        column.name: _deserialize(image[column.name])
        for column in table.columns
        if column.name in image
    }
    if prefix == keys.JOIN_ROW_PREFIX:
        values[keys.LAKE_S3_KEY] = object_key
    return _Change(*record_ids, object_key, item_id, table, values)


def _apply_in_order(
    changes: list[_Change],
    *,
    encode: Encoder,
    object_store: ObjectWriter,
    sqs_client: Any,
    cascade_queue_url: str,
) -> _Applied:
    """Apply one object's changes in stream order, up to the first that fails."""
    written = deleted = 0
    for change in changes:
        with log_fields(correlationId=change.event_id):
            try:
                if change.values is None:
                    tombstone = {
                        change.table.key: change.item_id,
                        REMOVAL: change.sequence_number,
                    }
                    object_store.put(
                        keys.tombstone_key(change.object_key),
                        encode(tombstone_spec(change.table), tombstone),
                    )
                    object_store.delete(change.object_key)
                    written += 1
                    deleted += 1
                else:
                    object_store.put(change.object_key, encode(change.table, change.values))
                    written += 1
                if change.removed_entity is not None:
                    entity_type, entity_id = change.removed_entity
                    sqs_client.send_message(
                        QueueUrl=cascade_queue_url,
                        MessageBody=json.dumps({"entityType": entity_type, "entityId": entity_id}),
                    )
            except Exception:
                logger.exception(
                    "stream record %d (%s) failed",
                    change.index,
                    change.object_key,
                    extra={"failedSequenceNumber": change.sequence_number},
                )
                return _Applied(written, deleted, change.index)
    return _Applied(written, deleted)


def _record_age_ms(records: Sequence[Mapping[str, Any]]) -> int | None:
    """How long ago the batch's oldest record was written to the table, by the stream's
    ``ApproximateCreationDateTime`` (epoch seconds, as Lambda delivers it)."""
    created = [record["dynamodb"].get("ApproximateCreationDateTime") for record in records]
    times = [float(t) for t in created if isinstance(t, int | float)]
    return max(0, round((time.time() - min(times)) * 1000)) if times else None


def process_stream_event(
    event: Mapping[str, Any],
    *,
    model: SchemaModel,
    object_store: ObjectWriter,
    sqs_client: Any,
    cascade_queue_url: str,
    max_workers: int = DEFAULT_MAX_WORKERS,
) -> BatchResponse:
    """Mirror a batch of stream records into the lake; the partial batch response out.

    A record without ``dynamodb.SequenceNumber`` cannot be reported alone, so it fails
    the whole invocation (Lambda retries the batch).
    """
    from chalicelib.lake.parquet import encode_row  # pyarrow: on this path only

    records = event.get("Records", [])
    sequence_numbers: list[str] = [record["dynamodb"]["SequenceNumber"] for record in records]
    age_ms = _record_age_ms(records)
    if age_ms is not None:
        metrics.maximum(metrics.STREAM_RECORD_AGE, age_ms)
    tables = _Tables.of(model)
    failed: list[int] = []
    by_object: dict[str, list[_Change]] = {}
    for index, record in enumerate(records):
        with log_fields(correlationId=record.get("eventID")):
            try:
                change = _read_change(index, record, tables)
            except Exception:
                logger.exception(
                    "stream record %d (%s) failed",
                    index,
                    sequence_numbers[index],
                    extra={"failedSequenceNumber": sequence_numbers[index]},
                )
                failed.append(index)
                continue
        if change is not None:
            by_object.setdefault(change.object_key, []).append(change)
    applied: list[_Applied] = []
    if by_object:
        apply = partial(
            _apply_in_order,
            encode=encode_row,
            object_store=object_store,
            sqs_client=sqs_client,
            cascade_queue_url=cascade_queue_url,
        )
        with ThreadPoolExecutor(max_workers=min(max_workers, len(by_object))) as pool:
            # Each in a copy of this context: its log fields and metrics are this batch's.
            futures = [
                pool.submit(copy_context().run, apply, changes) for changes in by_object.values()
            ]
            applied = [future.result() for future in futures]
    failed.extend(outcome.failed for outcome in applied if outcome.failed is not None)
    first_failed = sequence_numbers[min(failed)] if failed else None
    _report_batch(len(records), applied, len(failed), first_failed, age_ms)
    if first_failed is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": first_failed}]}


def _report_batch(
    records: int,
    applied: Sequence[_Applied],
    failed: int,
    first_failed: str | None,
    age_ms: int | None,
) -> None:
    written = sum(outcome.written for outcome in applied)
    deleted = sum(outcome.deleted for outcome in applied)
    metrics.count(metrics.LAKE_OBJECTS_WRITTEN, written)
    metrics.count(metrics.LAKE_OBJECTS_DELETED, deleted)
    metrics.count(metrics.LAKE_WRITE_FAILURES, failed)
    logger.log(
        logging.WARNING if failed else logging.INFO,
        "stream batch of %d record(s): %d lake object(s) written, %d deleted, %d record(s) "
        "failed%s",
        records,
        written,
        deleted,
        failed,
        f"; the batch resumes from {first_failed}" if first_failed else "",
        extra={
            "records": records,
            "objectsWritten": written,
            "objectsDeleted": deleted,
            "failedRecords": failed,
            "failedSequenceNumber": first_failed,
            "recordAgeMs": age_ms,
        },
    )
