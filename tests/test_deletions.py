"""Deletion tasks at scale: Athena (moto) selects, the deletion listener deletes.

The SELECT of a DELETE mutation runs on the Athena engine against moto, with its 2,500
result rows injected through moto's API and paged as Athena pages them; the deletion
queue is a moto SQS queue, and the listener gets its messages as Lambda would.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import keys
from chalicelib.deletions import process_deletion_event
from chalicelib.tasks.service import TaskService, TaskStatus, TaskType
from tests.athena_world import TABLE, AthenaWorld
from tests.test_relations import MODEL, USER_FAVORITES, FailingOnDelete

FAVORITES = USER_FAVORITES
SELECT = "SELECT f.s3Key, f.relationId FROM user_favorite_products f WHERE f.productId = 'p1'"


def relation_items(user: str, product: str) -> tuple[str, list[dict[str, str]]]:
    """The row item and relation items of one favourite, as a join INSERT writes them."""
    relation_id = keys.relation_id(FAVORITES.name, [("user", user), ("product", product)])
    row = {
        **keys.join_row_item_keys(relation_id),
        keys.ENTITY_TYPE: keys.JOIN_ROW_ENTITY_TYPE,
        keys.JOIN_ROW_RELATION_ID: relation_id,
        keys.JOIN_ROW_TABLE_NAME: FAVORITES.name,
        "userId": user,
        "productId": product,
        keys.CREATED_AT: "2026-11-23T10:00:00.000Z",
    }
    related = [
        keys.join_relation_item_keys("user", user, relation_id),
        keys.join_relation_item_keys("product", product, relation_id),
    ]
    return relation_id, [row, *related]


def put_favorites(client: Any, pairs: list[tuple[str, str]], table: str = TABLE) -> list[str]:
    """Join rows written directly, 25 items a call (INSERT's transactions, one per row,
    would make a 300-row set-up slow on moto)."""
    relation_ids, items = [], []
    for user, product in pairs:
        relation_id, written = relation_items(user, product)
        relation_ids.append(relation_id)
        items += written
    for start in range(0, len(items), 25):
        requests = [
            {"PutRequest": {"Item": {k: {"S": v} for k, v in item.items()}}}
            for item in items[start : start + 25]
        ]
        client.batch_write_item(RequestItems={table: requests})
    return relation_ids


def table_keys(client: Any) -> set[str]:
    items = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE):
        items += page["Items"]
    return {item["PK"]["S"] + " " + item["SK"]["S"] for item in items}


class DeletionWorld:
    """The task service with a real deletion queue, and the listener fed from it."""

    def __init__(self, world: AthenaWorld) -> None:
        import boto3

        self.world = world
        self.sqs = boto3.client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName="deletions")["QueueUrl"]
        self.tasks = TaskService(world.dynamodb, TABLE, world.engine, queue_deletion=self.queue)

    def queue(self, task_id: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"taskId": task_id}))

    def messages(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return list(received.get("Messages", []))

    def deliver(self, message: dict[str, Any], client: Any | None = None) -> dict[str, Any]:
        """What Lambda's SQS event source does with one received message."""
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "body": message["Body"],
                    "eventSource": "aws:sqs",
                }
            ]
        }
        return process_deletion_event(
            event, self.tasks, client or self.world.dynamodb, TABLE, MODEL
        )


@pytest.fixture
def deletion(world: AthenaWorld) -> DeletionWorld:
    return DeletionWorld(world)


def select_result(world: AthenaWorld, relation_ids: list[str]) -> None:
    world.inject_results(
        ["s3key", "relationid"],
        [[f"tables/user_favorite_products/x/{r}.parquet", r] for r in relation_ids],
    )


