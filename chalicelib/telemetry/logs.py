"""Logs where Lambda runs the app: one JSON object per line, with the invocation's fields.

Lambda's Python runtime (``awslambdaric``) puts one handler on the root logger before
it imports ``app.py``, writing to the function's log. It sets the root logger's level
only when Lambda's logging controls are configured (``AWS_LAMBDA_LOG_LEVEL``); otherwise
the level stays WARNING and every INFO line is lost. :func:`configure_logging`, called
by ``boot()``, sets the level from ``OCG_LOG_LEVEL`` (``Settings.log_level``) and makes
each line one JSON object:

- With Lambda's text log format (the default), the runtime's formatter, which writes
  ``[LEVEL]\\ttime\\trequest id\\tmessage``, is replaced by :class:`JsonLineFormatter`.
- With Lambda's JSON log format (``AWS_LAMBDA_LOG_FORMAT=JSON``) the runtime's own
  ``JsonFormatter`` stays: it already writes one JSON object, with the same ``timestamp``,
  ``level``, ``logger``, ``message`` and ``requestId`` keys, and copies every attribute of
  the record that is not one of logging's own, the ``extra=`` fields included (read in
  awslambdaric 4.2.2's ``lambda_runtime_log_utils.JsonFormatter.format``). Replacing it
  would lose the frame type that tells Lambda the line is JSON already, so Lambda
  would wrap it again; nothing is encoded twice.

Either way :class:`ContextFilter` puts ``stage``, ``function`` and the fields of the
current :func:`log_fields` block (``correlationId``, an operation name...) on each
record, so both formatters write them. Off Lambda (``chalice local``, tests) nothing is
changed: logs stay readable text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.settings import Settings

# Set by Lambda in every function's environment.
LAMBDA_FUNCTION_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"
# Lambda's log format, TEXT (the default) or JSON.
LAMBDA_LOG_FORMAT_VARIABLE = "AWS_LAMBDA_LOG_FORMAT"
CORRELATION_ID = "correlationId"

_fields: ContextVar[Mapping[str, object] | None] = ContextVar("ocg_log_fields", default=None)

# A record's own attributes: anything else on it was given through ``extra=`` or by a
# filter, and is written as a field.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# What the Lambda runtime's filter puts on every record, by the name its JSON uses.
_RUNTIME_FIELDS = {"aws_request_id": "requestId", "tenant_id": "tenantId"}


def lambda_function_name(environ: Mapping[str, str] | None = None) -> str | None:
    """The function's name where Lambda runs the app, else None."""
    env = os.environ if environ is None else environ
    return env.get(LAMBDA_FUNCTION_VARIABLE) or None


@contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Write ``fields`` (None ones left out) on every log line of the block, in this
    thread and in those started with a copy of its context."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def add_log_fields(**fields: object) -> None:
    """Write ``fields`` on the remaining log lines of the enclosing :func:`log_fields`
    block (an invocation); outside any, do nothing."""
    current = _fields.get()
    if current is not None:
        _fields.set({**current, **fields})


class ContextFilter(logging.Filter):
    """Puts ``stage``, ``function`` and the current :func:`log_fields` on each record; a
    field the record has already (given through ``extra=``) is kept."""

    def __init__(self, *, stage: str, function: str) -> None:
        super().__init__()
        self._static = {"stage": stage, "function": function}

    def filter(self, record: logging.LogRecord) -> bool:
        attributes = record.__dict__
        for name, value in self._static.items():
            attributes.setdefault(name, value)
        for field, field_value in (_fields.get() or {}).items():
            if field_value is not None:
                attributes.setdefault(field, field_value)
        return True


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, keyed like the Lambda runtime's JSON format:
    ``timestamp`` (UTC, milliseconds), ``level``, ``logger``, ``message``, then every
    other field of the record (``stage``, ``function``, ``correlationId``,
    ``requestId``, ``extra=`` fields) and, with an exception, ``errorType``,
    ``errorMessage``, ``stackTrace`` and ``location``.

    ``line_end`` ends each line: the Lambda runtime's handler writes the text as it is,
    a ``StreamHandler`` adds its own newline.
    """

    def __init__(self, *, line_end: str = "") -> None:
        super().__init__()
        self.line_end = line_end

    def format(self, record: logging.LogRecord) -> str:
        message: object = (
            record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        )
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "timestamp": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for name, value in record.__dict__.items():
            if name in _RECORD_ATTRIBUTES or name.startswith("_") or value is None:
                continue
            if isinstance(value, str) and not value:  # the runtime's id before any request
                continue
            line.setdefault(_RUNTIME_FIELDS.get(name, name), value)
        error_type, error, trace = record.exc_info or (None, None, None)
        if error_type is not None:
            line["errorType"] = error_type.__name__
            line["errorMessage"] = str(error)
            line["stackTrace"] = traceback.format_tb(trace)
            line["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        if record.stack_info:
            line["stackInfo"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str) + self.line_end


def configure_logging(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """Where Lambda runs the app, set the root logger's level and make every line one
    JSON object with the invocation's fields; elsewhere change nothing. Returns whether
    it did. Calling it again reconfigures, without stacking filters."""
    env = os.environ if environ is None else environ
    function = lambda_function_name(env)
    if function is None:
        return False
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    runtime_formats_json = env.get(LAMBDA_LOG_FORMAT_VARIABLE, "").upper() == "JSON"
    if not root.handlers:
        # Not the Lambda runtime's set-up: nothing would write the lines at all.
        root.addHandler(logging.StreamHandler(sys.stdout))
        runtime_formats_json = False
    context = ContextFilter(stage=settings.stage, function=function)
    for handler in root.handlers:
        for stale in [f for f in handler.filters if isinstance(f, ContextFilter)]:
            handler.removeFilter(stale)
        handler.addFilter(context)
        if not runtime_formats_json:
            line_end = "" if isinstance(handler, logging.StreamHandler) else "\n"
            handler.setFormatter(JsonLineFormatter(line_end=line_end))
    return True
