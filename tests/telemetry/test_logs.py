"""Logs: under Lambda's real runtime one JSON object per line with the invocation's fields;
off Lambda, untouched."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from awslambdaric.lambda_runtime_log_utils import (  # type: ignore[import-untyped]
    _DEFAULT_FRAME_TYPE,
    _JSON_FRAME_TYPES,
)

from chalicelib.settings import load_settings
from chalicelib.telemetry import add_log_fields, configure_logging, log_fields
from chalicelib.telemetry.logs import ContextFilter, JsonLineFormatter
from tests.telemetry.emf import emf_lines, metric_values

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
FUNCTION = "ocg-shop-dev-probe"
CASCADE = json.loads((EVENTS / "sqs_cascade.json").read_text())
GOOD_MESSAGE, BAD_MESSAGE = (record["messageId"] for record in CASCADE["Records"])


@dataclass(frozen=True)
class LambdaRun:
    log_format: str
    frames: list[tuple[bytes, str]]  # the runtime's frame type and the text of each line
    stdout: str

    def lines(self) -> list[dict[str, Any]]:
        """Every log line, each of which must be exactly one JSON object."""
        lines = [json.loads(text) for _, text in self.frames]
        assert all(isinstance(line, dict) for line in lines)
        return lines

    def line(self, message: str) -> tuple[bytes, dict[str, Any]]:
        (found,) = [
            (frame_type, json.loads(text))
            for frame_type, text in self.frames
            if json.loads(text)["message"].startswith(message)
        ]
        return found


def read_frames(data: bytes) -> list[tuple[bytes, str]]:
    """The runtime's framing: type (4 bytes), length (4), timestamp (8), message."""
    frames, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at + 4 : at + 8], "big")
        frames.append((data[at : at + 4], data[at + 16 : at + 16 + length].decode()))
        at += 16 + length
    return frames


