"""Task items (DESIGN §3, §5): started by a trigger, finished by the tracker or a poll.

A task's id is the engine's execution id. Its item is written once, RUNNING, and every
later step is one conditional update that only the expected state accepts, so the
state-change event and a ``taskResult…`` poll can race, arrive twice or late, and the
first to arrive wins while the others change nothing.

A query task is final when its query is. A deletion task has one more step: when its
SELECT succeeded, it moves from ``SELECTING`` to ``QUEUED`` and is sent to the deletion
queue, by whichever of the tracker and a poll gets there first, once; the deletion
listener makes it SUCCEEDED when every selected row is gone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib import keys
from chalicelib.messages import shown
from chalicelib.tasks.engine import (
    MAX_PAGE_ROWS,
    QueryEngine,
    QueryExecution,
    QueryState,
    QueryStatistics,
    ResultPage,
)
from chalicelib.telemetry import metrics

logger = logging.getLogger(__name__)

# How long a task and its result stay readable; DynamoDB's TTL removes the item after.
TASK_RETENTION = timedelta(days=30)
# A trigger records its task as soon as Athena has accepted the query. A query still
# unrecorded this long after its submission never will be: one run in the workgroup by
# hand, or by a trigger that failed before recording. Shorter than Lambda's first retry
# of an event (about a minute), so such a query costs one failed attempt, not a message
# in the tracker's failure queue.
UNRECORDED_GRACE = timedelta(seconds=30)
MILLISECOND = timedelta(milliseconds=1)
# A task id is an engine's execution id (a UUID): a longer one is no task, never a key.
MAX_TASK_ID = 128

TASK_ID, TASK_TYPE, FIELD_NAME = "taskId", "taskType", "fieldName"
TASK_STATUS, START_DATE, FINISH_DATE, ERROR_MESSAGE = (
    "taskStatus",
    "startDate",
    "finishDate",
    "errorMessage",
)
DELETION_STEP, DELETED_COUNT = "deletionStep", "deletedCount"
# The engine's report of the task's query (QueryStatistics), as one map attribute.
STATISTICS = "statistics"
# The ``sub`` of the signed-in user who triggered the task; absent for a public caller.
TRIGGERED_BY = "triggeredBy"
_STATISTICS_FIELDS = (
    ("dataScannedBytes", "data_scanned_bytes"),
    ("engineMillis", "engine_millis"),
    ("queueMillis", "queue_millis"),
    ("resultReused", "result_reused"),
)


class TaskType(StrEnum):
    QUERY = "query"
    DELETION = "deletion"


class TaskStatus(StrEnum):
    """The states a client sees (DESIGN §2); the engine's QUEUED/RUNNING are RUNNING."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class DeletionStep(StrEnum):
    """Where a RUNNING deletion task is: its SELECT runs, or its rows are being deleted."""

    SELECTING = "SELECTING"
    QUEUED = "QUEUED"


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
    deletion_step: DeletionStep | None = None
    deleted_count: int | None = None
    statistics: QueryStatistics | None = None  # once its query finished
    triggered_by: str | None = None  # the user's sub; None: a caller not signed in


def _final_status(execution: QueryExecution) -> tuple[TaskStatus, str | None]:
    if execution.state is QueryState.SUCCEEDED:
        return TaskStatus.SUCCEEDED, None
    if execution.state is QueryState.CANCELLED:
        return TaskStatus.FAILED, execution.reason or "the query was cancelled"
    return TaskStatus.FAILED, execution.reason or "the query failed"


def _statistics_item(statistics: QueryStatistics) -> dict[str, Any]:
    """The map attribute of a task's statistics; what the engine did not report is left out."""
    return {
        name: getattr(statistics, field)
        for name, field in _STATISTICS_FIELDS
        if getattr(statistics, field) is not None
    }


def _statistics_of(item: Mapping[str, Any]) -> QueryStatistics:
    def number(name: str) -> int | None:
        return None if item.get(name) is None else int(item[name])

    return QueryStatistics(
        data_scanned_bytes=number("dataScannedBytes"),
        engine_millis=number("engineMillis"),
        queue_millis=number("queueMillis"),
        result_reused=bool(item.get("resultReused", False)),
    )


