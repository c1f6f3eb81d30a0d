"""Task items (DESIGN §3, §5): started by a trigger, finished by the tracker or a poll.

A task's id is the engine's execution id. Its item is written once, RUNNING, and moved
to SUCCEEDED or FAILED by one conditional update that only a RUNNING task accepts, so
the state-change event and a ``taskResult…`` poll can race, arrive twice or late, and
the first to arrive wins while the others change nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib import keys
from chalicelib.tasks.engine import (
    MAX_PAGE_ROWS,
    QueryEngine,
    QueryExecution,
    QueryState,
    ResultPage,
)

logger = logging.getLogger(__name__)

# How long a task and its result stay readable; DynamoDB's TTL removes the item after.
TASK_RETENTION = timedelta(days=30)

TASK_ID, TASK_TYPE, FIELD_NAME = "taskId", "taskType", "fieldName"
TASK_STATUS, START_DATE, FINISH_DATE, ERROR_MESSAGE = (
    "taskStatus",
    "startDate",
    "finishDate",
    "errorMessage",
)


class TaskType(StrEnum):
    QUERY = "query"
    DELETION = "deletion"


class TaskStatus(StrEnum):
    """The states a client sees (DESIGN §2); the engine's QUEUED/RUNNING are RUNNING."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class TaskNotFound(LookupError):
    """No task of this field has this id; the message is meant for the client."""


class TaskNotRecorded(RuntimeError):
    """A state change for a task whose item is not written yet: the event must be retried."""


@dataclass(frozen=True)
class Task:
    task_id: str
    task_type: TaskType
    field_name: str
    status: TaskStatus
    start_date: str
    finish_date: str | None = None
    error_message: str | None = None


def _final_status(execution: QueryExecution) -> tuple[TaskStatus, str | None]:
    if execution.state is QueryState.SUCCEEDED:
        return TaskStatus.SUCCEEDED, None
    if execution.state is QueryState.CANCELLED:
        return TaskStatus.FAILED, execution.reason or "the query was cancelled"
    return TaskStatus.FAILED, execution.reason or "the query failed"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TaskService:
    def __init__(
        self,
        client: Any,
        table: str,
        engine: QueryEngine,
        *,
        clock: Callable[[], datetime] = _utc_now,
        new_token: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._client = client
        self._table = table
        self.engine = engine
        self._clock = clock
        self._new_token = new_token
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def trigger(self, task_type: TaskType, field_name: str, sql: str) -> Task:
        """Start ``sql`` and record the task; the engine may finish before the record
        exists, which the tracker handles by having its event retried."""
        execution_id = self.engine.start(sql, self._new_token())
        now = self._clock()
        task = Task(
            execution_id, task_type, field_name, TaskStatus.RUNNING, keys.timestamp_text(now)
        )
        item = {
            **keys.task_item_keys(execution_id),
            TASK_ID: execution_id,
            TASK_TYPE: task_type.value,
            FIELD_NAME: field_name,
            TASK_STATUS: task.status.value,
            START_DATE: task.start_date,
            keys.EXPIRES_AT: int((now + TASK_RETENTION).timestamp()),
        }
        self._client.put_item(
            TableName=self._table,
            Item={name: self._serializer.serialize(value) for name, value in item.items()},
        )
        return task

    def task(self, task_id: str, field_name: str) -> Task:
        """The task as it stands now, asking the engine when it still says RUNNING, so a
        lost state-change event never strands it."""
        task = self._read(task_id)
        if task is None or task.field_name != field_name:
            raise TaskNotFound(f"no task {task_id!r} of {field_name}")
        if task.status is not TaskStatus.RUNNING:
            return task
        execution = self.engine.execution(task_id)
        if not execution.state.finished:
            return task
        self.finish(execution, execution.completed or self._clock())
        return self._read(task_id) or task

    def record_state_change(self, detail: Mapping[str, Any], time: datetime | None) -> bool:
        """The tracker: an "Athena Query State Change" event's detail. Returns whether
        it moved the task; states that are not final change nothing.

        The finish time and the failure reason come from the engine's record of the
        execution (the event's time has whole seconds only); the event's own error
        message is preferred when it has one.
        """
        state = QueryState(detail["currentState"])
        if not state.finished:
            return False
        recorded = self.engine.execution(str(detail["queryExecutionId"]))
        reason = (detail.get("athenaError") or {}).get("errorMessage") or recorded.reason
        execution = QueryExecution(recorded.execution_id, state, reason)
        return self.finish(execution, recorded.completed or time or self._clock())

    def finish(self, execution: QueryExecution, finished_at: datetime) -> bool:
        """Move a RUNNING task to its final state; False when it was final already.

        Raises :class:`TaskNotRecorded` when there is no task item (yet).
        """
        status, message = _final_status(execution)
        values: dict[str, Any] = {
            ":running": TaskStatus.RUNNING.value,
            ":status": status.value,
            ":finish": keys.timestamp_text(finished_at),
        }
        update = "SET #status = :status, #finish = :finish"
        names = {"#status": TASK_STATUS, "#finish": FINISH_DATE, "#pk": keys.PK}
        if message is not None:
            update += ", #error = :error"
            names["#error"] = ERROR_MESSAGE
            values[":error"] = message
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(execution.execution_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(#pk) AND #status = :running",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    k: self._serializer.serialize(v) for k, v in values.items()
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            if self._read(execution.execution_id) is None:
                raise TaskNotRecorded(
                    f"no task item for query execution {execution.execution_id} yet"
                ) from None
            logger.debug(
                "task %s was final already; %s changes nothing", execution.execution_id, status
            )
            return False
        return True

    def results(
        self, task: Task, *, next_token: str | None, limit: int | None
    ) -> tuple[list[ResultPage], str | None]:
        """Every page of a SUCCEEDED task from ``next_token`` on, or one page of ``limit``
        rows when the caller pages."""
        if limit is not None:
            page = self.engine.results(task.task_id, next_token=next_token, max_rows=limit)
            return [page], page.next_token
        pages = [self.engine.results(task.task_id, next_token=next_token, max_rows=MAX_PAGE_ROWS)]
        while pages[-1].next_token is not None:
            pages.append(
                self.engine.results(
                    task.task_id, next_token=pages[-1].next_token, max_rows=MAX_PAGE_ROWS
                )
            )
        return pages, None

    def _key(self, task_id: str) -> dict[str, Any]:
        return {
            name: self._serializer.serialize(v) for name, v in keys.task_item_keys(task_id).items()
        }

    def _read(self, task_id: str) -> Task | None:
        response = self._client.get_item(
            TableName=self._table, Key=self._key(task_id), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        plain = {name: self._deserializer.deserialize(value) for name, value in item.items()}
        return Task(
            task_id=str(plain[TASK_ID]),
            task_type=TaskType(plain[TASK_TYPE]),
            field_name=str(plain[FIELD_NAME]),
            status=TaskStatus(plain[TASK_STATUS]),
            start_date=str(plain[START_DATE]),
            finish_date=plain.get(FINISH_DATE),
            error_message=plain.get(ERROR_MESSAGE),
        )
