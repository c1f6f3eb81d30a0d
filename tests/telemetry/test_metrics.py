"""Metrics: recorded where the work is done, written as one EMF line per invocation."""

from __future__ import annotations

import contextvars
import io
import logging
import threading
from dataclasses import replace

import pytest

from chalicelib.settings import Settings, load_settings
from chalicelib.telemetry import Telemetry, metrics
from chalicelib.telemetry.metrics import MetricsRecorder, recording
from tests.telemetry.emf import emf_lines, metric_values

AWS = load_settings(
    {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": "123456789012"}
)
AWS_DEV = replace(AWS, project="shop", stage="dev")
LOCAL = load_settings({})


def test_counts_add_up_maxima_keep_the_largest_and_samples_are_kept_apart() -> None:
    recorder = MetricsRecorder()
    with recording(recorder):
        metrics.count(metrics.LAKE_OBJECTS_WRITTEN, 2)
        metrics.count(metrics.LAKE_OBJECTS_WRITTEN)
        metrics.count(metrics.LAKE_WRITE_FAILURES, 0)
        metrics.maximum(metrics.STREAM_RECORD_AGE, 40)
        metrics.maximum(metrics.STREAM_RECORD_AGE, 900)
        metrics.maximum(metrics.STREAM_RECORD_AGE, 12)
        metrics.observe(metrics.TASK_DURATION, 1500)
        metrics.observe(metrics.TASK_DURATION, 250)

    assert recorder.values() == {
        metrics.LAKE_OBJECTS_WRITTEN: 3,
        metrics.LAKE_WRITE_FAILURES: 0,
        metrics.STREAM_RECORD_AGE: 900,
        metrics.TASK_DURATION: [1500, 250],
    }


def test_outside_an_invocation_recording_does_nothing_and_never_fails() -> None:
    recorder = MetricsRecorder()
    with recording(recorder):
        metrics.count(metrics.RELATIONS_REMOVED)

    metrics.count(metrics.RELATIONS_REMOVED, 5)
    metrics.maximum(metrics.STREAM_RECORD_AGE, 5)
    metrics.observe(metrics.TASK_DURATION, 5)

    assert recorder.values() == {metrics.RELATIONS_REMOVED: 1}


def test_threads_given_the_invocations_context_count_into_it_without_losing_any() -> None:
    def work() -> None:
        for _ in range(2000):
            metrics.count(metrics.LAKE_OBJECTS_WRITTEN)

    recorder = MetricsRecorder()
    with recording(recorder):
        workers = [
            threading.Thread(target=contextvars.copy_context().run, args=(work,)) for _ in range(8)
        ]
        workers.append(threading.Thread(target=work))  # without the context: records nowhere
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    assert recorder.values() == {metrics.LAKE_OBJECTS_WRITTEN: 16_000}


def test_an_invocation_writes_one_valid_emf_line_with_project_and_stage_as_dimensions() -> None:
    out = io.StringIO()
    telemetry = Telemetry(AWS_DEV, function_name="ocg-dev-api_handler", metrics_out=out)

    with telemetry.invocation("req-1"):
        metrics.count(metrics.GRAPHQL_REQUESTS)
        metrics.count(metrics.GRAPHQL_CLIENT_ERRORS, 0)
        metrics.observe(metrics.TASK_BYTES_SCANNED, 10_485_760)

    (document,) = emf_lines(out.getvalue())
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "OCG"
    assert directive["Dimensions"] == [["Project", "Stage"]]
    assert directive["Metrics"] == [
        {"Name": "GraphQLRequests", "Unit": "Count"},
        {"Name": "GraphQLClientErrors", "Unit": "Count"},
        {"Name": "TaskBytesScanned", "Unit": "Bytes"},
    ]
    assert (document["Project"], document["Stage"]) == ("shop", "dev")
    assert metric_values(document) == {
        "GraphQLRequests": 1,
        "GraphQLClientErrors": 0,
        "TaskBytesScanned": [10_485_760],
    }
    # Ids are searchable properties, never dimensions.
    assert document["correlationId"] == "req-1"
    assert document["function"] == "ocg-dev-api_handler"


def test_the_metrics_are_written_even_when_the_invocation_raises() -> None:
    out = io.StringIO()
    telemetry = Telemetry(AWS_DEV, function_name="ocg-dev-on_cascade_message", metrics_out=out)

    with pytest.raises(RuntimeError, match="DynamoDB is down"), telemetry.invocation():
        metrics.count(metrics.RELATIONS_REMOVED, 3)
        raise RuntimeError("DynamoDB is down")

    (document,) = emf_lines(out.getvalue())
    assert metric_values(document) == {"RelationsRemoved": 3}
    assert "correlationId" not in document


def test_each_invocation_has_its_own_line_and_one_that_recorded_nothing_has_none() -> None:
    out = io.StringIO()
    telemetry = Telemetry(AWS_DEV, function_name="ocg-dev-on_table_change", metrics_out=out)

    with telemetry.invocation():
        metrics.count(metrics.LAKE_OBJECTS_WRITTEN, 4)
    with telemetry.invocation():
        pass
    with telemetry.invocation():
        metrics.count(metrics.LAKE_OBJECTS_WRITTEN, 1)

    assert [metric_values(d) for d in emf_lines(out.getvalue())] == [
        {"LakeObjectsWritten": 4},
        {"LakeObjectsWritten": 1},
    ]


def test_on_lambda_the_line_goes_to_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = Telemetry(AWS, function_name="ocg-aws-on_cascade_message")

    with telemetry.invocation():
        metrics.count(metrics.RELATIONS_REMOVED, 2)

    (document,) = emf_lines(capsys.readouterr().out)
    assert metric_values(document) == {"RelationsRemoved": 2}


@pytest.mark.parametrize(
    ("settings", "function_name"),
    [(LOCAL, None), (LOCAL, "set-by-hand"), (AWS, None)],
    ids=["local", "local-with-a-function-name", "aws-mode-off-lambda"],
)
def test_where_no_cloudwatch_reads_standard_output_the_line_is_logged_at_debug(
    settings: Settings,
    function_name: str | None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    telemetry = Telemetry(settings, function_name=function_name)

    with caplog.at_level(logging.DEBUG, logger="chalicelib.telemetry"), telemetry.invocation():
        metrics.count(metrics.RELATIONS_REMOVED, 2)

    assert capsys.readouterr().out == ""
    (logged,) = [r for r in caplog.records if r.name == "chalicelib.telemetry.invocation"]
    assert logged.levelno == logging.DEBUG
    assert '"RelationsRemoved":2' in logged.getMessage()


def test_a_failing_output_never_fails_the_invocation(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    out.close()
    telemetry = Telemetry(AWS_DEV, function_name="f", metrics_out=out)

    with telemetry.invocation():
        metrics.count(metrics.RELATIONS_REMOVED)

    assert "metrics could not be written" in caplog.text
