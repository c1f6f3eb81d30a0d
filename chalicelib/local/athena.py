"""Athena's stand-in for the embedded default: the task SQL runs on DuckDB over the local lake.

:class:`LocalAthena` implements :class:`~chalicelib.tasks.engine.QueryEngine` the way
Athena behaves: ``start`` returns an execution id at once (the same id for the same
request token), the query runs in the background, every state change is announced by an
"Athena Query State Change" event built exactly as EventBridge delivers it, and rows
are read in pages of Athena's text. The SQL is Trino SQL, transpiled by sqlglot.

The engine's tables are the lake's layers (``chalicelib.lake.layers``: ``t__live``,
``t__compacted``, ``t__deleted``), as Glue has them; the task SQL reads a lake table
through all three, as on Athena.

Speed is the design point. A query over a table that is a directory of one-row
Parquet files (the lake holds one file per entity) would spend almost all its time
opening files: DuckDB's ``read_parquet`` needs 0.2-0.6 ms per file, pyarrow 0.2 ms,
so 10,000 entities would cost 2-6 s per query. Instead every table lives in DuckDB
as an in-memory table, and before a query only what changed on disk is applied:
the table's files are listed (one ``scandir`` per partition directory), compared by
inode, mtime and size with what was loaded, rows of changed and vanished files are
deleted and new and changed files are inserted.

New and changed files are read by DuckDB's own ``read_parquet``, all of a table's at
once, by column name: a file written before a field existed reads it as null.

A finished execution is also written to ``results_dir`` (as Athena writes its result
to S3), so a task that finished before the app restarted can still be read.

Nothing heavy is imported with this module: duckdb, pyarrow and sqlglot are imported
by the worker when the first job runs, so the app starts as fast as without them.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalicelib import keys
from chalicelib.lake.columns import Column, ColumnType, TableSpec
from chalicelib.lake.layers import Layer
from chalicelib.tasks.engine import (
    MAX_PAGE_ROWS,
    EngineError,
    InvalidPageToken,
    QueryExecution,
    QueryState,
    QueryStatistics,
    ResultPage,
    UnknownExecution,
)

logger = logging.getLogger(__name__)

Job = Callable[[], None]
Runner = Callable[[Job], None]
# What identifies one version of a file: a rewrite through rename (how the local object
# store writes) always gets a new inode, so even a same-size rewrite within the file
# system's timestamp granularity is noticed.
Signature = tuple[int, int, int]

# DuckDB must never download an extension: offline it would fail only after a delay.
DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
# Where the loaded rows live; ``main`` holds one view per table without the bookkeeping
# column, so ``SELECT *`` returns the Glue table's columns and nothing else.
_STORE_SCHEMA = "ocg_lake_files"
_SOURCE_FILE = "$source_file"
# How often a refresh lists a table again when a file vanished while it was read.
_REFRESH_ATTEMPTS = 3
# How long the engine lets lake writes gather before it loads them (lake_changed).
FOLLOW_DELAY_SECONDS = 0.25

_DUCKDB_TYPES = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.BIGINT: "BIGINT",
    ColumnType.DOUBLE: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
}

# Athena's error for a query it rejects: category 2 is USER (the query, not the
# service, is at fault); never worth a retry.
ERROR_CATEGORY_USER = 2
ERROR_TYPE_USER_QUERY = 1301
EVENT_SOURCE = "aws.athena"
EVENT_DETAIL_TYPE = "Athena Query State Change"
# Athena numbers an execution's events: QUEUED is 1 (not announced here: ``start``
# returns while the query is queued), RUNNING 2, the final state 3.
_SEQUENCE = {QueryState.RUNNING: 2, QueryState.SUCCEEDED: 3, QueryState.FAILED: 3}

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class LakeReadError(Exception):
    """A lake file cannot be read as a row of its table (Athena fails such a query too)."""


class _QueryError(Exception):
    """The query itself is refused; the message is the execution's reason."""


# -- executions --------------------------------------------------------------------


