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
from chalicelib.table import table_definition

TABLE = "OCG-relations"
EVENTS = Path(__file__).resolve().parent / "events"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**table_definition(TABLE))
        yield client


def put_relation(client: Any, table: str, references: list[tuple[str, str]]) -> str:
    """What a join INSERT writes: the row item and one relation item per reference."""
    relation_id = keys.relation_id(table, references)
    items = [{**keys.join_row_item_keys(relation_id), keys.JOIN_ROW_TABLE_NAME: table}]
    items += [keys.join_relation_item_keys(t, i, relation_id) for t, i in references]
    for item in items:
        client.put_item(TableName=TABLE, Item={k: {"S": v} for k, v in item.items()})
    return relation_id


def all_keys(client: Any) -> set[str]:
    return {
        item["PK"]["S"] + " " + item["SK"]["S"] for item in client.scan(TableName=TABLE)["Items"]
    }


def test_every_relation_of_the_entity_goes_and_others_stay(dynamodb: Any) -> None:
    put_relation(dynamodb, "favorites", [("user", "u1"), ("product", "p1")])
    put_relation(dynamodb, "favorites", [("user", "u1"), ("product", "p2")])
    kept = put_relation(dynamodb, "favorites", [("user", "u2"), ("product", "p1")])

    assert delete_entity_relations(dynamodb, TABLE, "user", "u1") == 2

    assert all_keys(dynamodb) == {
        f"joinTableData#{kept} joinTableData#{kept}",
        f"joinRelation#user#u2 joinRelation#{kept}",
        f"joinRelation#product#p1 joinRelation#{kept}",
    }


def test_a_repeated_cascade_changes_nothing(dynamodb: Any) -> None:
    put_relation(dynamodb, "favorites", [("user", "u1"), ("product", "p1")])
    delete_entity_relations(dynamodb, TABLE, "user", "u1")

    assert delete_entity_relations(dynamodb, TABLE, "user", "u1") == 0
    assert all_keys(dynamodb) == set()


def test_a_bad_message_is_reported_and_the_good_one_processed(dynamodb: Any) -> None:
    put_relation(dynamodb, "favorites", [("user", "u1"), ("product", "p1")])
    event = json.loads((EVENTS / "sqs_cascade.json").read_text())

    response = process_cascade_event(event, dynamodb, TABLE)

    bad_message = event["Records"][1]["messageId"]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_message}]}
    assert all_keys(dynamodb) == set()


def test_a_failing_table_reports_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    event = json.loads((EVENTS / "sqs_cascade.json").read_text())
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        missing_table = boto3.client("dynamodb")
        response = process_cascade_event(event, missing_table, TABLE)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        record["messageId"] for record in event["Records"]
    ]
