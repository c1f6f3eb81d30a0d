"""The query engine interface: what a task needs from Athena, and what DuckDB imitates.

It is Athena's model: a query is started and gets an execution id, its state is asked
for (or announced by an "Athena Query State Change" event), and its rows are read in
pages as text, column names lower-cased. The local engine produces exactly that text,
so one conversion (``tasks.results``) serves both worlds.

Text of a value, as Athena's GetQueryResults gives it (``None`` is SQL NULL):

- boolean ``true``/``false``; integers in decimal; doubles as ``1.5`` or ``1.0E10``;
- timestamps ``YYYY-MM-DD HH:MM:SS.fff`` (UTC), dates ``YYYY-MM-DD``;
- arrays ``[a, b, c]``, each element written the same way; everything else as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# Athena returns at most this many rows per GetQueryResults call (header included).
MAX_PAGE_ROWS = 1000


class QueryState(StrEnum):
    """Athena's execution states."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (QueryState.SUCCEEDED, QueryState.FAILED, QueryState.CANCELLED)


@dataclass(frozen=True)
class QueryStatistics:
    """What the engine reports of a finished query (Athena's ``Statistics``); None where
    it reports nothing."""

    # What the query read, as Athena bills it (locally: the size of the lake files of the
    # tables it reads, what Athena would scan without pruning).
    data_scanned_bytes: int | None = None
    engine_millis: int | None = None  # running the query
    queue_millis: int | None = None  # waiting to run
    # Answered from an earlier identical query's results (Athena's result reuse).
    result_reused: bool = False


@dataclass(frozen=True)
class QueryExecution:
    execution_id: str
    state: QueryState
    reason: str | None = None  # why it failed or was cancelled
    submitted: datetime | None = None
    completed: datetime | None = None
    statistics: QueryStatistics = QueryStatistics()


@dataclass(frozen=True)
class ResultPage:
    """Data rows only (Athena's header row is consumed by the engine)."""

    columns: tuple[str, ...]  # lower-cased, as Athena names them
    rows: tuple[tuple[str | None, ...], ...]
    next_token: str | None


class EngineError(Exception):
    """The engine refused a request; the message is meant for the client."""


class UnknownExecution(EngineError):
    """No execution has this id."""


class InvalidPageToken(EngineError):
    """A ``nextToken`` the engine did not issue for this execution."""


class QueryEngine(Protocol):
    def start(self, sql: str, request_token: str) -> str:
        """Start ``sql`` (Trino SQL, placeholders rendered) and return the execution id.

        ``request_token`` makes the call idempotent: the same token returns the same id.
        With result reuse on, an identical query finished within its maximum age is
        answered from that query's results.
        """

    def execution(self, execution_id: str) -> QueryExecution:
        """The execution's current state; raises :class:`UnknownExecution`."""

    def results(
        self, execution_id: str, *, next_token: str | None = None, max_rows: int = MAX_PAGE_ROWS
    ) -> ResultPage:
        """One page of at most ``max_rows`` data rows of a SUCCEEDED execution."""
