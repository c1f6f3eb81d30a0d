"""Cascade deletion of join relations, called directly with a moto table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import keys
from chalicelib.relations import delete_entity_relations, process_cascade_event
from chalicelib.schema.model import JoinColumn, JoinTable, SchemaModel
from chalicelib.table import table_definition

TABLE = "OCG-relations"
EVENTS = Path(__file__).resolve().parent / "events"
FAVORITES = JoinTable(
    "favorites", (JoinColumn("userId", "User"), JoinColumn("productId", "Product"))
)
MODEL = SchemaModel(
    source=Path("schema.graphql"),
    entities=(),
    enums={},
    scalars=(),
    task_responses=(),
    query_tasks=(),
    insert_mutations=(),
    delete_mutations=(),
    join_tables=(FAVORITES,),
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
    """A DynamoDB client whose n-th delete_item fails, as a throttled or cut-off call would."""

    def __init__(self, client: Any, failing_call: int) -> None:
        self._client = client
        self._failing_call = failing_call
        self.deletes = 0

    def delete_item(self, **kwargs: Any) -> Any:
        self.deletes += 1
        if self.deletes == self._failing_call:
            raise ConnectionError("connection reset")
        return self._client.delete_item(**kwargs)

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
