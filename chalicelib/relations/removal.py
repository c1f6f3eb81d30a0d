"""Removal of join relations, in batches (DESIGN §7): a DELETE task's selected rows and
an entity's cascade.

BatchGetItem reads the row items, BatchWriteItem deletes: the other relation items,
then the row items (the stream handler then removes their Parquet files), and the
relation items under the removed entity's partition last: those are how a redelivered
message finds the relations again, so a failure half-way through is finished by the
retry.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from chalicelib import keys
from chalicelib.relations._wire import deserialize, serialize, wire
from chalicelib.schema.model import SchemaModel
from chalicelib.telemetry import log_fields, metrics

logger = logging.getLogger(__name__)


def _query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("query").paginate(**kwargs):
        yield from page.get("Items", [])


# DynamoDB's limits per BatchGetItem and per BatchWriteItem call.
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
# Retries of the items a batch call leaves unprocessed (throttling), with backoff.
BATCH_ATTEMPTS = 8
_FIRST_BATCH_BACKOFF_SECONDS = 0.05


def _row_items(
    client: Any, table_name: str, relation_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The row items of up to 100 relations by one consistent BatchGetItem (plus retries
    of what it left unprocessed), by relation id."""
    pending: dict[str, Any] = {
        table_name: {
            "Keys": [wire(keys.join_row_item_keys(r)) for r in relation_ids],
            "ConsistentRead": True,
        }
    }
    rows: dict[str, dict[str, Any]] = {}
    for attempt in range(BATCH_ATTEMPTS):
        response = client.batch_get_item(RequestItems=pending)
        for item in response.get("Responses", {}).get(table_name, []):
            row = {name: deserialize(value) for name, value in item.items()}
            rows[str(row[keys.JOIN_ROW_RELATION_ID])] = row
        pending = response.get("UnprocessedKeys") or {}
        if not pending:
            return rows
        time.sleep(_FIRST_BATCH_BACKOFF_SECONDS * 2**attempt)
    raise RuntimeError(f"DynamoDB left {len(pending[table_name]['Keys'])} row reads unprocessed")


def _relation_item_keys(
    client: Any, table_name: str, model: SchemaModel, relation_id: str, row: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The keys of a relation's items: from its row item, else from GSI1."""
    join_table = next(
        (t for t in model.join_tables if t.name == row.get(keys.JOIN_ROW_TABLE_NAME)), None
    )
    if join_table is not None and all(c.name in row for c in join_table.columns):
        return [
            keys.join_relation_item_keys(column.entity_key, row[column.name], relation_id)
            for column in join_table.columns
        ]
    items = _query_all(
        client,
        TableName=table_name,
        IndexName=keys.GSI1,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": keys.GSI1_PK},
        ExpressionAttributeValues={":pk": serialize(keys.relation_partition(relation_id))},
    )
    return [{name: deserialize(item[name]) for name in (keys.PK, keys.SK)} for item in items]


def _batch_delete(client: Any, table_name: str, item_keys: Sequence[Mapping[str, str]]) -> None:
    """Delete items 25 to a call, retrying what DynamoDB leaves unprocessed. Duplicate
    keys (two columns referencing one entity share an item) are sent once: DynamoDB
    refuses a batch that names an item twice."""
    unique = list({(k[keys.PK], k[keys.SK]): k for k in item_keys}.values())
    for start in range(0, len(unique), BATCH_WRITE_LIMIT):
        chunk = unique[start : start + BATCH_WRITE_LIMIT]
        pending: dict[str, Any] = {
            table_name: [{"DeleteRequest": {"Key": wire(key)}} for key in chunk]
        }
        for attempt in range(BATCH_ATTEMPTS):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(_FIRST_BATCH_BACKOFF_SECONDS * 2**attempt)
        else:
            raise RuntimeError(f"DynamoDB left {len(pending[table_name])} deletes unprocessed")


def delete_relations(
    client: Any,
    table_name: str,
    model: SchemaModel,
    relation_ids: Sequence[str],
    *,
    finder: str = "",
) -> None:
    """Delete join rows and all their relation items, in batches.

    Per 100 relations: their relation items (but the one under ``finder``, the entity
    partition a cascade reads), then their row items (the stream handler then removes
    the Parquet files), then the ``finder`` items. A failure part-way leaves every
    relation findable again the same way, so the retry finishes the job.
    """
    for start in range(0, len(relation_ids), BATCH_GET_LIMIT):
        chunk = list(dict.fromkeys(relation_ids[start : start + BATCH_GET_LIMIT]))
        rows = _row_items(client, table_name, chunk)
        relation_items = [
            key
            for relation_id in chunk
            for key in _relation_item_keys(
                client, table_name, model, relation_id, rows.get(relation_id, {})
            )
            if key[keys.PK] != finder
        ]
        _batch_delete(client, table_name, relation_items)
        _batch_delete(client, table_name, [keys.join_row_item_keys(r) for r in chunk])
        if finder:
            finder_items = [{keys.PK: finder, keys.SK: keys.relation_partition(r)} for r in chunk]
            _batch_delete(client, table_name, finder_items)


def delete_relation(
    client: Any, table_name: str, model: SchemaModel, relation_id: str, *, finder: str = ""
) -> None:
    """Delete one join row and all its relation items (see :func:`delete_relations`)."""
    delete_relations(client, table_name, model, [relation_id], finder=finder)


def delete_entity_relations(
    client: Any, table_name: str, model: SchemaModel, entity_key: str, entity_id: str
) -> int:
    """Delete every join row that references one entity; returns how many were found.

    The entity's relation items are read a page at a time (consistently) and each
    page's relations deleted in batches; the entity's own item of each relation goes
    last, so a retry after a failure finds what is left.
    """
    partition = keys.entity_relations_partition(entity_key, entity_id)
    pages = client.get_paginator("query").paginate(
        TableName=table_name,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": keys.PK},
        ExpressionAttributeValues={":pk": serialize(partition)},
        ConsistentRead=True,
        PaginationConfig={"PageSize": BATCH_GET_LIMIT},  # a page is one batch of rows
    )
    found = 0
    for page in pages:
        relation_ids = [
            keys.relation_id_of(deserialize(item[keys.SK])) for item in page.get("Items", [])
        ]
        delete_relations(client, table_name, model, relation_ids, finder=partition)
        metrics.count(metrics.RELATIONS_REMOVED, len(relation_ids))
        found += len(relation_ids)
    return found


def process_cascade_event(
    event: Mapping[str, Any], client: Any, table_name: str, model: SchemaModel
) -> dict[str, Any]:
    """SQS batch of ``{"entityType", "entityId"}`` messages in, partial batch response out.

    A message that cannot be processed — malformed or failing — is reported back so
    SQS redelivers it alone and, after the redrive limit, parks it in the dead-letter
    queue; nothing is dropped.
    """
    failures = []
    for record in event.get("Records", []):
        with log_fields(correlationId=record.get("messageId")):
            try:
                message = json.loads(record["body"])
                entity_key, entity_id = message["entityType"], message["entityId"]
                if not (isinstance(entity_key, str) and isinstance(entity_id, str)):
                    raise ValueError("entityType and entityId must be strings")
                found = delete_entity_relations(client, table_name, model, entity_key, entity_id)
                logger.info(
                    "cascade %s#%s: %d relation(s) removed",
                    entity_key,
                    entity_id,
                    found,
                    extra={
                        "entityType": entity_key,
                        "entityId": entity_id,
                        "relationsRemoved": found,
                    },
                )
            except Exception:
                logger.exception("cascade message %s failed", record.get("messageId"))
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
