"""One handler invocation: its log fields, its metrics, and the EMF line written at its end.

The handler adapters (``chalicelib.handlers``) run each invocation inside
:meth:`Telemetry.invocation`; whatever the work records (:mod:`.metrics`) is written as
one embedded-metric-format line when it ends, raised or not. The line goes to standard
output directly, not through logging: Lambda sends standard output to CloudWatch Logs,
which extracts the metrics, and no log formatter wraps the line.

Only where Lambda runs the app is the line printed: on the embedded local default, and
in a script or test importing the app in aws mode, standard output reaches no
CloudWatch, so the metrics are logged at DEBUG instead. A stream given as
``metrics_out`` always gets the lines: that is where tests read them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from chalicelib.telemetry.logs import CORRELATION_ID, log_fields
from chalicelib.telemetry.metrics import MetricsRecorder, emf_document, recording

if TYPE_CHECKING:
    from chalicelib.settings import Settings

logger = logging.getLogger(__name__)


class Telemetry:
    """The invocations of one function: ``function_name`` is Lambda's name for it (None
    off Lambda)."""

    def __init__(
        self, settings: Settings, *, function_name: str | None, metrics_out: TextIO | None = None
    ) -> None:
        self.project = settings.project
        self.stage = settings.stage
        self.function_name = function_name
        # Where EMF lines go; None is standard output on Lambda, the DEBUG log elsewhere.
        self.metrics_out = metrics_out
        self._print = function_name is not None and not settings.is_local

    @property
    def on_lambda(self) -> bool:
        """Whether Lambda runs the app (and the logs are JSON, see ``configure_logging``)."""
        return self.function_name is not None

    @contextmanager
    def invocation(self, correlation_id: str | None = None) -> Iterator[None]:
        """Log lines of the block carry ``correlationId``; its metrics are written at
        its end, even when it raises."""
        recorder = MetricsRecorder()
        with recording(recorder), log_fields(**{CORRELATION_ID: correlation_id}):
            try:
                yield
            finally:
                self._publish(recorder, correlation_id)

    def _publish(self, recorder: MetricsRecorder, correlation_id: str | None) -> None:
        values = recorder.values()
        if not values:
            return
        try:
            document = emf_document(
                values,
                project=self.project,
                stage=self.stage,
                timestamp_ms=int(time.time() * 1000),
                properties={"function": self.function_name, CORRELATION_ID: correlation_id},
            )
            line = json.dumps(document, separators=(",", ":"))
            out = self.metrics_out
            if out is None:
                if not self._print:
                    logger.debug("metrics %s", line)
                    return
                out = sys.stdout
            out.write(line + "\n")
            out.flush()
        except Exception:
            # Metrics are never worth failing the invocation for.
            logger.exception("the invocation's metrics could not be written")
