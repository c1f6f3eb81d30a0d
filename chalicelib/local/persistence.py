"""The embedded default's state on disk: what the emulated AWS acknowledged survives any
stop of the process, ``kill -9`` included (docs/local.md, "Durable state").

- **DynamoDB: a write-ahead journal, and snapshots.** Every DynamoDB request that
  changed data and succeeded is appended to ``<local dir>/state/dynamodb.journal`` (its
  action and its body, as the client sent it) and synced to disk before it is
  acknowledged: before moto's answer leaves the emulator, or, for the writes of one
  GraphQL request, once before that request's HTTP answer. Requests run one at a time
  (``chalicelib.local.aws``), so the journal's order is the order they were applied,
  and a stream record is only visible once its write is on disk. When the stream has
  been delivered entirely, the tables' items are written to ``dynamodb.snapshot`` with
  the journal position they include, and the journal starts afresh.
- **On start**, the snapshot's items are put straight into moto's tables, without stream
  records: a snapshot is only taken once every stream record up to it was delivered, so
  the lake already has them. Then the journal's entries are applied again as requests;
  they make their stream records again, and the stream handler writes (again) their lake
  files: harmless, since every lake write is a whole-file overwrite or a delete. Table
  and lake agree once that stream is delivered.
- **SQS**: after every request that changed a queue's messages, every queue's messages
  (body, attributes, receive count) are written to ``sqs.json`` (write, flush, rename).
  On start they are put back, visible again: a message being processed when the process
  died is delivered again, as SQS would after its visibility timeout, and keeps its
  receive count, so a message that keeps failing still reaches its dead-letter queue.

The handlers' boto3 calls and the stream records they receive are exactly those of a run
that never stopped: persistence sits below the API, in moto's request handlers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

# The DynamoDB actions that change items; anything else is not journaled.
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
# The SQS actions after which the queues' messages may have changed.
SQS_CHANGES = frozenset(
    {
        "SendMessage",
        "SendMessageBatch",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ReceiveMessage",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "PurgeQueue",
    }
)
# A snapshot is taken once this many entries are in the journal (and the stream has been
# delivered): it bounds what a restart applies again.
SNAPSHOT_AFTER_ENTRIES = 5_000
STATE_DIR = "state"
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class StateError(RuntimeError):
    """The state on disk cannot be read back; the message says which file and how to
    start over."""


def _write_atomically(path: Path, write: Callable[[IO[str]], None]) -> None:
    """Write ``path`` through a temporary file renamed over it, both on disk before the
    rename: a crash leaves the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DynamoDBJournal:
    """The append-only record of DynamoDB writes since the last snapshot.

    Entries are appended one request at a time (under the emulator's DynamoDB lock) and
    reach the disk by :meth:`sync`: at once, or, inside :meth:`deferred`, once for the
    whole block (an HTTP request syncs once before its answer, not once per write).
    Syncs from several threads share one ``fsync`` when they find it already done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self.entries = 0
        self.position = 0  # the sequence number of the last entry written
        self._synced = 0  # the last entry known to be on disk
        self._lock = threading.Lock()  # the file: writes, flushes, syncs, restarts
        self._deferring = threading.local()

    def open(self, position: int, entries: int) -> None:
        self.position, self.entries, self._synced = position, entries, position
        self._file = self.path.open("a", encoding="utf-8")

    def append(self, action: str, body: str) -> None:
        if self._file is None:
            return
        with self._lock:
            self.position += 1
            self.entries += 1
            self._file.write(json.dumps({"seq": self.position, "action": action, "body": body}))
            self._file.write("\n")
        if not getattr(self._deferring, "depth", 0):
            self.sync()

    def sync(self) -> None:
        """Put every entry written so far on disk (nothing to do if another thread's
        sync already did)."""
        with self._lock:
            if self._file is None or self._synced >= self.position:
                return
            self._file.flush()
            os.fsync(self._file.fileno())
            self._synced = self.position

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """This thread's entries reach the disk once, when the block ends: what the block
        acknowledges is durable when it returns. A stream read syncs first (see
        ``chalicelib.local.aws``), so no record is delivered before its write is on disk."""
        depth = getattr(self._deferring, "depth", 0)
        self._deferring.depth = depth + 1
        try:
            yield
        finally:
            self._deferring.depth = depth
            if not depth:
                self.sync()

    def restart(self) -> None:
        """Start an empty journal (after a snapshot took in every entry)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = None
            _write_atomically(self.path, lambda file: None)
            self.entries = 0
            self._synced = self.position
            self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None
                self._synced = self.position

    def read(self) -> Iterator[dict[str, Any]]:
        """The entries on disk, in order; a last line cut short by a crash ends them
        (its request was never answered)."""
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8") as file:
            lines = file.readlines()
        for number, line in enumerate(lines, 1):
            try:
                entry: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    logger.warning("%s: its last entry was cut short; dropped", self.path)
                    return
                raise StateError(
                    f"{self.path}:{number} is not a journal entry; run `make reset` to start "
                    "over with an empty local default"
                ) from None
            yield entry


