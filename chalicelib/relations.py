"""Join relations in the single table (DESIGN §3, §7), and their removal.

A join row is one row item plus one relation item per referenced entity. The row item
holds the referenced ids, so the keys of its relation items are derived from it with a
consistent read; GSI1, which may lag behind recent writes, is only the fallback for a
row item already gone. Removal deletes the other relation items, then the row item (the
stream handler then removes its Parquet file), and the relation item under the removed
entity's partition last: that one is how a redelivered message finds the relation
again, so a failure half-way through is finished by the retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib import keys
from chalicelib.schema.model import SchemaModel

logger = logging.getLogger(__name__)

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def _wire(values: Mapping[str, str]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in values.items()}


def _query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("query").paginate(**kwargs):
        yield from page.get("Items", [])


def _relation_item_keys(
    client: Any, table_name: str, model: SchemaModel, relation_id: str
) -> list[dict[str, str]]:
    """The keys of a relation's items: from its row item, else from GSI1."""
    row_keys = _wire(keys.join_row_item_keys(relation_id))
    stored = client.get_item(TableName=table_name, Key=row_keys, ConsistentRead=True).get("Item")
    row = {name: _deserialize(value) for name, value in (stored or {}).items()}
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
        ExpressionAttributeValues={":pk": _serialize(keys.relation_partition(relation_id))},
    )
    return [{name: _deserialize(item[name]) for name in (keys.PK, keys.SK)} for item in items]


def delete_relation(
    client: Any, table_name: str, model: SchemaModel, relation_id: str, *, finder: str = ""
) -> None:
    """Delete a join row and all its relation items; the one whose PK is ``finder`` last."""
    relation_items = _relation_item_keys(client, table_name, model, relation_id)
    for item in relation_items:
        if item[keys.PK] != finder:
            client.delete_item(TableName=table_name, Key=_wire(item))
    client.delete_item(TableName=table_name, Key=_wire(keys.join_row_item_keys(relation_id)))
    if finder:
        finder_item = {keys.PK: finder, keys.SK: keys.relation_partition(relation_id)}
        client.delete_item(TableName=table_name, Key=_wire(finder_item))


def delete_entity_relations(
    client: Any, table_name: str, model: SchemaModel, entity_key: str, entity_id: str
) -> int:
    """Delete every join row that references one entity; returns how many were found."""
    partition = keys.entity_relations_partition(entity_key, entity_id)
    items = _query_all(
        client,
        TableName=table_name,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": keys.PK},
        ExpressionAttributeValues={":pk": _serialize(partition)},
        ConsistentRead=True,
    )
    found = 0
    for item in items:
        relation_id = keys.relation_id_of(_deserialize(item[keys.SK]))
        delete_relation(client, table_name, model, relation_id, finder=partition)
        found += 1
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
        try:
            message = json.loads(record["body"])
            entity_key, entity_id = message["entityType"], message["entityId"]
            if not (isinstance(entity_key, str) and isinstance(entity_id, str)):
                raise ValueError("entityType and entityId must be strings")
            found = delete_entity_relations(client, table_name, model, entity_key, entity_id)
            logger.info("cascade %s#%s: %d relation(s) removed", entity_key, entity_id, found)
        except Exception:
            logger.exception("cascade message %s failed", record.get("messageId"))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
