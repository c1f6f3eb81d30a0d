"""Join relations created and deleted (cascade included), called directly with a moto table."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib import keys
from chalicelib.relations import (
    InvalidReference,
    MissingEntities,
    RelationConflict,
    create_relation,
    delete_entity_relations,
    delete_relation,
    process_cascade_event,
)
from chalicelib.schema.model import JoinColumn, JoinTable, SchemaModel
from chalicelib.store import StoreError
from chalicelib.table import table_definition

TABLE = "OCG-relations"
EVENTS = Path(__file__).resolve().parent / "events"
FAVORITES = JoinTable(
    "favorites", (JoinColumn("userId", "User"), JoinColumn("productId", "Product"))
)
USER_FAVORITES = JoinTable(
    "user_favorite_products", (JoinColumn("userId", "User"), JoinColumn("productId", "Product"))
)
FOLLOWS = JoinTable("follows", (JoinColumn("followerId", "User"), JoinColumn("followeeId", "User")))
MODEL = SchemaModel(
    source=Path("schema.graphql"),
    entities=(),
    enums={},
    scalars=(),
    task_responses=(),
    query_tasks=(),
    insert_mutations=(),
    delete_mutations=(),
    join_tables=(FAVORITES, USER_FAVORITES, FOLLOWS),
)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**table_definition(TABLE))
        yield client


def put_favorite(client: Any, user: str, product: str) -> str:
    """What a join INSERT writes: the row item and one relation item per reference."""
    relation_id = keys.relation_id("favorites", [("user", user), ("product", product)])
    row = {
        "PK": f"joinTableData#{relation_id}",
        "SK": f"joinTableData#{relation_id}",
        "entityType": "joinTableData",
        "relationId": relation_id,
        "tableName": "favorites",
        "userId": user,
        "productId": product,
        "createdAt": "2026-11-23T10:00:00.000Z",
    }
    relations = [
        {
            "PK": f"joinRelation#{t}#{i}",
            "SK": f"joinRelation#{relation_id}",
            "GSI1-PK": f"joinRelation#{relation_id}",
            "GSI1-SK": f"joinRelation#{t}#{i}",
        }
        for t, i in (("user", user), ("product", product))
    ]
    for item in [row, *relations]:
        client.put_item(TableName=TABLE, Item={k: {"S": v} for k, v in item.items()})
    return relation_id


def all_keys(client: Any) -> set[str]:
    items = client.scan(TableName=TABLE)["Items"]
    return {item["PK"]["S"] + " " + item["SK"]["S"] for item in items}


def test_every_relation_of_the_entity_goes_and_others_stay(dynamodb: Any) -> None:
    put_favorite(dynamodb, "u1", "p1")
    put_favorite(dynamodb, "u1", "p2")
    kept = put_favorite(dynamodb, "u2", "p1")

    assert delete_entity_relations(dynamodb, TABLE, MODEL, "user", "u1") == 2

    assert all_keys(dynamodb) == {
        f"joinTableData#{kept} joinTableData#{kept}",
        f"joinRelation#user#u2 joinRelation#{kept}",
        f"joinRelation#product#p1 joinRelation#{kept}",
    }


def test_a_repeated_cascade_changes_nothing(dynamodb: Any) -> None:
    put_favorite(dynamodb, "u1", "p1")
    delete_entity_relations(dynamodb, TABLE, MODEL, "user", "u1")

    assert delete_entity_relations(dynamodb, TABLE, MODEL, "user", "u1") == 0
    assert all_keys(dynamodb) == set()


class FailingOnDelete:
    """A DynamoDB client whose n-th batch delete fails, as a throttled or cut-off call would."""

    def __init__(self, client: Any, failing_call: int) -> None:
        self._client = client
        self._failing_call = failing_call
        self.deletes = 0

    def batch_write_item(self, **kwargs: Any) -> Any:
        self.deletes += 1
        if self.deletes == self._failing_call:
            raise ConnectionError("connection reset")
        return self._client.batch_write_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("failing_call", [1, 2, 3])
def test_a_cascade_cut_off_half_way_is_finished_by_the_retry(
    dynamodb: Any, failing_call: int
) -> None:
    put_favorite(dynamodb, "u1", "p1")
    flaky = FailingOnDelete(dynamodb, failing_call)

    with pytest.raises(ConnectionError):
        delete_entity_relations(flaky, TABLE, MODEL, "user", "u1")
    assert delete_entity_relations(dynamodb, TABLE, MODEL, "user", "u1") == 1

    assert all_keys(dynamodb) == set()


def test_without_its_row_item_a_relation_is_found_through_gsi1(dynamodb: Any) -> None:
    relation_id = put_favorite(dynamodb, "u1", "p1")
    row_key = {
        "PK": {"S": f"joinTableData#{relation_id}"},
        "SK": {"S": f"joinTableData#{relation_id}"},
    }
    dynamodb.delete_item(TableName=TABLE, Key=row_key)

    assert delete_entity_relations(dynamodb, TABLE, MODEL, "user", "u1") == 1
    assert all_keys(dynamodb) == set()


def test_a_bad_message_is_reported_and_the_good_one_processed(dynamodb: Any) -> None:
    put_favorite(dynamodb, "u1", "p1")
    event = json.loads((EVENTS / "sqs_cascade.json").read_text())

    response = process_cascade_event(event, dynamodb, TABLE, MODEL)

    bad_message = event["Records"][1]["messageId"]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_message}]}
    assert all_keys(dynamodb) == set()


def test_a_failing_table_reports_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    event = json.loads((EVENTS / "sqs_cascade.json").read_text())
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        missing_table = boto3.client("dynamodb")
        response = process_cascade_event(event, missing_table, TABLE, MODEL)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        record["messageId"] for record in event["Records"]
    ]


# --- Creation ----------------------------------------------------------------------------

# The test vector of DESIGN §3.
U1_P1 = "af4f92b1f99f9e7167a1627d42a9d405"
CREATED = datetime(2026, 11, 23, 19, 22, 14, 123000, tzinfo=UTC)
LATER = datetime(2026, 12, 24, 8, 0, tzinfo=UTC)


def put_entity(client: Any, entity_key: str, entity_id: str) -> None:
    item = {**keys.entity_item_keys(entity_key, entity_id), "entityType": entity_key}
    client.put_item(TableName=TABLE, Item={k: {"S": v} for k, v in item.items()})


def all_items(client: Any) -> dict[str, dict[str, str]]:
    """Every item by ``PK SK``, plain strings (every attribute here is one)."""
    items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {
        f"{item['PK']['S']} {item['SK']['S']}": {k: v["S"] for k, v in item.items()}
        for item in items
    }


def favorite(client: Any, user: str = "u1", product: str = "p1", at: datetime = CREATED) -> bool:
    references = {"userId": user, "productId": product}
    return create_relation(client, TABLE, USER_FAVORITES, references, clock=lambda: at)


@pytest.fixture
def shop_table(dynamodb: Any) -> Any:
    """The table with users u1, u2 and product p1."""
    put_entity(dynamodb, "user", "u1")
    put_entity(dynamodb, "user", "u2")
    put_entity(dynamodb, "product", "p1")
    return dynamodb


ENTITIES = {"user#u1 user#u1", "user#u2 user#u2", "product#p1 product#p1"}


def test_an_insert_writes_the_row_item_and_one_relation_item_per_column(shop_table: Any) -> None:
    assert favorite(shop_table) is True

    items = all_items(shop_table)
    assert set(items) - ENTITIES == {
        f"joinTableData#{U1_P1} joinTableData#{U1_P1}",
        f"joinRelation#user#u1 joinRelation#{U1_P1}",
        f"joinRelation#product#p1 joinRelation#{U1_P1}",
    }
    assert items[f"joinTableData#{U1_P1} joinTableData#{U1_P1}"] == {
        "PK": f"joinTableData#{U1_P1}",
        "SK": f"joinTableData#{U1_P1}",
        "entityType": "joinTableData",
        "relationId": U1_P1,
        "tableName": "user_favorite_products",
        "userId": "u1",
        "productId": "p1",
        "createdAt": "2026-11-23T19:22:14.123Z",
    }
    assert items[f"joinRelation#user#u1 joinRelation#{U1_P1}"] == {
        "PK": "joinRelation#user#u1",
        "SK": f"joinRelation#{U1_P1}",
        "GSI1-PK": f"joinRelation#{U1_P1}",
        "GSI1-SK": "joinRelation#user#u1",
        "relationId": U1_P1,
        "tableName": "user_favorite_products",
    }
    assert items[f"joinRelation#product#p1 joinRelation#{U1_P1}"] == {
        "PK": "joinRelation#product#p1",
        "SK": f"joinRelation#{U1_P1}",
        "GSI1-PK": f"joinRelation#{U1_P1}",
        "GSI1-SK": "joinRelation#product#p1",
        "relationId": U1_P1,
        "tableName": "user_favorite_products",
    }


def test_the_relation_id_does_not_depend_on_the_order_of_the_references(
    shop_table: Any,
) -> None:
    references = {"productId": "p1", "userId": "u1"}
    create_relation(shop_table, TABLE, USER_FAVORITES, references, clock=lambda: CREATED)

    assert f"joinTableData#{U1_P1} joinTableData#{U1_P1}" in all_items(shop_table)


def test_a_repeated_insert_writes_nothing_and_keeps_created_at(shop_table: Any) -> None:
    favorite(shop_table)
    before = all_items(shop_table)

    assert favorite(shop_table, at=LATER) is False
    assert all_items(shop_table) == before


@pytest.mark.parametrize(
    ("user", "product", "message"),
    [
        ("u9", "p1", "User 'u9' does not exist"),
        ("u1", "p9", "Product 'p9' does not exist"),
        ("u9", "p9", "User 'u9' and Product 'p9' do not exist"),
    ],
)
def test_a_missing_entity_is_named_and_nothing_is_written(
    shop_table: Any, user: str, product: str, message: str
) -> None:
    with pytest.raises(MissingEntities) as raised:
        favorite(shop_table, user, product)

    assert str(raised.value) == message
    assert isinstance(raised.value, StoreError)  # a client error in the GraphQL layer
    assert set(all_items(shop_table)) == ENTITIES


def test_a_missing_entity_wins_over_an_existing_row(shop_table: Any) -> None:
    """The entity was deleted and the cascade has not run yet: the row is on its way out."""
    favorite(shop_table)
    shop_table.delete_item(TableName=TABLE, Key={k: {"S": "product#p1"} for k in ("PK", "SK")})

    with pytest.raises(MissingEntities, match="Product 'p1' does not exist"):
        favorite(shop_table)


@pytest.mark.parametrize(
    ("references", "message"),
    [
        ({"userId": "", "productId": "p1"}, "user_favorite_products.userId must be a non-empty"),
        ({"userId": "u1", "productId": None}, "productId must be a non-empty Product id"),
        ({"userId": "u1", "productId": 7}, "productId must be a non-empty Product id, got 7"),
        ({"userId": "u1"}, "missing: productId"),
        ({"userId": "u1", "productId": "p1", "brandId": "b1"}, "unknown: brandId"),
        ({"userId": "\ud800", "productId": "p1"}, "not valid Unicode"),
        ({"userId": "u" * 1024, "productId": "p1"}, "too long to be a User id"),
    ],
)
def test_references_are_checked_before_anything_is_sent(
    shop_table: Any, references: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidReference, match=message):
        create_relation(shop_table, TABLE, USER_FAVORITES, references)

    assert set(all_items(shop_table)) == ENTITIES


class Serialised:
    """A client whose calls take turns, as DynamoDB serialises transactions on an item.

    moto's TransactWriteItems is not atomic across threads: it copies the whole table
    first and puts the copy back when cancelled, undoing what other threads wrote
    meanwhile. Everything else in the racing INSERTs still runs concurrently.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            with self._lock:
                return method(**kwargs)

        return call


