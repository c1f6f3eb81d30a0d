"""The deletion listener (DESIGN §5, §7): a deletion task's selected rows removed.

A message ``{"taskId": id}`` is queued once the task's SELECT (``DELETE a FROM
$join_table(t) a …`` rewritten to ``SELECT a.s3Key, a.relationId …``) has succeeded.
Every row of that result, all pages, names a join row to delete with its relation
items; the stream handler then removes the row's Parquet file, so the lake keeps a
single writer. The task is SUCCEEDED only afterwards.

Redelivery is harmless: deleting a relation that is already gone is a no-op, and the
task's completion is a conditional update that only a task still deleting accepts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from chalicelib import keys
from chalicelib.relations import delete_relations
from chalicelib.schema.model import SchemaModel
from chalicelib.tasks.service import DeletionStep, TaskService, TaskStatus
from chalicelib.telemetry import log_fields, metrics

logger = logging.getLogger(__name__)

# The SELECT's column naming each join row, as Athena names it (lower-cased).
RELATION_ID_COLUMN = keys.JOIN_ROW_RELATION_ID.lower()


class DeletionError(RuntimeError):
    """A deletion task cannot be carried out now; its message is delivered again."""


def run_deletion_task(
    task_id: str, tasks: TaskService, client: Any, table_name: str, model: SchemaModel
) -> int:
    """Delete every join row the task selected; returns how many it selected."""
    task = tasks.deletion_task(task_id)
    if task.status is TaskStatus.SUCCEEDED:
        logger.info("deletion task %s was carried out already", task_id)
        return task.deleted_count or 0
    if task.status is not TaskStatus.RUNNING or task.deletion_step is not DeletionStep.QUEUED:
        raise DeletionError(f"deletion task {task_id} is {task.status}, not queued for deletion")
    relation_ids: dict[str, None] = {}
    pages, _ = tasks.results(task, next_token=None, limit=None)
    for page in pages:
        if page.rows and RELATION_ID_COLUMN not in page.columns:
            raise DeletionError(
                f"deletion task {task_id}: its result has no {RELATION_ID_COLUMN} column "
                f"(columns: {', '.join(page.columns)})"
            )
        if page.rows:
            position = page.columns.index(RELATION_ID_COLUMN)
            relation_ids.update(
                dict.fromkeys(str(row[position]) for row in page.rows if row[position])
            )
    delete_relations(client, table_name, model, list(relation_ids))
    if tasks.complete_deletion(task, len(relation_ids)):
        metrics.count(metrics.JOIN_ROWS_REMOVED, len(relation_ids))
    logger.info(
        "deletion task %s: %d join row(s) deleted",
        task_id,
        len(relation_ids),
        extra={
            "taskId": task_id,
            "taskType": task.task_type.value,
            "joinRowsRemoved": len(relation_ids),
        },
    )
    return len(relation_ids)


def process_deletion_event(
    event: Mapping[str, Any],
    tasks: TaskService,
    client: Any,
    table_name: str,
    model: SchemaModel,
) -> dict[str, Any]:
    """SQS batch of ``{"taskId"}`` messages in, partial batch response out: a message
    that fails is reported back, redelivered alone, and dead-lettered after the redrive
    limit; nothing is dropped."""
    failures = []
    for record in event.get("Records", []):
        with log_fields(correlationId=record.get("messageId")):
            try:
                task_id = json.loads(record["body"])["taskId"]
                if not isinstance(task_id, str):
                    raise ValueError("taskId must be a string")
                run_deletion_task(task_id, tasks, client, table_name, model)
            except Exception:
                logger.exception("deletion message %s failed", record.get("messageId"))
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def finished_task_ids(event: Mapping[str, Any], response: Mapping[str, Any]) -> list[str]:
    """The tasks of a batch whose message did not fail: their deletion has finished."""
    failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
    task_ids = []
    for record in event.get("Records", []):
        if record.get("messageId") in failed:
            continue
        task_id = json.loads(record["body"]).get("taskId")
        if isinstance(task_id, str):
            task_ids.append(task_id)
    return task_ids
