"""Task items and the tracker, on moto: every state change is one conditional update."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.moto_api import state_manager

from chalicelib import keys
from chalicelib.tasks.service import (
    UNRECORDED_GRACE,
    TaskNotFound,
    TaskNotRecorded,
    TaskService,
    TaskStatus,
    TaskType,
)
from chalicelib.telemetry.metrics import MetricsRecorder, recording
from tests.athena_world import TABLE, AthenaWorld

EVENTS = Path(__file__).resolve().parent.parent / "events"
STARTED = datetime(2026, 11, 23, 19, 22, 14, 123000, tzinfo=UTC)


def state_change(name: str, execution_id: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"athena_{name}.json").read_text())
    event["detail"]["queryExecutionId"] = execution_id
    return event


def deliver(service: TaskService, event: dict[str, Any]) -> bool:
    """What the EventBridge handler does with an event."""
    return service.record_state_change(event["detail"], datetime.fromisoformat(event["time"]))


@pytest.fixture
def service(world: AthenaWorld) -> TaskService:
    return TaskService(world.dynamodb, TABLE, world.engine, clock=lambda: STARTED)


@pytest.fixture
def manual_athena() -> Any:
    """Athena executions stay RUNNING until a test says otherwise."""
    state_manager.set_transition(
        model_name="athena::execution", transition={"progression": "manual", "times": 1000}
    )
    yield
    state_manager.unset_transition("athena::execution")


def item(world: AthenaWorld, task_id: str) -> dict[str, Any]:
    response = world.dynamodb.get_item(TableName=TABLE, Key=_key(task_id), ConsistentRead=True)
    return {name: next(iter(value.values())) for name, value in response["Item"].items()}


def completion(world: AthenaWorld, task_id: str) -> str:
    """Athena's completion time of the execution, as the task records it."""
    execution = world.athena.get_query_execution(QueryExecutionId=task_id)["QueryExecution"]
    return keys.timestamp_text(execution["Status"]["CompletionDateTime"])


def _key(task_id: str) -> dict[str, Any]:
    return {name: {"S": value} for name, value in keys.task_item_keys(task_id).items()}


