"""Storage formats (DESIGN §3, §4): the single source of every key the app writes.

DynamoDB keys of the single table and the data lake's object keys are built here and
nowhere else, so the store, the stream handler and the deletion listeners agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

PK, SK = "PK", "SK"
GSI1_PK, GSI1_SK, GSI1 = "GSI1-PK", "GSI1-SK", "GSI1"
GSI2_PK, GSI2_SK, GSI2 = "GSI2-PK", "GSI2-SK", "GSI2"
ENTITY_TYPE = "entityType"
EXPIRES_AT = "expiresAt"

TASK_PREFIX = "task"
OWNER_PREFIX = "owner"
WS_CONNECTION_PREFIX = "wsConnection"
WS_SUBSCRIPTION_PREFIX = "wsSubscription"
WS_TOPIC_PREFIX = "wsTopic"
JOIN_RELATION_PREFIX = "joinRelation"
JOIN_ROW_PREFIX = "joinTableData"
# Item kinds that are not entities: an entity's ``t`` may not take one of these names.
INTERNAL_PREFIXES = (
    TASK_PREFIX,
    JOIN_RELATION_PREFIX,
    JOIN_ROW_PREFIX,
    WS_CONNECTION_PREFIX,
    WS_SUBSCRIPTION_PREFIX,
    WS_TOPIC_PREFIX,
)
# The lake's three layers (docs/lake.md): the live per-item files the stream handler
# writes, the compacted files compaction folds them into, and the tombstones of removed
# items that hide their compacted rows.
LAKE_PREFIX = "tables"
COMPACTED_PREFIX = "compacted"
DELETED_PREFIX = "deleted"
LAKE_LAYER_PREFIXES = (LAKE_PREFIX, COMPACTED_PREFIX, DELETED_PREFIX)
# The lake's partition columns, in path order.
PARTITION_KEYS = ("year", "month", "day")


def utc_now() -> datetime:
    """The clock of every stored time (injected where tests need another one)."""
    return datetime.now(UTC)


def timestamp_text(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z`` (``2026-11-23T19:22:14.123Z``).

    Every stored time has this form, so times sort as text: GSI2's sort key relies on
    it, and the lake's partitions read the date from its first ten characters.
    """
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entity_key(entity_key_name: str, entity_id: str) -> str:
    """``t#id``: both PK and SK of an entity item."""
    return f"{entity_key_name}#{entity_id}"


def entity_item_keys(entity_key_name: str, entity_id: str) -> dict[str, str]:
    key = entity_key(entity_key_name, entity_id)
    return {PK: key, SK: key}


def entity_list_keys(entity_key_name: str, entity_id: str, created_at: str) -> dict[str, str]:
    """GSI2 keys: one partition per entity type, sorted by creation time."""
    return {GSI2_PK: entity_key_name, GSI2_SK: f"{created_at}#{entity_id}"}


def owner_list_partition(entity_key_name: str, owner: str) -> str:
    """``owner#t#owner``: the GSI1 partition of one owner's items of one type."""
    return f"{OWNER_PREFIX}#{entity_key_name}#{owner}"


def owner_list_keys(
    entity_key_name: str, owner: str, entity_id: str, created_at: str
) -> dict[str, str]:
    """GSI1 keys of an item with an owner (``@auth`` owner rules): the owner lists their
    own items from one partition, sorted by creation time as GSI2 sorts everyone's."""
    return {
        GSI1_PK: owner_list_partition(entity_key_name, owner),
        GSI1_SK: entity_list_keys(entity_key_name, entity_id, created_at)[GSI2_SK],
    }


def ws_connection_partition(connection_id: str) -> str:
    """``wsConnection#id``: the partition of a WebSocket connection and its subscriptions."""
    return f"{WS_CONNECTION_PREFIX}#{connection_id}"


def ws_connection_item_keys(connection_id: str) -> dict[str, str]:
    key = ws_connection_partition(connection_id)
    return {PK: key, SK: key}


def ws_subscription_item_keys(
    connection_id: str, subscription_id: str, topic: str
) -> dict[str, str]:
    """One subscription: under its connection (removed with it), and in GSI1 under its
    topic, where an event finds every subscriber."""
    return {
        PK: ws_connection_partition(connection_id),
        SK: f"{WS_SUBSCRIPTION_PREFIX}#{subscription_id}",
        GSI1_PK: ws_topic_partition(topic),
        GSI1_SK: f"{connection_id}#{subscription_id}",
    }


def ws_topic_partition(topic: str) -> str:
    return f"{WS_TOPIC_PREFIX}#{topic}"


def entity_topic(entity_key_name: str, change: str) -> str:
    """What an entity subscription listens to: ``t#create``, ``t#update``, ``t#delete``."""
    return f"{entity_key_name}#{change}"


def task_topic(task_id: str) -> str:
    return f"{TASK_PREFIX}#{task_id}"