def _client_parameters(value: Any) -> Any:
    """A request body as a boto3 client takes it: binary values are base64 text on the
    wire and bytes in the client."""
    if isinstance(value, dict):
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if key == "B" and isinstance(item, str):
                converted[key] = base64.b64decode(item)
            elif key == "BS" and isinstance(item, list):
                converted[key] = [base64.b64decode(entry) for entry in item]
            else:
                converted[key] = _client_parameters(item)
        return converted
    if isinstance(value, list):
        return [_client_parameters(item) for item in value]
    return value


class DurableState:
    """The state files of one local directory, and the moto state they hold."""

    def __init__(self, local_dir: Path, account_id: str, region: str) -> None:
        self.directory = local_dir / STATE_DIR
        self.account_id, self.region = account_id, region
        self.journal = DynamoDBJournal(self.directory / "dynamodb.journal")
        self.snapshot_path = self.directory / "dynamodb.snapshot"
        self.queues_path = self.directory / "sqs.json"
        self._replaying = False
        self._queues_seen: object = None
        self._lock = threading.Lock()

    # -- recording ------------------------------------------------------------------

    def dynamodb_request(self, action: str, body: str | Mapping[str, Any], status: int) -> None:
        """Called by the emulator after each DynamoDB request, under its lock, with the
        request's body as it came (moto hands it over parsed)."""
        if status == 200 and action in DYNAMODB_WRITES and not self._replaying:
            self.journal.append(action, body if isinstance(body, str) else json.dumps(body))

    def sqs_request(self, action: str, status: int) -> None:
        """Called by the emulator after each SQS request, under its lock."""
        if status == 200 and action in SQS_CHANGES and not self._replaying:
            self._save_queues()

    # -- restoring ------------------------------------------------------------------

    def restore(self, dynamodb: Any) -> int:
        """Put the state on disk back into the freshly provisioned emulator, then keep
        recording; how many journal entries were applied again."""
        self.directory.mkdir(parents=True, exist_ok=True)
        position = self._load_snapshot()
        applied = 0
        self._replaying = True
        try:
            for entry in self.journal.read():
                if entry["seq"] <= position:
                    continue  # a snapshot written just before a crash took it in already
                self._apply(dynamodb, entry)
                position = entry["seq"]
                applied += 1
            self._load_queues()
        finally:
            self._replaying = False
        self.journal.open(position, applied)
        self._queues_seen = self._queues_fingerprint()
        return applied

    def _apply(self, dynamodb: Any, entry: Mapping[str, Any]) -> None:
        method = getattr(dynamodb, _CAMEL.sub("_", entry["action"]).lower())
        try:
            method(**_client_parameters(json.loads(entry["body"])))
        except dynamodb.exceptions.ClientError as error:
            # It succeeded once on this very state, so only a changed emulator refuses it
            # now; going on would serve a table without that write, and every later one
            # applied to a state that never was.
            raise StateError(
                f"{self.journal.path}: entry {entry['seq']} ({entry['action']}) succeeded "
                f"when it was written but is refused now: {error}. Keep the directory to "
                "investigate, or run `make reset` to start over with an empty local default"
            ) from None

    def _tables(self) -> Mapping[str, Any]:
        from moto.dynamodb.models import dynamodb_backends

        tables: Mapping[str, Any] = dynamodb_backends[self.account_id][self.region].tables
        return tables

    def _load_snapshot(self) -> int:
        if not self.snapshot_path.is_file():
            return 0
        tables = self._tables()
        with self.snapshot_path.open(encoding="utf-8") as file:
            header = json.loads(file.readline())
            streams = {name: table.stream_shard for name, table in tables.items()}
            try:
                for table in tables.values():  # the lake has these items already
                    table.stream_shard = None
                for line in file:
                    record = json.loads(line)
                    tables[record["table"]].put_item(record["item"])
            finally:
                for name, shard in streams.items():
                    tables[name].stream_shard = shard
        position: int = header["seq"]
        return position

    # -- snapshots --------------------------------------------------------------------

    def snapshot_due(self) -> bool:
        return self.journal.entries >= SNAPSHOT_AFTER_ENTRIES

    def snapshot(self) -> None:
        """Write every table's items with the journal position they include, then start
        an empty journal. Call it under the emulator's DynamoDB lock, when every stream
        record has been delivered."""
        tables = self._tables()

        def write(file: IO[str]) -> None:
            file.write(json.dumps({"seq": self.journal.position}) + "\n")
            for name, table in tables.items():
                for item in table.all_items():
                    attributes = item.to_json()["Attributes"]
                    file.write(json.dumps({"table": name, "item": attributes}) + "\n")

        _write_atomically(self.snapshot_path, write)
        self.journal.restart()

    # -- queues -----------------------------------------------------------------------

    def _sqs_queues(self) -> Mapping[str, Any]:
        from moto.sqs.models import sqs_backends

        queues: Mapping[str, Any] = sqs_backends[self.account_id][self.region].queues
        return queues

    def _queues_fingerprint(self) -> object:
        return tuple(
            (name, message.id, message.approximate_receive_count)
            for name, queue in self._sqs_queues().items()
            for message in queue._messages
        )

    def _save_queues(self) -> None:
        fingerprint = self._queues_fingerprint()
        if fingerprint == self._queues_seen:
            return
        state = {
            name: [
                {
                    "id": message.id,
                    "body": message.body,
                    "attributes": message.message_attributes,
                    "sentTimestamp": message.sent_timestamp,
                    "receiveCount": message.approximate_receive_count,
                }
                for message in queue._messages
            ]
            for name, queue in self._sqs_queues().items()
        }
        _write_atomically(self.queues_path, lambda file: json.dump(state, file))
        self._queues_seen = fingerprint

    def _load_queues(self) -> None:
        if not self.queues_path.is_file():
            return
        from moto.sqs.models import Message

        state = json.loads(self.queues_path.read_text(encoding="utf-8"))
        queues = self._sqs_queues()
        for name, messages in state.items():
            queue = queues.get(name)
            if queue is None:
                logger.warning(
                    "%s: queue %s no longer exists; its messages are dropped",
                    self.queues_path,
                    name,
                )
                continue
            for saved in messages:
                message = Message(saved["id"], saved["body"])
                message.message_attributes = saved["attributes"]
                message.sent_timestamp = saved["sentTimestamp"]
                message.approximate_receive_count = saved["receiveCount"]
                queue._messages.append(message)

    # -- starting over ----------------------------------------------------------------

    def close(self) -> None:
        self.journal.close()

    def clear(self) -> None:
        """Forget everything recorded (the emulator was reset)."""
        self.journal.close()
        for path in (self.journal.path, self.snapshot_path, self.queues_path):
            path.unlink(missing_ok=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.journal.open(0, 0)
        self._queues_seen = self._queues_fingerprint()