def test_concurrent_identical_inserts_create_one_row_and_all_succeed(shop_table: Any) -> None:
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[bool] = []
    errors: list[BaseException] = []
    client = Serialised(shop_table)

    def insert(n: int) -> None:
        barrier.wait()
        try:
            results.append(favorite(client, at=CREATED.replace(second=n)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=insert, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [False] * (threads_count - 1) + [True]
    items = all_items(shop_table)
    assert len(items) == len(ENTITIES) + 3
    created_at = items[f"joinTableData#{U1_P1} joinTableData#{U1_P1}"]["createdAt"]
    assert created_at.startswith("2026-11-23T19:22:0")


def cancelled(*codes: str) -> ClientError:
    """What DynamoDB answers when a transaction is cancelled, one reason per item."""
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class RacedBy:
    """A client on which every transaction first lets ``rival`` run, then is cancelled for
    a conflict while ``conflicts`` lasts: how DynamoDB answers two identical transactions
    arriving together (moto applies them one after the other and never conflicts)."""

    def __init__(self, client: Any, conflicts: int, rival: Any = None) -> None:
        self._client = client
        self._rival = rival
        self.conflicts = conflicts
        self.calls = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        if self.conflicts:
            self.conflicts -= 1
            raise cancelled(*["TransactionConflict"] + ["None"] * 4)
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_conflict_is_retried(shop_table: Any) -> None:
    raced = RacedBy(shop_table, conflicts=2)

    assert favorite(raced) is True
    assert raced.calls == 3
    assert f"joinTableData#{U1_P1} joinTableData#{U1_P1}" in all_items(shop_table)


def test_a_conflict_with_an_identical_insert_answers_that_the_row_exists(
    shop_table: Any,
) -> None:
    raced = RacedBy(shop_table, conflicts=1, rival=lambda: favorite(shop_table))

    assert favorite(raced, at=LATER) is False
    row = all_items(shop_table)[f"joinTableData#{U1_P1} joinTableData#{U1_P1}"]
    assert row["createdAt"] == "2026-11-23T19:22:14.123Z"


def test_a_row_gone_between_the_check_and_the_read_is_written_again(shop_table: Any) -> None:
    """The row existed when the transaction ran and a deletion removed it before it
    could be read: the INSERT tries again rather than answer about a row it never saw."""

    class RowJustDeleted(RacedBy):
        def transact_write_items(self, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise cancelled("ConditionalCheckFailed", "None", "None", "None", "None")
            return self._client.transact_write_items(**kwargs)

    client = RowJustDeleted(shop_table, conflicts=0)
    assert favorite(client) is True
    assert client.calls == 2
    assert f"joinTableData#{U1_P1} joinTableData#{U1_P1}" in all_items(shop_table)


def test_endless_conflicts_end_in_the_error_unless_the_row_is_there(shop_table: Any) -> None:
    with pytest.raises(ClientError, match="cancelled"):
        favorite(RacedBy(shop_table, conflicts=99))
    assert set(all_items(shop_table)) == ENTITIES

    raced = RacedBy(shop_table, conflicts=99, rival=lambda: favorite(shop_table))
    assert favorite(raced) is False


def test_another_cancellation_is_not_retried(shop_table: Any) -> None:
    class Refused(RacedBy):
        def transact_write_items(self, **kwargs: Any) -> Any:
            self.calls += 1
            raise cancelled("ValidationError", "None", "None", "None", "None")

    client = Refused(shop_table, conflicts=0)
    with pytest.raises(ClientError):
        favorite(client)
    assert client.calls == 1


def test_after_an_insert_deleting_the_relation_removes_every_item(shop_table: Any) -> None:
    favorite(shop_table)

    delete_relation(shop_table, TABLE, MODEL, U1_P1)

    assert set(all_items(shop_table)) == ENTITIES
    assert favorite(shop_table) is True  # and it can be made again


@pytest.mark.parametrize(("entity_key", "entity_id"), [("user", "u1"), ("product", "p1")])
def test_after_an_insert_the_cascade_of_either_entity_removes_every_item(
    shop_table: Any, entity_key: str, entity_id: str
) -> None:
    favorite(shop_table)
    favorite(shop_table, user="u2")

    assert delete_entity_relations(shop_table, TABLE, MODEL, entity_key, entity_id) == (
        2 if entity_key == "product" else 1
    )

    remaining = set(all_items(shop_table)) - ENTITIES
    if entity_key == "product":
        assert remaining == set()
    else:
        kept = keys.relation_id("user_favorite_products", [("user", "u2"), ("product", "p1")])
        assert remaining == {
            f"joinTableData#{kept} joinTableData#{kept}",
            f"joinRelation#user#u2 joinRelation#{kept}",
            f"joinRelation#product#p1 joinRelation#{kept}",
        }


def follow(client: Any, follower: str, followee: str) -> bool:
    references = {"followerId": follower, "followeeId": followee}
    return create_relation(client, TABLE, FOLLOWS, references, clock=lambda: CREATED)


def test_two_columns_of_one_type_get_a_relation_item_each(shop_table: Any) -> None:
    assert follow(shop_table, "u1", "u2") is True

    rel = keys.relation_id("follows", [("user", "u1"), ("user", "u2")])
    items = all_items(shop_table)
    assert set(items) - ENTITIES == {
        f"joinTableData#{rel} joinTableData#{rel}",
        f"joinRelation#user#u1 joinRelation#{rel}",
        f"joinRelation#user#u2 joinRelation#{rel}",
    }
    row = items[f"joinTableData#{rel} joinTableData#{rel}"]
    assert (row["followerId"], row["followeeId"]) == ("u1", "u2")
    assert follow(shop_table, "u1", "u2") is False


def test_the_swapped_row_of_two_same_type_columns_is_refused(shop_table: Any) -> None:
    """DESIGN §3's relationId hashes the sorted ``type:id`` pairs, so (u1, u2) and
    (u2, u1) are one relationId: the second is an error, not a false ``true``."""
    follow(shop_table, "u1", "u2")
    before = all_items(shop_table)

    with pytest.raises(RelationConflict, match="followerId 'u1', followeeId 'u2'"):
        follow(shop_table, "u2", "u1")
    assert all_items(shop_table) == before


def test_an_entity_in_both_columns_has_one_relation_item(shop_table: Any) -> None:
    assert follow(shop_table, "u1", "u1") is True
    assert follow(shop_table, "u1", "u1") is False

    rel = keys.relation_id("follows", [("user", "u1"), ("user", "u1")])
    assert set(all_items(shop_table)) - ENTITIES == {
        f"joinTableData#{rel} joinTableData#{rel}",
        f"joinRelation#user#u1 joinRelation#{rel}",
    }
    assert delete_entity_relations(shop_table, TABLE, MODEL, "user", "u1") == 1
    assert set(all_items(shop_table)) == ENTITIES


def test_a_self_reference_to_a_missing_entity_is_named_once(shop_table: Any) -> None:
    with pytest.raises(MissingEntities) as raised:
        follow(shop_table, "u9", "u9")

    assert str(raised.value) == "User 'u9' does not exist"
