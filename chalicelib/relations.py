"""Join relations in the single table (DESIGN §3, §7), and their removal.

A join row is one row item plus one relation item per referenced entity. Removal
deletes the row item first (the stream handler then removes its Parquet file) and the
relation items after it, the one under the removed entity's partition last: that one
is how a redelivered message finds the relation again, so a failure half-way through
is finished by the retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from chalicelib import keys

logger = logging.getLogger(__name__)


def _query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("query").paginate(**kwargs):
        yield from page.get("Items", [])


def _key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {keys.PK: item[keys.PK], keys.SK: item[keys.SK]}


def delete_relation(client: Any, table_name: str, relation_id: str, *, last: str = "") -> None:
    """Delete a join row and all its relation items; the item with PK ``last`` goes last."""
    row_keys = keys.join_row_item_keys(relation_id)
    client.delete_item(TableName=table_name, Key={k: {"S": v} for k, v in row_keys.items()})
    relation_items = list(
        _query_all(
            client,
            TableName=table_name,
            IndexName=keys.GSI1,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": keys.GSI1_PK},
            ExpressionAttributeValues={":pk": {"S": f"{keys.JOIN_RELATION_PREFIX}#{relation_id}"}},
        )
    )
    relation_items.sort(key=lambda item: item[keys.PK]["S"] == last)
    for item in relation_items:
        client.delete_item(TableName=table_name, Key=_key_of(item))


def delete_entity_relations(client: Any, table_name: str, entity_key: str, entity_id: str) -> int:
    """Delete every join row that references one entity; returns how many were found."""
    partition = keys.entity_relations_partition(entity_key, entity_id)
    items = _query_all(
        client,
        TableName=table_name,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": keys.PK},
        ExpressionAttributeValues={":pk": {"S": partition}},
        ConsistentRead=True,
    )
    found = 0
    for item in items:
        relation_id = item[keys.SK]["S"].removeprefix(f"{keys.JOIN_RELATION_PREFIX}#")
        delete_relation(client, table_name, relation_id, last=partition)
        client.delete_item(TableName=table_name, Key=_key_of(item))
        found += 1
    return found


def process_cascade_event(event: dict[str, Any], client: Any, table_name: str) -> dict[str, Any]:
    """SQS batch of ``{"entityType", "entityId"}`` messages in, partial batch response out.

    A message that cannot be processed — malformed or failing — is reported back so
    SQS redelivers it alone and, after the redrive limit, parks it in the dead-letter
    queue; nothing is dropped.
    """
    failures = []
    for record in event.get("Records", []):
        try:
            message = json.loads(record["body"])
            entity_key, entity_id = message["entityType"], message["entityId"]
            if not (isinstance(entity_key, str) and isinstance(entity_id, str)):
                raise ValueError("entityType and entityId must be strings")
            found = delete_entity_relations(client, table_name, entity_key, entity_id)
            logger.info("cascade %s#%s: %d relation(s) removed", entity_key, entity_id, found)
        except Exception:
            logger.exception("cascade message %s failed", record.get("messageId"))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