@pytest.fixture(scope="module", params=["Text", "JSON"])
def on_lambda(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LambdaRun:
    """``lambda_probe`` under each of Lambda's log formats. With JSON, Lambda also sets the
    application log level (INFO by default); with Text it sets none."""
    log_format: str = request.param
    frames = tmp_path_factory.mktemp("lambda") / "frames"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_LAMBDA_", "OCG_", "_LAMBDA_"))
    }
    env.update(
        OCG_MODE="aws",
        OCG_STAGE="dev",
        OCG_ACCOUNT_ID="123456789012",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_LAMBDA_FUNCTION_NAME=FUNCTION,
    )
    if log_format == "JSON":
        env.update(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    result = subprocess.run(
        [sys.executable, "-m", "tests.telemetry.lambda_probe", str(frames)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return LambdaRun(log_format, read_frames(frames.read_bytes()), result.stdout)


def test_an_info_line_of_a_handler_reaches_lambdas_log_with_its_fields(
    on_lambda: LambdaRun,
) -> None:
    frame_type, line = on_lambda.line("cascade user#u1: 0 relation(s) removed")

    assert line["level"] == "INFO"
    assert line["logger"] == "chalicelib.relations.removal"
    assert (line["stage"], line["function"]) == ("dev", FUNCTION)
    assert line["correlationId"] == GOOD_MESSAGE
    assert line["requestId"] == "lambda-request-2"
    assert (line["entityType"], line["entityId"], line["relationsRemoved"]) == ("user", "u1", 0)
    assert line["timestamp"].startswith("20") and line["timestamp"].endswith("Z")
    # With Lambda's JSON format the runtime marks the line as JSON, so Lambda does not
    # wrap it again; with Text the line is passed on as written.
    expected = _JSON_FRAME_TYPES[logging.INFO] if on_lambda.log_format == "JSON" else None
    assert frame_type == (expected or _DEFAULT_FRAME_TYPE)


def test_every_line_is_one_json_object_and_a_failure_names_its_message(
    on_lambda: LambdaRun,
) -> None:
    lines = on_lambda.lines()

    assert all({"timestamp", "level", "logger", "message"} <= set(line) for line in lines)
    _, failure = on_lambda.line(f"cascade message {BAD_MESSAGE} failed")
    assert failure["level"] == "ERROR"
    assert failure["correlationId"] == BAD_MESSAGE
    assert failure["errorType"] == "JSONDecodeError"
    assert any("process_cascade_event" in frame for frame in failure["stackTrace"])


def test_a_graphql_request_is_logged_under_its_api_gateway_request_id(
    on_lambda: LambdaRun,
) -> None:
    _, answered = on_lambda.line("GraphQL request answered 200 with 0 error(s)")

    assert answered["level"] == "INFO"
    assert answered["correlationId"] == "api-request-1"
    assert answered["operationName"] == "Hello"
    assert answered["status"] == 200
    assert isinstance(answered["durationMs"], int | float)
    internal = [
        line
        for line in on_lambda.lines()
        if line["level"] == "ERROR" and line.get("correlationId") == "api-request-3"
    ]
    assert internal, "the resolver's exception is logged under the request's id"
    assert all(line["function"] == FUNCTION for line in internal)


def test_metrics_are_emf_lines_on_standard_output_one_per_invocation(
    on_lambda: LambdaRun,
) -> None:
    documents = emf_lines(on_lambda.stdout)

    assert [metric_values(d) for d in documents] == [
        {"GraphQLRequests": 1, "GraphQLClientErrors": 0, "GraphQLInternalErrors": 0},
        {"RelationsRemoved": 0},
        {"GraphQLRequests": 1, "GraphQLClientErrors": 0, "GraphQLInternalErrors": 1},
    ]
    assert all((d["Project"], d["Stage"]) == ("shop", "dev") for d in documents)
    assert [d.get("correlationId") for d in documents] == ["api-request-1", None, "api-request-3"]


# -- in this process: a root logger of our own ------------------------------------------


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger with no handler (pytest's own included) until the block ends."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    logger.handlers = []
    try:
        yield logger
    finally:
        logger.handlers = handlers
        logger.setLevel(level)


SETTINGS = load_settings({"OCG_STAGE": "dev", "OCG_LOG_LEVEL": "debug"})


def test_off_lambda_nothing_changes() -> None:
    handler = logging.StreamHandler(io.StringIO())
    with bare_root() as root:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)

        assert configure_logging(SETTINGS, {}) is False

        assert root.level == logging.WARNING
    assert handler.formatter is None and handler.filters == []


def test_on_lambda_the_level_is_the_setting_and_each_line_json() -> None:
    out = io.StringIO()
    with bare_root() as root:
        root.addHandler(logging.StreamHandler(out))
        root.setLevel(logging.WARNING)

        assert configure_logging(SETTINGS, {"AWS_LAMBDA_FUNCTION_NAME": "fn"}) is True
        assert configure_logging(SETTINGS, {"AWS_LAMBDA_FUNCTION_NAME": "fn"}) is True  # again
        logging.getLogger("tests.telemetry").debug("a %s line", "debug", extra={"taskId": "t-1"})

        assert root.level == logging.DEBUG
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line == {
        "timestamp": line["timestamp"],
        "level": "DEBUG",
        "logger": "tests.telemetry",
        "message": "a debug line",
        "taskId": "t-1",
        "stage": "dev",
        "function": "fn",
    }


def test_without_any_handler_on_lambda_one_is_added(capsys: pytest.CaptureFixture[str]) -> None:
    with bare_root():
        configure_logging(SETTINGS, {"AWS_LAMBDA_FUNCTION_NAME": "fn"})
        logging.getLogger("tests.telemetry").warning("still written")

    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["message"] == "still written"


def emit(extra: dict[str, Any] | None = None, exc_info: Any = None) -> dict[str, Any]:
    """One record through the context filter and the JSON formatter."""
    level = logging.INFO if exc_info is None else logging.ERROR
    record = logging.getLogger("tests.telemetry.unit").makeRecord(
        "tests.telemetry.unit", level, "f.py", 7, "it %s", ("ran",), exc_info, extra=extra
    )
    ContextFilter(stage="dev", function="fn").filter(record)
    parsed: dict[str, Any] = json.loads(JsonLineFormatter().format(record))
    return parsed


def test_fields_of_a_block_are_on_its_lines_only_and_extra_wins() -> None:
    with log_fields(correlationId="m-1", taskType=None):
        inside = emit()
        add_log_fields(operationName="Hello")
        added = emit({"correlationId": "given"})
    after = emit()

    assert inside["correlationId"] == "m-1" and "taskType" not in inside
    assert (added["correlationId"], added["operationName"]) == ("given", "Hello")
    assert "correlationId" not in after and "operationName" not in after


def test_outside_any_block_added_fields_go_nowhere() -> None:
    add_log_fields(operationName="Lost")

    assert "operationName" not in emit()


def test_an_exception_is_written_as_the_runtime_writes_it() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        line = emit(exc_info=sys.exc_info())

    assert (line["level"], line["message"]) == ("ERROR", "it ran")
    assert (line["errorType"], line["errorMessage"]) == ("ValueError", "bad value")
    assert any("raise ValueError" in frame for frame in line["stackTrace"])
    assert line["location"].endswith(":7")