def relation_id(table: str, references: Iterable[tuple[str, str]]) -> str:
    """The id of a join row: stable for the same table and referenced entities.

    ``references`` are ``(entity_key, entity_id)`` pairs; their order does not matter.
    """
    parts = sorted(f"{entity_type}:{value}" for entity_type, value in references)
    digest = hashlib.sha256(f"{table}|{'|'.join(parts)}".encode()).hexdigest()
    return digest[:32]


def task_item_keys(task_id: str) -> dict[str, str]:
    """``task#taskId``: both PK and SK of a task item; the id is the engine's execution id."""
    key = f"{TASK_PREFIX}#{task_id}"
    return {PK: key, SK: key}


def join_row_item_keys(rel_id: str) -> dict[str, str]:
    key = f"{JOIN_ROW_PREFIX}#{rel_id}"
    return {PK: key, SK: key}


def relation_partition(rel_id: str) -> str:
    """``joinRelation#relationId``: the SK of every relation item, and its GSI1 partition."""
    return f"{JOIN_RELATION_PREFIX}#{rel_id}"


def relation_id_of(relation_sort_key: str) -> str:
    """The relation id in a relation item's SK."""
    return relation_sort_key.removeprefix(f"{JOIN_RELATION_PREFIX}#")


def entity_relations_partition(entity_key_name: str, entity_id: str) -> str:
    """The PK under which all relation items of one entity live."""
    return f"{JOIN_RELATION_PREFIX}#{entity_key_name}#{entity_id}"


def join_relation_item_keys(entity_key_name: str, entity_id: str, rel_id: str) -> dict[str, str]:
    """One relation item per referenced entity; GSI1 finds all items of a relation."""
    entity_side = entity_relations_partition(entity_key_name, entity_id)
    relation_side = relation_partition(rel_id)
    return {PK: entity_side, SK: relation_side, GSI1_PK: relation_side, GSI1_SK: entity_side}


def lake_object_key(table: str, created_at: str, object_id: str) -> str:
    """``tables/<t>/year=YYYY/month=MM/day=DD/<id>.parquet``, dated by ``createdAt``.

    ``created_at`` is the ISO-8601 timestamp the store writes (``2026-11-23T19:22:14.123Z``).
    """
    values = (created_at[0:4], created_at[5:7], created_at[8:10])
    partition = "/".join(
        f"{key}={value}" for key, value in zip(PARTITION_KEYS, values, strict=True)
    )
    return f"{LAKE_PREFIX}/{table}/{partition}/{object_id}.parquet"


def lake_table_prefix(table: str, layer: str = LAKE_PREFIX) -> str:
    """``<layer>/<t>/``: where one layer of a lake table keeps its objects."""
    return f"{layer}/{table}/"


def tombstone_key(live_key: str) -> str:
    """The tombstone of a live object: its key under ``deleted/`` instead of ``tables/``."""
    return f"{DELETED_PREFIX}/{live_key.removeprefix(f'{LAKE_PREFIX}/')}"


def lake_partition(object_key: str) -> tuple[str, str] | None:
    """``(t, "year=Y/month=M/day=D")`` of an object of any layer, or None for a key
    outside the layout (a hidden ``.``/``_`` name, a file outside a day's folder)."""
    parts = object_key.split("/")
    if (
        len(parts) != len(PARTITION_KEYS) + 3
        or parts[0] not in LAKE_LAYER_PREFIXES
        or not all(
            part.startswith(f"{name}=")
            for part, name in zip(parts[2:-1], PARTITION_KEYS, strict=True)
        )
        or not parts[-1].endswith(".parquet")
        or parts[-1].startswith((".", "_"))
    ):
        return None
    return parts[1], "/".join(parts[2:-1])


def compacted_object_key(table: str, partition: str, generation: int, part: int) -> str:
    """``compacted/<t>/<partition>/<generation>-<part>.parquet``: one of the files a
    compaction run wrote for a partition (``partition`` as :func:`lake_partition` gives it)."""
    return f"{COMPACTED_PREFIX}/{table}/{partition}/{generation:016d}-{part:04d}.parquet"


def compacted_generation(object_key: str) -> int | None:
    """The generation of a compacted file, from its name; None for another name."""
    stem = object_key.rsplit("/", 1)[-1].removesuffix(".parquet")
    generation, _, part = stem.partition("-")
    return int(generation) if generation.isdigit() and part.isdigit() else None


# Attributes of a join row item (DESIGN §3), the contract between the writer of join
# rows and the lake: ``relationId``, ``tableName`` (the join table), one attribute per
# typed column named as the column (``userId``, ``productId``: the referenced ids) and
# ``createdAt`` (ISO-8601 UTC, as on entity items). Its ``entityType`` is
# ``JOIN_ROW_ENTITY_TYPE``: it has capitals, so it never equals an entity's lower-cased
# ``t``, and items without ``entityType`` are never mirrored into the lake.
JOIN_ROW_ENTITY_TYPE = JOIN_ROW_PREFIX
JOIN_ROW_RELATION_ID = "relationId"
JOIN_ROW_TABLE_NAME = "tableName"
CREATED_AT = "createdAt"
# The lake column of a join row that holds the row's own object key: what a deletion
# task's SELECT returns (DESIGN §6).
LAKE_S3_KEY = "s3Key"