def test_a_deletion_task_deletes_every_selected_row_across_pages(
    deletion: DeletionWorld,
) -> None:
    pairs = [(f"u{n}", "p1") for n in range(2500)]
    selected = put_favorites(deletion.world.dynamodb, pairs)
    kept = put_favorites(deletion.world.dynamodb, [("u1", "p2")])
    select_result(deletion.world, selected)

    task = deletion.tasks.trigger(TaskType.DELETION, "removeFavoritesOfProduct", SELECT)
    polled = deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    assert polled.status is TaskStatus.RUNNING  # the SELECT is done; the rows are not
    (message,) = deletion.messages()

    assert deletion.deliver(message) == {"batchItemFailures": []}

    done = deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    assert done.status is TaskStatus.SUCCEEDED
    assert done.deleted_count == 2500
    assert done.finish_date is not None
    _, kept_items = relation_items("u1", "p2")
    assert table_keys(deletion.world.dynamodb) == {
        f"{item['PK']} {item['SK']}" for item in kept_items
    } | {f"task#{task.task_id} task#{task.task_id}"}
    assert kept


def test_polling_and_a_late_event_queue_the_task_once(deletion: DeletionWorld) -> None:
    select_result(deletion.world, put_favorites(deletion.world.dynamodb, [("u1", "p1")]))
    task = deletion.tasks.trigger(TaskType.DELETION, "removeFavoritesOfProduct", SELECT)

    for _ in range(3):  # the state-change event never came: polls find the SELECT done
        deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    late = {
        "currentState": "SUCCEEDED",
        "queryExecutionId": task.task_id,
        "workgroupName": "ocg-tasks",
    }
    assert deletion.tasks.record_state_change(late, None) is False

    assert len(deletion.messages()) == 1


def test_the_same_message_twice_deletes_once_and_changes_nothing_more(
    deletion: DeletionWorld,
) -> None:
    select_result(deletion.world, put_favorites(deletion.world.dynamodb, [("u1", "p1")]))
    task = deletion.tasks.trigger(TaskType.DELETION, "removeFavoritesOfProduct", SELECT)
    deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    (message,) = deletion.messages()

    deletion.deliver(message)
    first = deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    assert deletion.deliver(message) == {"batchItemFailures": []}

    assert deletion.tasks.task(task.task_id, "removeFavoritesOfProduct") == first
    assert first.deleted_count == 1


def test_a_failure_half_way_is_reported_and_the_redelivery_finishes(
    deletion: DeletionWorld,
) -> None:
    selected = put_favorites(deletion.world.dynamodb, [(f"u{n}", "p1") for n in range(300)])
    select_result(deletion.world, selected)
    task = deletion.tasks.trigger(TaskType.DELETION, "removeFavoritesOfProduct", SELECT)
    deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    (message,) = deletion.messages()

    flaky = FailingOnDelete(deletion.world.dynamodb, failing_call=5)
    failed = deletion.deliver(message, client=flaky)

    assert failed == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    half = deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    assert half.status is TaskStatus.RUNNING
    assert 0 < len(table_keys(deletion.world.dynamodb)) - 1 < 900
    assert deletion.deliver(message) == {"batchItemFailures": []}
    done = deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    assert (done.status, done.deleted_count) == (TaskStatus.SUCCEEDED, 300)
    assert table_keys(deletion.world.dynamodb) == {f"task#{task.task_id} task#{task.task_id}"}


def test_a_failed_select_fails_the_task_and_queues_nothing(deletion: DeletionWorld) -> None:
    task = deletion.tasks.trigger(TaskType.DELETION, "removeFavoritesOfProduct", SELECT)
    failed = {
        "currentState": "FAILED",
        "queryExecutionId": task.task_id,
        "athenaError": {"errorMessage": "TABLE_NOT_FOUND: user_favorite_products"},
    }

    deletion.tasks.record_state_change(failed, None)

    result = deletion.tasks.task(task.task_id, "removeFavoritesOfProduct")
    assert result.status is TaskStatus.FAILED
    assert result.error_message == "TABLE_NOT_FOUND: user_favorite_products"
    assert deletion.messages() == []


def test_a_message_for_no_deletion_task_is_reported(deletion: DeletionWorld) -> None:
    message = {"MessageId": "m-1", "Body": json.dumps({"taskId": "unknown"})}
    malformed = {"MessageId": "m-2", "Body": "not json"}

    assert deletion.deliver(message) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert deletion.deliver(malformed) == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
