"""Creation of a join relation (DESIGN §3): the join INSERT, in one transaction.

The transaction writes the row item on condition that it is new, a relation item per
referenced entity, and checks that every referenced entity exists, so no relation ever
points at an entity that was not there when it was written, and a repeated INSERT is a
no-op (see :func:`create_relation`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import keys
from chalicelib.relations._wire import deserialize, wire
from chalicelib.schema.model import JoinTable
from chalicelib.store import StoreError

logger = logging.getLogger(__name__)


# DynamoDB's key limits: a partition key value up to 2048 bytes, a sort key value (GSI1's
# included) up to 1024. A relation item's GSI1 sort key is ``joinRelation#<t>#<id>``.
_SORT_KEY_LIMIT = 1024
# Cancellation reasons that say "try again", not "no": another transaction touched one of
# the items at the same moment (typically an identical INSERT), or a throttled item.
_RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError"})
# Attempts of the transaction when it keeps being cancelled for a retryable reason, and
# the first back-off (doubled each time, with jitter).
CREATE_ATTEMPTS = 5
_FIRST_BACKOFF_SECONDS = 0.02


class InvalidReference(StoreError):
    """A referenced id that cannot name an entity: not a string, empty, or too long."""


class MissingEntities(StoreError):
    """Referenced entities that do not exist; ``missing`` holds ``(Type, id)`` pairs."""

    def __init__(self, missing: tuple[tuple[str, str], ...]) -> None:
        self.missing = missing
        named = [f"{entity} {entity_id!r}" for entity, entity_id in missing]
        if len(named) == 1:
            message = f"{named[0]} does not exist"
        else:
            message = f"{', '.join(named[:-1])} and {named[-1]} do not exist"
        super().__init__(message)


class RelationConflict(StoreError):
    """A row with the same relationId but other column values is already stored.

    The relationId hashes the referenced ``(type, id)`` pairs, not the columns holding
    them (DESIGN §3), so two columns of one entity type make ``(u1, u2)`` and
    ``(u2, u1)`` the same row: the second cannot be stored, and answering ``true`` for it
    would claim a relation that does not exist.
    """


def _checked_references(join_table: JoinTable, references: Mapping[str, object]) -> dict[str, str]:
    """The referenced id of each column, checked before anything is sent."""
    names = [column.name for column in join_table.columns]
    unknown = sorted(set(references) - set(names))
    missing = [name for name in names if name not in references]
    if unknown or missing:
        raise InvalidReference(
            f"{join_table.name} takes exactly the columns {', '.join(names)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    checked: dict[str, str] = {}
    for column in join_table.columns:
        value = references[column.name]
        where = f"{join_table.name}.{column.name}"
        if not isinstance(value, str) or not value:
            raise InvalidReference(f"{where} must be a non-empty {column.entity} id, got {value!r}")
        try:
            size = len(keys.entity_relations_partition(column.entity_key, value).encode())
        except UnicodeEncodeError:
            raise InvalidReference(
                f"{where} is not valid Unicode text (a lone surrogate)"
            ) from None
        if size > _SORT_KEY_LIMIT:
            raise InvalidReference(
                f"{where} is too long to be a {column.entity} id ({len(value)} characters)"
            )
        checked[column.name] = value
    return checked


def _row_item(
    join_table: JoinTable, relation_id: str, ids: Mapping[str, str], created_at: str
) -> dict[str, str]:
    """The row item: what the stream handler mirrors into the lake and deletions read."""
    return {
        **keys.join_row_item_keys(relation_id),
        keys.ENTITY_TYPE: keys.JOIN_ROW_ENTITY_TYPE,
        keys.JOIN_ROW_RELATION_ID: relation_id,
        keys.JOIN_ROW_TABLE_NAME: join_table.name,
        **{column.name: ids[column.name] for column in join_table.columns},
        keys.CREATED_AT: created_at,
    }


def _relation_items(
    join_table: JoinTable, relation_id: str, ids: Mapping[str, str]
) -> list[dict[str, str]]:
    """One relation item per distinct referenced entity.

    Two columns referencing the same entity (``followerId`` = ``followeeId`` = u1) share
    one item: their keys are equal, and a transaction may not write one item twice.
    """
    items: dict[tuple[str, str], dict[str, str]] = {}
    for column in join_table.columns:
        entity = (column.entity_key, ids[column.name])
        items.setdefault(
            entity,
            {
                **keys.join_relation_item_keys(*entity, relation_id),
                keys.JOIN_ROW_RELATION_ID: relation_id,
                keys.JOIN_ROW_TABLE_NAME: join_table.name,
            },
        )
    return list(items.values())


def _referenced_entities(
    join_table: JoinTable, ids: Mapping[str, str]
) -> dict[tuple[str, str], str]:
    """The distinct ``(Type, id)`` pairs, in column order, each with its key name ``t``.

    One ConditionCheck each: a transaction may not check the same item twice either.
    """
    return {(column.entity, ids[column.name]): column.entity_key for column in join_table.columns}


def _same_row(
    stored: Mapping[str, Any] | None, row: Mapping[str, str], join_table: JoinTable
) -> bool:
    """Whether a stored row item holds the same table and column values as ``row``."""
    if stored is None:
        return False
    names = [keys.JOIN_ROW_TABLE_NAME, *(column.name for column in join_table.columns)]
    return all(name in stored and deserialize(stored[name]) == row[name] for name in names)


def _stored_row(client: Any, table_name: str, relation_id: str) -> dict[str, Any] | None:
    key = wire(keys.join_row_item_keys(relation_id))
    item: dict[str, Any] | None = client.get_item(
        TableName=table_name, Key=key, ConsistentRead=True
    ).get("Item")
    return item


def _conflict(join_table: JoinTable, stored: Mapping[str, Any] | None) -> RelationConflict:
    held = ", ".join(
        f"{column.name} {deserialize(stored[column.name])!r}"
        for column in join_table.columns
        if stored is not None and column.name in stored
    )
    return RelationConflict(
        f"{join_table.name} already has a row for these entities ({held}): a join row is "
        "identified by the entities it references, not by the columns that hold them"
    )


def create_relation(
    client: Any,
    table_name: str,
    join_table: JoinTable,
    references: Mapping[str, object],
    *,
    clock: Callable[[], datetime] = keys.utc_now,
) -> bool:
    """Write a join row: True when created, False when the same row was already there.

    ``references`` maps each column of ``join_table`` to the id of the entity it
    references. One TransactWriteItems puts the row item (on condition that it is new),
    puts the relation items, and checks that every referenced entity exists, so either
    the whole relation is written or nothing is. The transaction's cancellation reasons
    tell the outcomes apart: a missing entity raises :class:`MissingEntities` naming all
    of them, an existing row is the no-op of a repeated INSERT (its ``createdAt``, and so
    its lake file, stay), and a conflict with a concurrent transaction — an identical
    INSERT racing this one — is retried, after which the existing row answers.
    """
    ids = _checked_references(join_table, references)
    relation_id = keys.relation_id(
        join_table.name, [(column.entity_key, ids[column.name]) for column in join_table.columns]
    )
    row = _row_item(join_table, relation_id, ids, keys.timestamp_text(clock()))
    entities = _referenced_entities(join_table, ids)
    exists = {"ExpressionAttributeNames": {"#pk": keys.PK}}
    transaction: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": table_name,
                "Item": wire(row),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                **exists,
            }
        },
        *(
            {"Put": {"TableName": table_name, "Item": wire(item)}}
            for item in _relation_items(join_table, relation_id, ids)
        ),
        *(
            {
                "ConditionCheck": {
                    "TableName": table_name,
                    "Key": wire(keys.entity_item_keys(entity_key, entity_id)),
                    "ConditionExpression": "attribute_exists(#pk)",
                    **exists,
                }
            }
            for (_, entity_id), entity_key in entities.items()
        ),
    ]
    attempt = 1
    while True:
        try:
            client.transact_write_items(TransactItems=transaction)
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            if _already_there(client, table_name, join_table, row, entities, error):
                return False
            if attempt == CREATE_ATTEMPTS:
                # Still contended: if the row made it in meanwhile, that is the answer.
                if _same_row(_stored_row(client, table_name, relation_id), row, join_table):
                    return False
                raise
        time.sleep(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1) * (1 + random.random()))
        attempt += 1


def _already_there(
    client: Any,
    table_name: str,
    join_table: JoinTable,
    row: Mapping[str, str],
    entities: Mapping[tuple[str, str], str],
    error: ClientError,
) -> bool:
    """Read a cancelled INSERT transaction: True when the row is already there, False
    when the transaction is worth another try; otherwise raises.

    The cancellation reasons follow the order of the transaction's items: the row's
    Put, the relation items' Puts, then one ConditionCheck per referenced entity.
    """
    reasons = error.response.get("CancellationReasons") or []
    codes = [reason.get("Code", "None") for reason in reasons]
    # The reasons of the entity checks; none if DynamoDB gave no reason per item.
    checks = codes[-len(entities) :] if len(codes) > len(entities) else []
    missing = tuple(
        entity
        for entity, code in zip(entities, checks, strict=False)
        if code == "ConditionalCheckFailed"
    )
    if missing:
        # Before the row: an entity deleted since the row was written is about to take
        # its relations with it (the cascade), so "does not exist" is the truth.
        raise MissingEntities(missing) from None
    if codes and codes[0] == "ConditionalCheckFailed":
        relation_id = row[keys.JOIN_ROW_RELATION_ID]
        stored = reasons[0].get("Item") or _stored_row(client, table_name, relation_id)
        if stored is None:
            return False  # deleted since the transaction looked: try again
        if _same_row(stored, row, join_table):
            return True
        raise _conflict(join_table, stored) from None
    if any(code in _RETRYABLE_REASONS for code in codes):
        logger.info("join INSERT into %s cancelled (%s); retrying", join_table.name, codes)
        return False
    raise error