def test_a_trigger_records_a_running_task_that_expires(
    world: AthenaWorld, service: TaskService
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")

    assert item(world, task.task_id) == {
        "PK": f"task#{task.task_id}",
        "SK": f"task#{task.task_id}",
        "taskId": task.task_id,
        "taskType": "query",
        "fieldName": "usersByCity",
        "taskStatus": "RUNNING",
        "startDate": "2026-11-23T19:22:14.123Z",
        "expiresAt": str(int(STARTED.timestamp()) + 30 * 86400),
    }
    executions = world.athena.list_query_executions()["QueryExecutionIds"]
    assert task.task_id in executions


def test_a_succeeded_event_finishes_the_task_once(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")
    event = state_change("succeeded", task.task_id)

    assert deliver(service, event) is True
    assert deliver(service, event) is False  # a duplicate changes nothing

    finished = service.task(task.task_id, "usersByCity")
    assert finished.status is TaskStatus.SUCCEEDED
    assert finished.finish_date == completion(world, task.task_id)
    assert finished.error_message is None


def test_a_late_event_changes_nothing(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")
    deliver(service, state_change("succeeded", task.task_id))

    assert deliver(service, state_change("running", task.task_id)) is False
    assert deliver(service, state_change("failed", task.task_id)) is False

    assert item(world, task.task_id)["taskStatus"] == "SUCCEEDED"
    assert "errorMessage" not in item(world, task.task_id)


def test_a_running_event_leaves_the_task_running(service: TaskService, manual_athena: None) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")

    assert deliver(service, state_change("running", task.task_id)) is False
    assert service.task(task.task_id, "usersByCity").status is TaskStatus.RUNNING


def test_a_failed_event_records_athenas_reason(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT nope")

    deliver(service, state_change("failed", task.task_id))

    failed = service.task(task.task_id, "usersByCity")
    assert failed.status is TaskStatus.FAILED
    assert failed.error_message == ("COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved")
    assert failed.finish_date == completion(world, task.task_id)


def test_a_cancelled_query_fails_the_task(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")
    world.athena.stop_query_execution(QueryExecutionId=task.task_id)

    deliver(service, state_change("cancelled", task.task_id))

    cancelled = service.task(task.task_id, "usersByCity")
    assert cancelled.status is TaskStatus.FAILED
    assert cancelled.error_message == "the query was cancelled"


def test_an_event_before_the_task_is_recorded_raises_to_be_retried(
    world: AthenaWorld, service: TaskService
) -> None:
    """The query finished before its trigger wrote the task item."""
    execution_id = world.engine.start("SELECT 1", "token-0000000000000000000000000009")

    with pytest.raises(TaskNotRecorded, match=execution_id):
        deliver(service, state_change("succeeded", execution_id))


def test_an_event_of_a_query_long_unrecorded_is_no_task_and_is_dropped(
    world: AthenaWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A query run in the workgroup by hand: no trigger will ever record it."""
    execution_id = world.engine.start("SELECT 1", "token-0000000000000000000000000010")
    submitted = world.engine.execution(execution_id).submitted
    assert submitted is not None
    just_in_grace = TaskService(
        world.dynamodb, TABLE, world.engine, clock=lambda: submitted + UNRECORDED_GRACE
    )
    past_grace = TaskService(
        world.dynamodb,
        TABLE,
        world.engine,
        clock=lambda: submitted + UNRECORDED_GRACE + timedelta(seconds=1),
    )

    with pytest.raises(TaskNotRecorded):
        deliver(just_in_grace, state_change("succeeded", execution_id))
    with caplog.at_level(logging.INFO, logger="chalicelib.tasks.service"):
        assert deliver(past_grace, state_change("succeeded", execution_id)) is False

    assert f"query execution {execution_id}" in caplog.text
    assert "not one of ours" in caplog.text
    response = world.dynamodb.get_item(TableName=TABLE, Key=_key(execution_id))
    assert "Item" not in response


def test_a_poll_finishes_a_task_whose_event_never_came(
    world: AthenaWorld, service: TaskService
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")  # moto: done at once
    assert item(world, task.task_id)["taskStatus"] == "RUNNING"

    polled = service.task(task.task_id, "usersByCity")

    assert polled.status is TaskStatus.SUCCEEDED
    assert polled.finish_date is not None
    assert item(world, task.task_id)["taskStatus"] == "SUCCEEDED"
    # the event arriving afterwards changes nothing
    assert deliver(service, state_change("succeeded", task.task_id)) is False


def test_a_poll_of_a_running_query_keeps_the_task_running(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")

    assert service.task(task.task_id, "usersByCity").status is TaskStatus.RUNNING
    assert "finishDate" not in item(world, task.task_id)


def test_a_task_is_found_only_under_its_own_field(service: TaskService) -> None:
    task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")

    with pytest.raises(TaskNotFound, match=f"no task '{task.task_id}' of favoriteProducts"):
        service.task(task.task_id, "favoriteProducts")
    with pytest.raises(TaskNotFound, match="no task 'unknown' of usersByCity"):
        service.task("unknown", "usersByCity")


def test_results_are_every_page_or_the_page_asked_for(
    world: AthenaWorld, service: TaskService
) -> None:
    world.inject_results(["n"], [[str(i)] for i in range(1500)])
    task = service.task(service.trigger(TaskType.QUERY, "q", "SELECT n").task_id, "q")

    pages, token = service.results(task, next_token=None, limit=None)
    assert token is None
    assert [row[0] for page in pages for row in page.rows] == [str(i) for i in range(1500)]

    (first,), token = service.results(task, next_token=None, limit=10)
    assert [row[0] for row in first.rows] == [str(i) for i in range(10)]
    (second,), token = service.results(task, next_token=token, limit=10)
    assert [row[0] for row in second.rows] == [str(i) for i in range(10, 20)]
    rest, token = service.results(task, next_token=token, limit=None)
    assert token is None
    assert [row[0] for page in rest for row in page.rows] == [str(i) for i in range(20, 1500)]


def scanned_bytes(world: AthenaWorld, count: int) -> None:
    """Athena's statistics of every execution read from now on report ``count`` bytes."""

    def report(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"].setdefault("Statistics", {})["DataScannedInBytes"] = count

    world.athena.meta.events.register("after-call.athena.GetQueryExecution", report)


def test_a_finished_task_is_counted_once_with_its_duration_and_scanned_bytes(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    scanned_bytes(world, 10_485_760)
    recorder = MetricsRecorder()

    with recording(recorder):
        task = service.trigger(TaskType.QUERY, "usersByCity", "SELECT 1")
        event = state_change("succeeded", task.task_id)
        deliver(service, event)
        deliver(service, event)  # a duplicate
        service.task(task.task_id, "usersByCity")  # a poll of a final task

    finished = datetime.fromisoformat(completion(world, task.task_id))
    assert recorder.values() == {
        "TasksTriggered": 1,
        "TasksSucceeded": 1,
        "TaskDuration": [round((finished - STARTED) / timedelta(milliseconds=1))],
        "TaskBytesScanned": [10_485_760],
    }


def test_a_failed_task_and_a_deletion_task_are_counted_as_such(
    world: AthenaWorld, service: TaskService, manual_athena: None
) -> None:
    recorder = MetricsRecorder()

    with recording(recorder):
        failing = service.trigger(TaskType.QUERY, "usersByCity", "SELECT nope")
        service.trigger(TaskType.DELETION, "removeFavoritesOfProduct", "SELECT 1")
        deliver(service, state_change("failed", failing.task_id))

    values = recorder.values()
    duration = values.pop("TaskDuration")
    assert isinstance(duration, list) and len(duration) == 1
    assert values == {
        "TasksTriggered": 2,
        "DeletionTasksTriggered": 1,
        "TasksFailed": 1,
        "TaskBytesScanned": [0],  # moto's statistics
    }