def _task_fields(task: Task) -> dict[str, str]:
    """What an operator filters a task's log lines on."""
    return {"taskId": task.task_id, "taskType": task.task_type.value, "fieldName": task.field_name}


def _milliseconds_between(start_text: str, end: datetime) -> int:
    """From a stored start time to ``end``, both as stored (whole milliseconds)."""
    start = datetime.fromisoformat(start_text)
    return max(0, round((datetime.fromisoformat(keys.timestamp_text(end)) - start) / MILLISECOND))


class TaskService:
    def __init__(
        self,
        client: Any,
        table: str,
        engine: QueryEngine,
        *,
        queue_deletion: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = keys.utc_now,
        new_token: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        """``queue_deletion(task_id)`` hands a deletion task to the deletion listener."""
        self._client = client
        self._table = table
        self.engine = engine
        self._queue_deletion = queue_deletion
        self._clock = clock
        self._new_token = new_token
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def trigger(
        self, task_type: TaskType, field_name: str, sql: str, *, owner: str | None = None
    ) -> Task:
        """Start ``sql`` and record the task, as ``owner``'s (the caller's sub; None for
        a caller not signed in); the engine may finish before the record exists, which
        the tracker handles by having its event retried."""
        execution_id = self.engine.start(sql, self._new_token())
        now = self._clock()
        step = DeletionStep.SELECTING if task_type is TaskType.DELETION else None
        task = Task(
            execution_id,
            task_type,
            field_name,
            TaskStatus.RUNNING,
            keys.timestamp_text(now),
            deletion_step=step,
            triggered_by=owner,
        )
        item: dict[str, Any] = {
            **keys.task_item_keys(execution_id),
            TASK_ID: execution_id,
            TASK_TYPE: task_type.value,
            FIELD_NAME: field_name,
            TASK_STATUS: task.status.value,
            START_DATE: task.start_date,
            keys.EXPIRES_AT: int((now + TASK_RETENTION).timestamp()),
        }
        if step is not None:
            item[DELETION_STEP] = step.value
        if owner is not None:
            item[TRIGGERED_BY] = owner
        self._client.put_item(
            TableName=self._table,
            Item={name: self._serializer.serialize(value) for name, value in item.items()},
        )
        metrics.count(metrics.TASKS_TRIGGERED)
        if task_type is TaskType.DELETION:
            metrics.count(metrics.DELETION_TASKS_TRIGGERED)
        logger.info(
            "%s task %s of %s triggered",
            task_type.value,
            execution_id,
            field_name,
            extra={"taskId": execution_id, "taskType": task_type.value, "fieldName": field_name},
        )
        return task

    def read(self, task_id: str) -> Task | None:
        """The task as recorded, or None."""
        return self._read(task_id)

    def task(self, task_id: str, field_name: str, *, owner: str | None = None) -> Task:
        """The task as it stands now, asking the engine while it waits for its query,
        so a lost state-change event never strands it. Only ``owner``'s tasks are found
        (the caller's sub; None: those of callers not signed in)."""
        task = self._read(task_id) if len(task_id) <= MAX_TASK_ID else None
        if task is None or task.field_name != field_name or task.triggered_by != owner:
            raise TaskNotFound(f"no task {shown(task_id)} of {field_name}")
        if task.status is not TaskStatus.RUNNING or task.deletion_step is DeletionStep.QUEUED:
            return task
        execution = self.engine.execution(task_id)
        if not execution.state.finished:
            return task
        self._advance(task, execution, execution.completed or self._clock())
        return self._read(task_id) or task

    def record_state_change(self, detail: Mapping[str, Any], time: datetime | None) -> bool:
        """The tracker: an "Athena Query State Change" event's detail. Returns whether
        it moved the task; states that are not final change nothing.

        Raises :class:`TaskNotRecorded` when there is no task item yet, so the event is
        delivered again; a query with none ``UNRECORDED_GRACE`` after its submission is
        no task, and its event is dropped. The finish time and the failure reason come
        from the engine's record of the execution (the event's time has whole seconds
        only); the event's own error message is preferred when it has one.
        """
        state = QueryState(detail["currentState"])
        if not state.finished:
            return False
        execution_id = str(detail["queryExecutionId"])
        task = self._read(execution_id)
        if task is None:
            self._unrecorded(execution_id)
            return False
        if task.status is not TaskStatus.RUNNING:
            return False
        recorded = self.engine.execution(execution_id)
        reason = (detail.get("athenaError") or {}).get("errorMessage") or recorded.reason
        execution = QueryExecution(execution_id, state, reason, statistics=recorded.statistics)
        return self._advance(task, execution, recorded.completed or time or self._clock())

    def _unrecorded(self, execution_id: str) -> None:
        """A finished query without a task item: raises while one may still come."""
        submitted = self.engine.execution(execution_id).submitted
        if submitted is None or self._clock() - submitted <= UNRECORDED_GRACE:
            raise TaskNotRecorded(f"no task item for query execution {execution_id} yet")
        logger.info(
            "query execution %s, submitted %s, has no task: not one of ours, ignored",
            execution_id,
            submitted.isoformat(),
        )

    def finish(self, execution: QueryExecution, finished_at: datetime) -> bool:
        """Move a task whose query finished to its final state; False when it was final
        already, or when it is a deletion task whose rows are being deleted."""
        status, message = _final_status(execution)
        values: dict[str, Any] = {
            ":running": TaskStatus.RUNNING.value,
            ":queued": DeletionStep.QUEUED.value,
            ":status": status.value,
            ":finish": keys.timestamp_text(finished_at),
        }
        names = {"#finish": FINISH_DATE, "#step": DELETION_STEP, "#statistics": STATISTICS}
        values[":statistics"] = _statistics_item(execution.statistics)
        update = "SET #status = :status, #finish = :finish, #statistics = :statistics"
        if message is not None:
            update += ", #error = :error"
            names["#error"] = ERROR_MESSAGE
            values[":error"] = message
        return self._update(
            execution.execution_id,
            update + " REMOVE #step",
            "#status = :running AND (attribute_not_exists(#step) OR #step <> :queued)",
            names,
            values,
        )

    def deletion_task(self, task_id: str) -> Task:
        """The deletion task a queued message names; raises :class:`TaskNotFound`."""
        task = self._read(task_id) if len(task_id) <= MAX_TASK_ID else None
        if task is None or task.task_type is not TaskType.DELETION:
            raise TaskNotFound(f"no deletion task {shown(task_id)}")
        return task

    def complete_deletion(self, task: Task, deleted_count: int) -> bool:
        """Every selected row is gone: the task SUCCEEDED. False when it had already
        (the message was delivered twice)."""
        finished_at = self._clock()
        completed = self._update(
            task.task_id,
            "SET #status = :status, #finish = :finish, #count = :count REMOVE #step",
            "#status = :running AND #step = :queued",
            {"#finish": FINISH_DATE, "#count": DELETED_COUNT, "#step": DELETION_STEP},
            {
                ":running": TaskStatus.RUNNING.value,
                ":queued": DeletionStep.QUEUED.value,
                ":status": TaskStatus.SUCCEEDED.value,
                ":finish": keys.timestamp_text(finished_at),
                ":count": deleted_count,
            },
        )
        if completed:
            self._finished(task, TaskStatus.SUCCEEDED, finished_at)
        return completed

    def results(
        self, task: Task, *, next_token: str | None, limit: int | None
    ) -> tuple[list[ResultPage], str | None]:
        """Every page of a task's query result from ``next_token`` on, or one page of
        ``limit`` rows when the caller pages."""
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

    def _advance(self, task: Task, execution: QueryExecution, finished_at: datetime) -> bool:
        """Move a task whose query finished on; only the caller that moved it counts the
        query's scanned bytes and, when the task is final, its outcome."""
        scanned = execution.statistics.data_scanned_bytes
        if task.task_type is TaskType.DELETION and execution.state is QueryState.SUCCEEDED:
            moved = self._queue(task.task_id, execution.statistics)
            if moved:
                logger.info(
                    "deletion task %s selected its rows; queued for deletion",
                    task.task_id,
                    extra={**_task_fields(task), "bytesScanned": scanned},
                )
        else:
            moved = self.finish(execution, finished_at)
            if moved:
                status, _ = _final_status(execution)
                self._finished(task, status, finished_at, scanned)
        if moved and scanned is not None:
            metrics.observe(metrics.TASK_BYTES_SCANNED, scanned)
        return moved

    def _finished(
        self,
        task: Task,
        status: TaskStatus,
        finished_at: datetime,
        bytes_scanned: int | None = None,
    ) -> None:
        """Count and log a task that has just reached its final state."""
        duration_ms = _milliseconds_between(task.start_date, finished_at)
        succeeded = status is TaskStatus.SUCCEEDED
        metrics.count(metrics.TASKS_SUCCEEDED if succeeded else metrics.TASKS_FAILED)
        metrics.observe(metrics.TASK_DURATION, duration_ms)
        logger.log(
            logging.INFO if succeeded else logging.WARNING,
            "%s task %s %s after %d ms",
            task.task_type.value,
            task.task_id,
            status.value,
            duration_ms,
            extra={
                **_task_fields(task),
                "taskStatus": status.value,
                "durationMs": duration_ms,
                "bytesScanned": bytes_scanned,
            },
        )

    def _queue(self, task_id: str, statistics: QueryStatistics) -> bool:
        """SELECTING → QUEUED, then the message: only the caller that made the move
        sends it. If sending fails the move is undone and the error raised, so the event
        or the next poll tries again."""
        if self._queue_deletion is None:
            raise RuntimeError("this task service was given no deletion queue")
        names = {"#step": DELETION_STEP, "#statistics": STATISTICS}
        running = TaskStatus.RUNNING.value
        selecting, queued = DeletionStep.SELECTING.value, DeletionStep.QUEUED.value
        condition = "#status = :running AND #step = :from"
        if not self._update(
            task_id,
            "SET #step = :to, #statistics = :statistics",
            condition,
            names,
            {
                ":running": running,
                ":from": selecting,
                ":to": queued,
                ":statistics": _statistics_item(statistics),
            },
        ):
            return False
        try:
            self._queue_deletion(task_id)
        except Exception:
            self._update(
                task_id,
                "SET #step = :to",
                condition,
                {"#step": DELETION_STEP},
                {":running": running, ":from": queued, ":to": selecting},
            )
            raise
        return True

    def _update(
        self,
        task_id: str,
        update: str,
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
    ) -> bool:
        """One conditional update of a task item; False when the condition did not hold.

        Raises :class:`TaskNotRecorded` when there is no task item at all.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(task_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(#pk) AND {condition}",
                ExpressionAttributeNames={"#pk": keys.PK, "#status": TASK_STATUS, **names},
                ExpressionAttributeValues={
                    name: self._serializer.serialize(value) for name, value in values.items()
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            if self._read(task_id) is None:
                raise TaskNotRecorded(f"no task item for query execution {task_id} yet") from None
            logger.debug("task %s: %r did not apply: it has moved on", task_id, update)
            return False
        return True

    def _key(self, task_id: str) -> dict[str, Any]:
        return {
            name: self._serializer.serialize(v) for name, v in keys.task_item_keys(task_id).items()
        }

    def _read(self, task_id: str) -> Task | None:
        response = self._client.get_item(
            TableName=self._table, Key=self._key(task_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._task(item)

    def _task(self, item: Mapping[str, Any]) -> Task:
        plain = {name: self._deserializer.deserialize(value) for name, value in item.items()}
        step = plain.get(DELETION_STEP)
        count = plain.get(DELETED_COUNT)
        statistics = plain.get(STATISTICS)
        return Task(
            task_id=str(plain[TASK_ID]),
            task_type=TaskType(plain[TASK_TYPE]),
            field_name=str(plain[FIELD_NAME]),
            status=TaskStatus(plain[TASK_STATUS]),
            start_date=str(plain[START_DATE]),
            finish_date=plain.get(FINISH_DATE),
            error_message=plain.get(ERROR_MESSAGE),
            deletion_step=None if step is None else DeletionStep(step),
            deleted_count=None if count is None else int(count),
            statistics=None if statistics is None else _statistics_of(statistics),
            triggered_by=plain.get(TRIGGERED_BY),
        )
