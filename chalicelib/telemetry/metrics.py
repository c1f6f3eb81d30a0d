"""Metrics as CloudWatch embedded metric format (EMF): names, units and the recorder.

Work is counted where it is done, through the recorder of the invocation in progress
(a context variable): :func:`count`, :func:`maximum` and :func:`observe` record into it
and do nothing at all outside an invocation, so the pure functions keep their
signatures and a unit test calling one directly records nowhere. The handler adapters
open an invocation (:mod:`chalicelib.telemetry.invocation`), which writes one EMF line
per invocation when it ends.

Every metric is published in :data:`NAMESPACE` with one dimension set, the project and
the stage (:data:`DIMENSIONS`): an alarm names exactly those. Ids never become
dimensions (each would be a metric of its own); they travel as plain properties.

The deployment imports the names below for its alarms; they are the contract.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import Any

NAMESPACE = "OCG"
PROJECT_DIMENSION = "Project"
STAGE_DIMENSION = "Stage"
DIMENSIONS = (PROJECT_DIMENSION, STAGE_DIMENSION)


class Unit(StrEnum):
    """CloudWatch's unit names."""

    COUNT = "Count"
    MILLISECONDS = "Milliseconds"
    BYTES = "Bytes"


# The GraphQL function, per request: every request; a request refused with 400 or
# answered with errors of the client's making; a request in which a resolver raised an
# unexpected exception (its message hidden from the client). Each is 0 or 1 per request.
GRAPHQL_REQUESTS = "GraphQLRequests"
GRAPHQL_CLIENT_ERRORS = "GraphQLClientErrors"
GRAPHQL_INTERNAL_ERRORS = "GraphQLInternalErrors"
# Tasks: every task started (query and deletion tasks), deletion tasks among them; tasks
# reaching SUCCEEDED or FAILED, how long each took (finish - start) and the bytes its
# query scanned (Athena's DataScannedInBytes, what the workgroup bills).
TASKS_TRIGGERED = "TasksTriggered"
DELETION_TASKS_TRIGGERED = "DeletionTasksTriggered"
TASKS_SUCCEEDED = "TasksSucceeded"
TASKS_FAILED = "TasksFailed"
TASK_DURATION = "TaskDuration"
TASK_BYTES_SCANNED = "TaskBytesScanned"
# The stream function, per batch: lake objects written and deleted, records that failed,
# and the age of the batch's oldest record when it was processed.
LAKE_OBJECTS_WRITTEN = "LakeObjectsWritten"
LAKE_OBJECTS_DELETED = "LakeObjectsDeleted"
LAKE_WRITE_FAILURES = "LakeWriteFailures"
STREAM_RECORD_AGE = "StreamRecordAge"
# Join rows removed by the cascade listener (an entity's relations) and by the deletion
# listener (a deletion task's selected rows).
RELATIONS_REMOVED = "RelationsRemoved"
JOIN_ROWS_REMOVED = "JoinRowsRemoved"

UNITS: Mapping[str, Unit] = {
    GRAPHQL_REQUESTS: Unit.COUNT,
    GRAPHQL_CLIENT_ERRORS: Unit.COUNT,
    GRAPHQL_INTERNAL_ERRORS: Unit.COUNT,
    TASKS_TRIGGERED: Unit.COUNT,
    DELETION_TASKS_TRIGGERED: Unit.COUNT,
    TASKS_SUCCEEDED: Unit.COUNT,
    TASKS_FAILED: Unit.COUNT,
    TASK_DURATION: Unit.MILLISECONDS,
    TASK_BYTES_SCANNED: Unit.BYTES,
    LAKE_OBJECTS_WRITTEN: Unit.COUNT,
    LAKE_OBJECTS_DELETED: Unit.COUNT,
    LAKE_WRITE_FAILURES: Unit.COUNT,
    STREAM_RECORD_AGE: Unit.MILLISECONDS,
    RELATIONS_REMOVED: Unit.COUNT,
    JOIN_ROWS_REMOVED: Unit.COUNT,
}

# EMF takes at most 100 values of one metric in one document.
MAX_VALUES_PER_METRIC = 100

Value = float | list[float]


class MetricsRecorder:
    """One invocation's metrics; safe to record into from several threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scalars: dict[str, float] = {}
        self._samples: dict[str, list[float]] = {}

    def count(self, name: str, value: float = 1) -> None:
        with self._lock:
            self._scalars[name] = self._scalars.get(name, 0) + value

    def maximum(self, name: str, value: float) -> None:
        with self._lock:
            current = self._scalars.get(name)
            self._scalars[name] = value if current is None else max(current, value)

    def observe(self, name: str, value: float) -> None:
        """One sample among others (a task's duration): each one counts in statistics."""
        with self._lock:
            samples = self._samples.setdefault(name, [])
            if len(samples) < MAX_VALUES_PER_METRIC:
                samples.append(value)

    def values(self) -> dict[str, Value]:
        """What was recorded so far, by metric name: a number, or a list of samples."""
        with self._lock:
            recorded: dict[str, Value] = dict(self._scalars)
            recorded.update((name, list(samples)) for name, samples in self._samples.items())
            return recorded


_recorder: ContextVar[MetricsRecorder | None] = ContextVar("ocg_metrics", default=None)


@contextmanager
def recording(recorder: MetricsRecorder) -> Iterator[MetricsRecorder]:
    """Record into ``recorder`` within the block (and threads started with a copy of
    this context)."""
    token = _recorder.set(recorder)
    try:
        yield recorder
    finally:
        _recorder.reset(token)


def count(name: str, value: float = 1) -> None:
    """Add ``value`` to a count of the invocation in progress (a 0 still publishes)."""
    recorder = _recorder.get()
    if recorder is not None:
        recorder.count(name, value)


def maximum(name: str, value: float) -> None:
    """Keep the largest ``value`` of the invocation in progress."""
    recorder = _recorder.get()
    if recorder is not None:
        recorder.maximum(name, value)


def observe(name: str, value: float) -> None:
    """Record one sample (a duration, a size) of the invocation in progress."""
    recorder = _recorder.get()
    if recorder is not None:
        recorder.observe(name, value)


def emf_document(
    values: Mapping[str, Value],
    *,
    project: str,
    stage: str,
    timestamp_ms: int,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The EMF document of ``values``: the ``_aws`` metadata naming each metric and its
    unit, the dimensions and the values at the top level, and ``properties`` (ids, the
    function's name) as plain, searchable fields that are no dimension."""
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(DIMENSIONS)],
                    "Metrics": [{"Name": name, "Unit": UNITS.get(name, "None")} for name in values],
                }
            ],
        },
    }
    for name, value in (properties or {}).items():
        if value is not None:
            document[name] = value
    document[PROJECT_DIMENSION] = project
    document[STAGE_DIMENSION] = stage
    document.update(values)
    return document