@dataclass
class _Execution:
    execution_id: str
    sql: str
    submitted: datetime
    state: QueryState = QueryState.QUEUED
    reason: str | None = None
    completed: datetime | None = None
    columns: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    read_seconds: float = 0.0
    execute_seconds: float = 0.0
    started: datetime | None = None  # when it left the queue
    scanned_bytes: int | None = None
    reused: bool = False

    def record(self) -> dict[str, Any]:
        """What is kept of a finished execution on disk; its rows as Athena's text."""
        return {
            "executionId": self.execution_id,
            "sql": self.sql,
            "state": self.state.value,
            "reason": self.reason,
            "submitted": self.submitted.isoformat(),
            "started": self.started.isoformat() if self.started else None,
            "completed": self.completed.isoformat() if self.completed else None,
            "columns": list(self.columns),
            "rows": [[athena_text(value) for value in row] for row in self.rows],
            "readSeconds": self.read_seconds,
            "executeSeconds": self.execute_seconds,
            "scannedBytes": self.scanned_bytes,
            "reused": self.reused,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> _Execution:
        def moment(text: str | None) -> datetime | None:
            return datetime.fromisoformat(text) if text else None

        return cls(
            execution_id=record["executionId"],
            sql=record["sql"],
            submitted=datetime.fromisoformat(record["submitted"]),
            state=QueryState(record["state"]),
            reason=record["reason"],
            completed=moment(record["completed"]),
            columns=tuple(record["columns"]),
            rows=[tuple(row) for row in record["rows"]],
            read_seconds=record["readSeconds"],
            execute_seconds=record["executeSeconds"],
            started=moment(record["started"]),
            scanned_bytes=record["scannedBytes"],
            reused=record["reused"],
        )

    def snapshot(self) -> QueryExecution:
        queued = None if self.started is None else self.started - self.submitted
        statistics = QueryStatistics(
            data_scanned_bytes=self.scanned_bytes,
            engine_millis=round((self.read_seconds + self.execute_seconds) * 1000)
            if self.state.finished
            else None,
            queue_millis=None if queued is None else round(queued / timedelta(milliseconds=1)),
            result_reused=self.reused,
        )
        return QueryExecution(
            self.execution_id, self.state, self.reason, self.submitted, self.completed, statistics
        )


class _Worker:
    """One daemon thread running jobs in order: the default ``run``.

    One thread is enough: DuckDB parallelises a query itself, and jobs share one
    connection, which would serialise them anyway.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="ocg-local-athena", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)

    def stop(self, timeout: float) -> None:
        """Finish the jobs already submitted, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a job reports its own failures; this is a last resort
                logger.exception("local Athena job failed")
            # Waiting for the next job, the thread must not keep this one (and the
            # engine, the app and all they hold) alive.
            del job


class LocalAthena:
    """The query engine of the embedded default: DuckDB over ``<lake_dir>``.

    ``tables`` are the lake's layers (``lake_layers(model)``); each is queryable under
    its name with its Glue columns, typed as Athena types them, and the partition
    columns ``year``, ``month``, ``day`` (strings), even before it has a file.

    ``publish`` receives each state-change event (an EventBridge envelope). Finished
    executions are kept in ``results_dir`` when given, and read from there by a later
    engine. ``run``
    schedules a job; by default one daemon thread runs them in order. A test can pass
    a ``run`` that collects jobs and runs them when it chooses.
    """

    def __init__(
        self,
        lake_dir: Path,
        tables: Sequence[Layer],
        *,
        workgroup: str,
        region: str,
        account_id: str,
        publish: Callable[[dict[str, Any]], object],
        run: Runner | None = None,
        result_reuse_minutes: int = 0,
        results_dir: Path | None = None,
    ) -> None:
        self._lake_dir = Path(lake_dir)
        self._results_dir = results_dir
        self._layers = {layer.name.lower(): layer for layer in tables}
        if len(self._layers) != len(tables):
            raise ValueError("two lake tables have the same name (names are case-insensitive)")
        # A changed object's layer, by its key's first two parts.
        self._by_prefix = {
            tuple(layer.prefix.split("/")[:2]): name for name, layer in self._layers.items()
        }
        for layer in tables:
            clash = {c.name.lower() for c in layer.spec.columns} & set(keys.PARTITION_KEYS)
            if clash:
                raise ValueError(f"table {layer.name} has a column named like a partition: {clash}")
        self._workgroup = workgroup
        self._region = region
        self._account_id = account_id
        self._publish = publish
        self._result_reuse = timedelta(minutes=result_reuse_minutes)
        self._worker: _Worker | None = None
        if run is None:
            self._worker = _Worker()
            run = self._worker.submit
        self._run = run
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False
        self._executions: dict[str, _Execution] = {}
        # The lake keys written or deleted since the follower last ran, by table.
        self._changed_keys: dict[str, set[str]] = {}
        self._following = False
        self._by_token: dict[str, str] = {}
        self._token_key = _token_key(results_dir)
        # The DuckDB side: created by the first job, used under ``_db_lock`` only.
        self._db_lock = threading.Lock()
        self._lake: _LoadedLake | None = None
        self._disposed = False
        # A process that exits without ``close`` would leave DuckDB's objects to the
        # interpreter's shutdown, and DuckDB's bindings then print pages of "leaked"
        # warnings. A weak reference: the hook must not keep the engine alive.
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- QueryEngine ----------------------------------------------------------------

    def start(self, sql: str, request_token: str) -> str:
        """Queue ``sql`` and return its execution id; the same token gives the same id.

        Like Athena, a token reused with another query is refused rather than
        silently answered with the first query's id.
        """
        with self._lock:
            if self._closed:
                raise EngineError("the local query engine is closed")
            known = self._by_token.get(request_token)
            if known is not None:
                if self._executions[known].sql != sql:
                    raise EngineError(
                        f"request token {request_token!r} was already used for another query"
                    )
                return known
            execution_id = str(uuid.uuid4())
            execution = _Execution(execution_id, sql, keys.utc_now())
            self._executions[execution_id] = execution
            self._by_token[request_token] = execution_id
            earlier = self._reusable(sql, execution.submitted)
            if earlier is not None:
                execution.columns, execution.rows = earlier.columns, earlier.rows
                execution.started, execution.reused = execution.submitted, True
                execution.scanned_bytes = 0
            else:
                self._pending += 1
        if earlier is not None:
            self._transition(execution_id, QueryState.SUCCEEDED)
            return execution_id
        try:
            self._run(lambda: self._job(lambda: self._execute(execution_id)))
        except BaseException:
            with self._lock:
                del self._executions[execution_id]
                del self._by_token[request_token]
                self._pending -= 1
                self._idle.notify_all()
            raise
        return execution_id

    def _reusable(self, sql: str, now: datetime) -> _Execution | None:
        """With result reuse on, the newest identical query that succeeded within the
        maximum age (as Athena's ResultReuseByAgeConfiguration); call with the lock held."""
        if not self._result_reuse:
            return None
        found = [
            e
            for e in self._executions.values()
            if e.sql == sql
            and e.state is QueryState.SUCCEEDED
            and e.completed is not None
            and now - e.completed <= self._result_reuse
        ]
        return max(found, key=lambda e: e.completed or now, default=None)

    def abandon(self, execution_id: str, submitted: datetime, reason: str) -> None:
        """Fail a query an earlier process started and did not finish (it died): the
        execution is recorded FAILED with ``reason`` and announced, as Athena announces a
        failed query, so the tracker ends its task like any other failure. One that
        finished before the process died (kept on disk) is announced as it finished."""
        with self._lock:
            if execution_id in self._executions:
                return
            kept = self._kept(execution_id)
            if kept is None:
                self._executions[execution_id] = _Execution(execution_id, "", submitted)
        if kept is None:
            self._transition(execution_id, QueryState.FAILED, reason=reason)
            return
        try:
            self._publish(self._event(execution_id, kept.state, QueryState.RUNNING, kept.reason))
        except Exception:
            logger.exception("publishing the end of query %s failed", execution_id)

    def execution(self, execution_id: str) -> QueryExecution:
        with self._lock:
            return self._get(execution_id).snapshot()

    def results(
        self, execution_id: str, *, next_token: str | None = None, max_rows: int = MAX_PAGE_ROWS
    ) -> ResultPage:
        """A page of Athena text; ``max_rows`` is capped at Athena's 1,000."""
        if max_rows < 1:
            raise EngineError(f"max_rows must be at least 1, not {max_rows}")
        with self._lock:
            execution = self._get(execution_id)
            if execution.state is not QueryState.SUCCEEDED:
                if execution.state.finished:
                    raise EngineError(
                        f"query {execution_id} did not finish successfully; final state "
                        f"{execution.state}: {execution.reason}"
                    )
                raise EngineError(
                    f"query {execution_id} has not yet finished; current state {execution.state}"
                )
            rows, columns = execution.rows, execution.columns
        offset = 0 if next_token is None else self._token_offset(execution_id, next_token)
        end = offset + min(max_rows, MAX_PAGE_ROWS)
        page = tuple(tuple(athena_text(value) for value in row) for row in rows[offset:end])
        following = self._page_token(execution_id, end) if end < len(rows) else None
        return ResultPage(columns, page, following)

    # -- local extras ---------------------------------------------------------------

    def timings(self, execution_id: str) -> tuple[float, float] | None:
        """Seconds spent bringing the tables up to date and running the query.

        None until the execution has finished. For the benchmark: reading the lake and
        DuckDB's work are the two costs worth telling apart.
        """
        with self._lock:
            execution = self._get(execution_id)
            if not execution.state.finished:
                return None
            return execution.read_seconds, execution.execute_seconds

    @property
    def files_read(self) -> int:
        """How many lake files were read so far: each version of a file is read once."""
        with self._db_lock:
            return 0 if self._lake is None else self._lake.files_read

    def lake_changed(self, key: str) -> None:
        """Follow the lake as it is written: the local object store calls this after
        each write or delete, and the changed files are brought up to date in the
        background, so a query reads only what changed since (the object store of the
        embedded default is in this process, so nothing is missed or polled for). Only
        the named files are looked at: following a bulk load costs each file once, not
        a listing of the whole table per write.

        Refreshing remains the query's own first step: this only moves the work ahead.
        """
        name = self._by_prefix.get(tuple(key.split("/")[:2]))
        with self._lock:
            if self._closed or name is None:
                return
            self._changed_keys.setdefault(name, set()).add(key)
            if self._following:
                return
            self._following = True
            self._pending += 1
        # A moment later, so that a burst of writes is read as one batch: DuckDB reads
        # a few files at a time at ~0.8 ms a file, hundreds at once at ~0.1 ms.
        timer = threading.Timer(FOLLOW_DELAY_SECONDS, self._follow_now)
        timer.daemon = True
        timer.start()

    def _follow_now(self) -> None:
        with self._lock:
            closed = self._closed
        if closed:
            self._job(lambda: None)
            return
        self._run(lambda: self._job(self._follow))

    def preload(self) -> None:
        """Load every table in the background now, so the first query finds them loaded."""
        with self._lock:
            if self._closed:
                raise EngineError("the local query engine is closed")
            self._pending += 1
        self._run(lambda: self._job(self._preload))

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Return once every job started so far has finished; ``TimeoutError`` otherwise."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(
                    f"local Athena still has {self._pending} job(s) after {timeout} s"
                )

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new queries, let the default worker run the queued ones, free DuckDB.

        A job that runs after this (an injected ``run`` running it late) fails its
        query with a message saying the engine is closed.
        """
        with self._lock:
            self._closed = True
        if self._worker is not None:
            self._worker.stop(timeout)
        if not self._db_lock.acquire(timeout=timeout):
            logger.warning("local Athena: a query still runs after %s s; DuckDB left open", timeout)
            return
        try:
            self._disposed = True
            lake, self._lake = self._lake, None
            if lake is not None:
                lake.close()
        finally:
            self._db_lock.release()

    # -- jobs -----------------------------------------------------------------------

    def _get(self, execution_id: str) -> _Execution:
        """Call with the lock held."""
        execution = self._executions.get(execution_id) or self._kept(execution_id)
        if execution is None:
            raise UnknownExecution(f"no query execution has the id {execution_id!r}")
        return execution

    def _result_file(self, execution_id: str) -> Path | None:
        if self._results_dir is None or not re.fullmatch(r"[0-9a-f-]{36}", execution_id):
            return None
        return self._results_dir / f"{execution_id}.json"

    def _keep(self, execution: _Execution) -> None:
        """Write a finished execution to disk (whole, or not at all)."""
        path = self._result_file(execution.execution_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_suffix(".tmp")
        written.write_text(json.dumps(execution.record()))
        written.replace(path)

    def _kept(self, execution_id: str) -> _Execution | None:
        """A finished execution an earlier engine kept; call with the lock held."""
        path = self._result_file(execution_id)
        if path is None or not path.is_file():
            return None
        execution = _Execution.from_record(json.loads(path.read_text()))
        self._executions[execution_id] = execution
        return execution

    def _job(self, work: Job) -> None:
        try:
            work()
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _connected(self) -> _LoadedLake:
        """The DuckDB side, created on first use; call with ``_db_lock`` held."""
        if self._disposed:
            raise EngineError("the local query engine was closed before the query ran")
        if self._lake is None:
            self._lake = _LoadedLake(self._lake_dir, tuple(self._layers.values()))
        return self._lake

    def _follow(self) -> None:
        with self._lock:
            changed, self._changed_keys = self._changed_keys, {}
            self._following = False
        try:
            with self._db_lock:
                lake = self._connected()
                for name, changed_keys in sorted(changed.items()):
                    lake.refresh_files(name, changed_keys)
        except Exception:
            logger.exception("local Athena could not follow the lake; queries will catch up")

    def _preload(self) -> None:
        try:
            with self._db_lock:
                lake = self._connected()
                lake.refresh(self._layers)
        except Exception:
            logger.exception("local Athena could not preload the lake")

    def _execute(self, execution_id: str) -> None:
        sql = self._transition(execution_id, QueryState.RUNNING)
        read_seconds = execute_seconds = 0.0
        scanned: int | None = None
        try:
            duckdb_sql, table_names = _transpile(sql)
            with self._db_lock:
                lake = self._connected()
                started = time.perf_counter()
                read = [name for name in table_names if name in self._layers]
                lake.refresh(read)
                scanned = lake.stored_bytes(read)
                read_seconds = time.perf_counter() - started
                started = time.perf_counter()
                try:
                    columns, rows = lake.query(duckdb_sql)
                finally:
                    execute_seconds = time.perf_counter() - started
        except Exception as error:
            if not _is_expected(error):
                logger.exception("local Athena query %s failed unexpectedly", execution_id)
            with self._lock:
                execution = self._executions[execution_id]
                execution.read_seconds, execution.execute_seconds = read_seconds, execute_seconds
            self._transition(execution_id, QueryState.FAILED, reason=_error_text(error))
            return
        with self._lock:
            execution = self._executions[execution_id]
            execution.columns, execution.rows = columns, rows
            execution.read_seconds, execution.execute_seconds = read_seconds, execute_seconds
            execution.scanned_bytes = scanned
        self._transition(execution_id, QueryState.SUCCEEDED)

    def _transition(self, execution_id: str, state: QueryState, reason: str | None = None) -> str:
        """Record the new state, then announce it; a failing ``publish`` is only logged.

        Returns the execution's SQL, read under the lock like the state.
        """
        with self._lock:
            execution = self._executions[execution_id]
            previous, execution.state = execution.state, state
            if state is QueryState.RUNNING:
                execution.started = keys.utc_now()
            if state.finished:
                execution.reason = reason
                execution.completed = keys.utc_now()
            sql = execution.sql
        if state.finished:
            try:
                self._keep(execution)
            except OSError:
                logger.exception("could not keep query %s on disk", execution_id)
        event = self._event(execution_id, state, previous, reason)
        try:
            self._publish(event)
        except Exception:
            logger.exception(
                "publishing the %s event of query %s failed", state.value, execution_id
            )
        return sql

    def _event(
        self, execution_id: str, state: QueryState, previous: QueryState, reason: str | None
    ) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "currentState": state.value,
            "previousState": previous.value,
            "queryExecutionId": execution_id,
            "sequenceNumber": str(_SEQUENCE[state]),
            "statementType": "DML",
            "versionId": "0",
            "workgroupName": self._workgroup,
        }
        if state is QueryState.FAILED:
            detail["athenaError"] = {
                "errorCategory": ERROR_CATEGORY_USER,
                "errorType": ERROR_TYPE_USER_QUERY,
                "errorMessage": reason,
                "retryable": False,
            }
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": EVENT_DETAIL_TYPE,
            "source": EVENT_SOURCE,
            "account": self._account_id,
            "time": keys.utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [],
            "detail": detail,
        }

    # -- page tokens ----------------------------------------------------------------

    def _signature(self, execution_id: str, offset: int) -> str:
        message = f"{execution_id}:{offset}".encode()
        return hmac.new(self._token_key, message, hashlib.sha256).hexdigest()[:32]

    def _page_token(self, execution_id: str, offset: int) -> str:
        """Opaque and tamper-evident: the offset, signed together with the execution id."""
        text = f"{offset}:{self._signature(execution_id, offset)}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    def _token_offset(self, execution_id: str, token: str) -> int:
        try:
            text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
            offset_text, signature = text.split(":")
            offset = int(offset_text)
        except (binascii.Error, UnicodeError, ValueError):
            offset, signature = -1, ""
        if offset < 0 or not hmac.compare_digest(signature, self._signature(execution_id, offset)):
            raise InvalidPageToken(
                f"nextToken {token!r} was not issued for query execution {execution_id}"
            )
        return offset


def _token_key(results_dir: Path | None) -> bytes:
    """The key page tokens are signed with: kept beside the results, so that a token
    issued before a restart still reads the rest of a kept result."""
    if results_dir is None:
        return os.urandom(32)
    path = results_dir / "token-key"
    if not path.is_file():
        results_dir.mkdir(parents=True, exist_ok=True)
        written = path.with_suffix(".tmp")
        written.write_bytes(os.urandom(32))
        written.chmod(0o600)
        written.replace(path)
    return path.read_bytes()


def _close_at_exit(reference: weakref.ref[LocalAthena]) -> None:
    engine = reference()
    if engine is not None:
        engine.close(timeout=1.0)


def _is_expected(error: Exception) -> bool:
    """A failure of the query (DuckDB's errors, refused SQL, unreadable files), not a bug."""
    if isinstance(error, _QueryError | LakeReadError | EngineError):
        return True
    return type(error).__module__.split(".")[0] in ("duckdb", "_duckdb")


def _error_text(error: Exception) -> str:
    """DuckDB's own message (``Binder Error: ...``) is the reason, as Athena gives its own."""
    return str(error) if _is_expected(error) else f"{type(error).__name__}: {error}"


# -- SQL ---------------------------------------------------------------------------


def _transpile(sql: str) -> tuple[str, set[str]]:
    """Trino SQL -> DuckDB SQL, and the lower-cased names of the tables it reads.

    Only one query is accepted, as Athena runs one statement per execution; anything
    but a query is refused, since the lake is written by the stream handler alone.
    Whatever sqlglot cannot translate faithfully fails the query instead of running
    something else.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, ParseError, SqlglotError

    try:
        statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    except ParseError as error:
        raise _QueryError(_parse_error_text(error)) from error
    except SqlglotError as error:
        raise _QueryError(f"SYNTAX_ERROR: {_ANSI_ESCAPE.sub('', str(error))}") from error
    if len(statements) != 1:
        raise _QueryError(f"Only one sql statement is allowed. Got: {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise _QueryError(
            f"NOT_SUPPORTED: the local engine runs queries only, not {statement.key.upper()}"
        )
    _name_like_trino(statement)
    try:
        translated = statement.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as error:
        raise _QueryError(f"NOT_SUPPORTED: {_ANSI_ESCAPE.sub('', str(error))}") from error
    return translated, {table.name.lower() for table in statement.find_all(exp.Table)}


def _name_like_trino(statement: Any) -> None:
    """Give unnamed result columns Trino's names, ``_col<position>``.

    Trino names a result column after its alias or its column, and any other
    expression ``_col0``, ``_col1``, ... by position; DuckDB would name it after the
    expression's text. The first SELECT of a set operation names the columns. After a
    ``*`` positions depend on the tables' columns, so naming stops there.
    """
    from sqlglot import exp

    select = statement
    while isinstance(select, exp.SetOperation | exp.Subquery):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    for position, projection in enumerate(list(select.expressions)):
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            return  # ``*`` or ``t.*``
        if not isinstance(projection, exp.Alias | exp.Column):
            projection.replace(exp.alias_(projection.copy(), f"_col{position}"))


def _parse_error_text(error: Any) -> str:
    """``SYNTAX_ERROR: line L:C: description``, Athena's shape, without sqlglot's colours."""
    details = getattr(error, "errors", None) or []
    if details:
        first = details[0]
        return (
            f"SYNTAX_ERROR: line {first.get('line')}:{first.get('col')}: {first.get('description')}"
        )
    return f"SYNTAX_ERROR: {_ANSI_ESCAPE.sub('', str(error))}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- Athena's text -----------------------------------------------------------------


def athena_text(value: Any) -> str | None:
    """A value as Athena's GetQueryResults writes it (see ``tasks.engine``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _nested_text(value)


def _nested_text(value: Any) -> str:
    # Inside arrays and maps Athena writes SQL NULL as ``null``.
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return _timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, clock_time):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, timedelta):
        return _interval_text(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_nested_text(item) for item in value) + "]"
    if isinstance(value, dict):
        # Trino writes maps and rows alike: ``{key=value, ...}``.
        pairs = (f"{_nested_text(k)}={_nested_text(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, bytes | bytearray | memoryview):
        return " ".join(f"{byte:02x}" for byte in bytes(value))
    return str(value)


def double_text(value: float) -> str:
    """Java's ``Double.toString``, which Athena uses: ``1.5``, ``1.0E10``, ``1.0E-5``.

    Plain notation for 1e-3 <= |x| < 1e7, scientific otherwise; the digits are the
    shortest that read back as the same double, so ``float(text)`` is exact.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    mantissa = f"{text[0]}.{text[1:] or '0'}"
    return f"{'-' if sign else ''}{mantissa}E{exponent + len(digits) - 1}"


def _timestamp_text(value: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.fff``; aware values in UTC (the lake's timestamps are UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}."
        f"{value.microsecond // 1000:03d}"
    )


def _interval_text(value: timedelta) -> str:
    """Trino's ``interval day to second``: ``D HH:MM:SS.fff``."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    seconds = value.seconds
    return (
        f"{sign}{value.days} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
        f"{seconds % 60:02d}.{value.microseconds // 1000:03d}"
    )


# -- the loaded lake ---------------------------------------------------------------


class _LoadedLake:
    """One DuckDB connection holding every table's rows, and which file each came from."""

    def __init__(self, lake_dir: Path, layers: Sequence[Layer]) -> None:
        import duckdb

        self._root = lake_dir
        self._specs = {layer.name.lower(): layer.spec for layer in layers}
        # Each layer's directory: ``<lake_dir>/<layer prefix>``.
        self._dirs = {
            layer.name.lower(): str(lake_dir.joinpath(*layer.prefix.strip("/").split("/")))
            for layer in layers
        }
        self._loaded: dict[str, dict[str, Signature]] = {name: {} for name in self._specs}
        self.files_read = 0
        self._connection = duckdb.connect(config=DUCKDB_CONFIG)
        self._connection.execute("SET TimeZone = 'UTC'")
        # Measured on 10,000 one-row files: read_parquet takes ~1.2 s on one thread and
        # 4 s or more on two or four (the threads contend over tiny files); the task
        # queries themselves run on tables of thousands of rows, where one is plenty.
        self._connection.execute("SET threads = 1")
        self._connection.execute(f"CREATE SCHEMA {_STORE_SCHEMA}")
        for spec in self._specs.values():
            self._create(spec)

    def close(self) -> None:
        self._connection.close()

    def _create(self, spec: TableSpec) -> None:
        columns = [f"{_quote(c.name)} {_duckdb_type(c)}" for c in spec.columns]
        columns += [f"{name} VARCHAR" for name in keys.PARTITION_KEYS]
        stored = f"{_STORE_SCHEMA}.{_quote(spec.name)}"
        self._connection.execute(
            f"CREATE TABLE {stored} ({', '.join(columns)}, {_quote(_SOURCE_FILE)} VARCHAR)"
        )
        visible = ", ".join([_quote(c.name) for c in spec.columns] + list(keys.PARTITION_KEYS))
        self._connection.execute(
            f"CREATE VIEW main.{_quote(spec.name)} AS SELECT {visible} FROM {stored}"
        )

    def query(self, sql: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        cursor = self._connection.execute(sql)
        columns = tuple(str(column[0]).lower() for column in cursor.description or ())
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return columns, rows

    def stored_bytes(self, names: Iterable[str]) -> int:
        """The size of the loaded files of the named tables: what Athena would scan of
        them, before any partition pruning or column selection."""
        return sum(signature[2] for name in set(names) for signature in self._loaded[name].values())

    def refresh(self, names: Iterable[str]) -> None:
        for name in sorted(set(names)):
            self._refresh_table(self._specs[name])

    def refresh_files(self, name: str, object_keys: Iterable[str]) -> None:
        """Bring the named files of one table up to date (written, rewritten or
        deleted), without listing the table."""
        spec = self._specs[name]
        paths = {
            path
            for path in (_table_file(self._dirs[name], key) for key in object_keys)
            if path is not None
        }
        self._refresh(spec, lambda: _stat_files(paths), paths)

    def _refresh_table(self, spec: TableSpec) -> None:
        """Bring one table up to date with its directory: only changed files are read.

        A file can vanish between the listing and its reading (the stream handler
        deletes on REMOVE): DuckDB then fails the read, and the table is listed again.
        A file rewritten in between is loaded as read and, its recorded signature being
        the older one, read again by the next refresh.
        """
        directory = self._dirs[spec.name.lower()]
        self._refresh(spec, lambda: _list_table(Path(directory)), None)

    def _refresh(
        self,
        spec: TableSpec,
        listing: Callable[[], dict[str, Signature]],
        among: set[str] | None,
    ) -> None:
        """Apply what ``listing`` finds changed: all the table's files (``among`` is
        None) or those of ``among`` only."""
        import duckdb

        loaded = self._loaded[spec.name.lower()]
        for attempt in range(_REFRESH_ATTEMPTS):
            listed = listing()
            candidates = loaded.keys() if among is None else among & loaded.keys()
            stale = [path for path in candidates if listed.get(path) != loaded[path]]
            fresh = [path for path, signature in listed.items() if loaded.get(path) != signature]
            if not stale and not fresh:
                return
            try:
                self._apply(spec, stale, fresh)
            except duckdb.IOException:
                if attempt + 1 == _REFRESH_ATTEMPTS:
                    raise
                continue
            for path in stale:
                del loaded[path]
            loaded.update({path: listed[path] for path in fresh})
            self.files_read += len(fresh)
            return

    def _apply(self, spec: TableSpec, stale: list[str], fresh: list[str]) -> None:
        """Delete and insert in one transaction: a failure leaves the table as it was.

        Files are read by column name: a column a file lacks (written before the field
        existed) is null, one the table no longer has is ignored, as Athena reads
        Parquet through its Glue columns. Files of one schema are read as they are;
        only when their schemas differ does DuckDB unify them by name, which costs a
        third more (every file's schema is read first).
        """
        import duckdb

        try:
            self._replace(spec, stale, fresh, union_by_name=False)
        except duckdb.IOException:
            raise
        except duckdb.Error:
            try:
                self._replace(spec, stale, fresh, union_by_name=True)
            except duckdb.IOException:
                raise
            except duckdb.Error as error:
                raise LakeReadError(
                    f"HIVE_BAD_DATA: cannot read table {spec.name}: {error}"
                ) from error

    def _replace(
        self, spec: TableSpec, stale: list[str], fresh: list[str], *, union_by_name: bool
    ) -> None:
        stored = f"{_STORE_SCHEMA}.{_quote(spec.name)}"
        connection = self._connection
        connection.execute("BEGIN TRANSACTION")
        try:
            if stale:
                connection.execute(
                    f"DELETE FROM {stored} WHERE {_quote(_SOURCE_FILE)} IN ?", [stale]
                )
            if fresh:
                connection.execute(_insert_files(spec, union_by_name=union_by_name), [fresh])
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _insert_files(spec: TableSpec, *, union_by_name: bool) -> str:
    """The statement inserting the rows of the files given as its parameter."""
    names = [*(c.name for c in spec.columns), *keys.PARTITION_KEYS]
    known = ", ".join(_string_literal(name) for name in names)
    hive_types = ", ".join(f"{_string_literal(k)}: VARCHAR" for k in keys.PARTITION_KEYS)
    source = _quote(_SOURCE_FILE)
    return (
        f"INSERT INTO {_STORE_SCHEMA}.{_quote(spec.name)} BY NAME "
        f"SELECT COLUMNS(lambda c: list_contains([{known}], c)), filename AS {source} "
        f"FROM read_parquet(?, filename = true, union_by_name = {str(union_by_name).lower()}, "
        f"hive_partitioning = true, hive_types = {{{hive_types}}})"
    )


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duckdb_type(column: Column) -> str:
    base = _DUCKDB_TYPES[column.type]
    return f"{base}[]" if column.is_list else base


def _table_file(table_dir: str, key: str) -> str | None:
    """The path :func:`_list_table` gives the lake object ``key`` of the layer in
    ``table_dir``, or None for an object a listing skips (not a partition's file)."""
    if keys.lake_partition(key) is None:
        return None
    # Built as the listing's os.scandir builds it, so that both name a file alike.
    return os.path.join(table_dir, *key.split("/")[2:])  # noqa: PTH118


def _stat_files(paths: Iterable[str]) -> dict[str, Signature]:
    """The signature of each of ``paths`` that exists."""
    found: dict[str, Signature] = {}
    for path in paths:
        try:
            stat = os.stat(path)  # noqa: PTH116 (a str path, as listed)
        except FileNotFoundError:
            continue
        found[path] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def _list_table(table_dir: Path) -> dict[str, Signature]:
    """Every ``<partition dirs>/*.parquet`` file of a table, with its signature.

    Hidden names (the object store's temporary files start with ``.``) are skipped,
    like Hive and Athena skip ``.`` and ``_`` files; so are files outside partitions.
    """
    found: dict[str, Signature] = {}

    def walk(directory: str, depth: int) -> None:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        if depth == len(keys.PARTITION_KEYS):
            for entry in entries:
                name = entry.name
                if not name.endswith(".parquet") or name.startswith((".", "_")):
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                found[entry.path] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            return
        prefix = f"{keys.PARTITION_KEYS[depth]}="
        for entry in entries:
            if entry.name.startswith(prefix) and entry.is_dir():
                walk(entry.path, depth + 1)

    walk(str(table_dir), 0)
    return found
