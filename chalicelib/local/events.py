"""Local event delivery: what Lambda's event-source mappings and EventBridge do on AWS.

The handlers registered in ``app.py`` are called exactly as Lambda would call them: the
function in ``app.handler_map`` with a Lambda-shaped event dict and a Lambda context, so
Chalice's ``DynamoDBEvent``/``SQSEvent``/``CloudWatchEvent`` wrappers and any middleware
run unchanged. Delivery semantics follow Lambda with ``ReportBatchItemFailures``:

* DynamoDB stream: records in order per shard; a failed batch is retried (with
  backoff) from the lowest failed sequence number, or whole if the handler raised.
  Like an event-source mapping with ``MaximumRetryAttempts`` and an on-failure
  destination, a record that still fails after ``stream_max_retries`` retries is set
  aside — logged with its full content and kept in
  :attr:`LocalEventRuntime.failed_records` — so one poison record cannot block every
  later change. Unlike Lambda's ``LATEST``, reading starts at the stream's beginning,
  so writes made before :meth:`LocalEventRuntime.start` are not lost.
* SQS: successful messages are deleted, failed ones become visible again after
  ``sqs_retry_delay`` seconds, and SQS's redrive policy moves a message to its
  dead-letter queue after the maximum number of receives.
* EventBridge: :meth:`LocalEventRuntime.publish` queues an event for every
  ``on_cw_event`` handler whose pattern matches; like Lambda's asynchronous invocation,
  a failing handler is retried twice, then the event is logged and kept in
  :attr:`LocalEventRuntime.failed_events`.

Everything is delivered by one pump, under one lock, either on the background thread
or in the caller of :meth:`LocalEventRuntime.wait_until_idle`, so handlers never run
concurrently.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, CloudWatchEventConfig, DynamoDBEventConfig, SQSEventConfig
from chalice.local import LambdaContext

from chalicelib.local.aws import EmbeddedAWS, EmbeddedAWSError
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

# Chalice's defaults for a function's memory and timeout, which the context reports.
LAMBDA_MEMORY_MB = 128
LAMBDA_TIMEOUT_MS = 60_000
# Lambda retries a failed asynchronous invocation (EventBridge) twice.
EVENT_RETRIES = 2
# Retries of a failing stream record before it goes to the failure destination.
STREAM_MAX_RETRIES = 5
# The most records or messages one get_records / receive_message call returns.
STREAM_READ_MAX = 1000
SQS_RECEIVE_MAX = 10
# How long wait_until_idle waits by default: a message failing until it is dead-lettered
# alone spends five SQS retry delays (5 s) in the queue, and a slow machine takes longer.
IDLE_TIMEOUT_SECONDS = 30.0

_TABLE_IN_STREAM_ARN = re.compile(r":table/([^/]+)/stream/")
_QUEUE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
_EVENT_KEYS = ("version", "id", "detail-type", "source", "account", "time", "region")


class EventPatternError(ValueError):
    """An ``on_cw_event`` pattern uses EventBridge syntax the local matcher lacks."""


@dataclass
class _Retry:
    """Backoff state of something that failed and must be delivered again."""

    attempts: int = 0
    due: float = 0.0
    error: str = ""

    def failed(self, error: BaseException, first: float, limit: float) -> None:
        self.attempts += 1
        self.due = time.monotonic() + min(first * 2 ** (self.attempts - 1), limit)
        self.error = f"{type(error).__name__}: {error}"

    @property
    def waiting(self) -> bool:
        return self.attempts > 0 and time.monotonic() < self.due

    def __str__(self) -> str:
        return f"attempt {self.attempts} failed ({self.error}); retrying"


@dataclass
class _StreamConsumer:
    name: str
    handler: Handler
    table_name: str
    batch_size: int
    # Per shard, the sequence number of the last record delivered successfully.
    checkpoints: dict[str, str] = field(default_factory=dict)
    retry: _Retry = field(default_factory=_Retry)
    # While a batch that raised is narrowed down to the record that fails: its last
    # sequence number. Records up to it are delivered one at a time.
    narrow_until: str | None = None


@dataclass
class _QueueConsumer:
    name: str
    handler: Handler
    queue_arn: str
    queue_url: str
    batch_size: int


@dataclass
class _EventTarget:
    name: str
    handler: Handler
    pattern: dict[str, Any]


@dataclass
class _EventDelivery:
    event: dict[str, Any]
    target: _EventTarget
    # The reset generation it was published in: a reset voids what came before.
    generation: int
    retry: _Retry = field(default_factory=_Retry)


@dataclass
class _PassResult:
    delivered: bool = False
    pending: list[str] = field(default_factory=list)


class LocalEventRuntime:
    """Feeds the embedded AWS's stream, queues and published events to ``app``'s handlers."""

    def __init__(
        self,
        app: Chalice,
        aws: EmbeddedAWS,
        settings: Settings,
        *,
        poll_interval: float = 0.1,
        retry_backoff: tuple[float, float] = (0.2, 2.0),
        sqs_retry_delay: int = 1,
        stream_max_retries: int = STREAM_MAX_RETRIES,
    ) -> None:
        self._app = app
        self._aws = aws
        self._settings = settings
        self.poll_interval = poll_interval
        self._retry_backoff = retry_backoff
        self._sqs_retry_delay = sqs_retry_delay
        self._stream_max_retries = stream_max_retries
        self._streams = [
            self._stream_consumer(source)
            for source in app.event_sources
            if isinstance(source, DynamoDBEventConfig)
        ]
        self._queues = [
            self._queue_consumer(source)
            for source in app.event_sources
            if isinstance(source, SQSEventConfig)
        ]
        self._event_targets = [
            _EventTarget(source.name, self._handler(source.name), _checked_pattern(source))
            for source in app.event_sources
            if isinstance(source, CloudWatchEventConfig)
        ]
        self._events: deque[_EventDelivery] = deque()
        self._events_lock = threading.Lock()
        self.failed_events: list[dict[str, Any]] = []
        self.failed_records: list[dict[str, Any]] = []
        self._stream_cache: dict[str, tuple[str, list[str]]] = {}
        self._generation = aws.generation
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public API -----------------------------------------------------------------

    def start(self) -> None:
        """Deliver in the background from now on (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ocg-local-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread after the batch it is delivering, if any."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def wait_until_idle(self, timeout: float = IDLE_TIMEOUT_SECONDS) -> None:
        """Deliver until nothing is pending: every record, message and event, and all
        they caused in turn (a REMOVE that queues a cascade whose deletes stream again).

        Delivery happens in this thread too, so it works without :meth:`start` and gives
        tests a deterministic point where every side effect has happened. Waits through
        retries; raises ``TimeoutError`` naming what is still pending.
        """
        deadline = time.monotonic() + timeout
        idle_once = False
        while True:
            with self._delivering():
                result = self._pass(report=True)
            if not result.delivered and not result.pending:
                if idle_once:
                    return
                # SQS counts are read one after another: a message whose retry delay
                # ends between two of them is in none. The pass after sees it.
                idle_once = True
                continue
            idle_once = False
            if time.monotonic() >= deadline:
                pending = result.pending or ["deliveries kept arriving"]
                raise TimeoutError(
                    f"local events not idle after {timeout} s: " + "; ".join(pending)
                )
            if not result.delivered:
                time.sleep(self.poll_interval)

    def publish(self, event: dict[str, Any]) -> list[str]:
        """Queue an EventBridge event for every ``on_cw_event`` handler it matches.

        Returns the names of those handlers. The event must be complete, as EventBridge
        would deliver it: Chalice's ``CloudWatchEvent`` reads every envelope key.
        """
        missing = [key for key in (*_EVENT_KEYS, "resources", "detail") if key not in event]
        if missing:
            raise ValueError(f"event lacks {', '.join(missing)}: {event!r}")
        targets = [t for t in self._event_targets if _matches(t.pattern, event)]
        with self._events_lock:
            self._events.extend(
                _EventDelivery(event, target, self._aws.generation) for target in targets
            )
        return [target.name for target in targets]

    # -- set-up ---------------------------------------------------------------------

    def _handler(self, name: str) -> Handler:
        handler: Handler = self._app.handler_map[name]
        return handler

    def _stream_consumer(self, source: DynamoDBEventConfig) -> _StreamConsumer:
        match = _TABLE_IN_STREAM_ARN.search(source.stream_arn)
        tables = self._aws.client("dynamodb").list_tables()["TableNames"]
        if match is None or match.group(1) not in tables:
            raise ValueError(
                f"handler {source.name!r} listens to stream {source.stream_arn}, but the "
                f"embedded AWS has streams only for the tables {tables}"
            )
        return _StreamConsumer(
            source.name, self._handler(source.name), match.group(1), source.batch_size
        )

    def _queue_consumer(self, source: SQSEventConfig) -> _QueueConsumer:
        queue_name = source.queue or str(source.queue_arn).rsplit(":", 1)[-1]
        sqs = self._aws.client("sqs")
        try:
            queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist as error:
            raise ValueError(
                f"handler {source.name!r} listens to queue {queue_name!r}, which the "
                "embedded AWS does not have"
            ) from error
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return _QueueConsumer(
            source.name,
            self._handler(source.name),
            queue_arn["Attributes"]["QueueArn"],
            queue_url,
            source.batch_size,
        )

    # -- delivery -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._aws.running:
                logger.info("embedded AWS stopped; local event delivery ends")
                return
            try:
                with self._delivering():
                    delivered = self._pass(report=False).delivered
            except Exception:
                # The thread must survive anything (a table deleted and re-created under
                # it, say): the failure is logged and the next pass looks afresh.
                logger.exception("local event delivery failed; retrying")
                self._stream_cache.clear()
                delivered = False
            if not delivered:
                self._stop.wait(self.poll_interval)

    @contextmanager
    def _delivering(self) -> Iterator[None]:
        # The process-wide emulator lock: no delivery overlaps another (of any runtime)
        # or a reset.
        with self._aws.lock:
            if not self._aws.running:
                raise EmbeddedAWSError("the embedded AWS was stopped: no events to deliver")
            if self._aws.generation != self._generation:
                self._forget_world()
            yield

    def _forget_world(self) -> None:
        """After a reset the old stream and events belong to a wiped world."""
        self._generation = self._aws.generation
        self._stream_cache.clear()
        for consumer in self._streams:
            consumer.checkpoints.clear()
            consumer.retry = _Retry()
        with self._events_lock:
            current = [d for d in self._events if d.generation == self._generation]
            self._events.clear()
            self._events.extend(current)

    def _pass(self, *, report: bool) -> _PassResult:
        written_before = self._aws.journal_position
        result = _PassResult()
        for stream in self._streams:
            self._pump_stream(stream, result)
        for queue in self._queues:
            self._pump_queue(queue, result, report=report)
        self._pump_events(result)
        if written_before is not None and not result.delivered and not result.pending:
            # Every write up to written_before has had its stream record delivered.
            self._aws.snapshot_if_due(written_before)
        return result

    def _context(self, name: str) -> LambdaContext:
        s = self._settings
        function_name = f"{self._app.app_name}-{s.stage}-{name}"
        context = LambdaContext(function_name, LAMBDA_MEMORY_MB, LAMBDA_TIMEOUT_MS)
        context.invoked_function_arn = (
            f"arn:aws:lambda:{s.region}:{s.account_id}:function:{function_name}"
        )
        return context

    def _invoke(self, name: str, handler: Handler, event: dict[str, Any]) -> Any:
        return handler(event, self._context(name))

    # DynamoDB stream

    def _stream(self, table_name: str) -> tuple[str, list[str]]:
        """The table's real stream ARN and shard ids (fixed until a reset)."""
        cached = self._stream_cache.get(table_name)
        if cached is None:
            table = self._aws.client("dynamodb").describe_table(TableName=table_name)
            stream_arn = table["Table"]["LatestStreamArn"]
            description = self._aws.client("dynamodbstreams").describe_stream(StreamArn=stream_arn)
            shards = [shard["ShardId"] for shard in description["StreamDescription"]["Shards"]]
            cached = self._stream_cache[table_name] = (stream_arn, shards)
        return cached

    def _read_shard(
        self, stream_arn: str, shard_id: str, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        streams = self._aws.client("dynamodbstreams")
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after is not None
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, **position)
        response = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=limit)
        self._aws.release_shard_iterators(
            [iterator["ShardIterator"], response.get("NextShardIterator", "")]
        )
        records: list[dict[str, Any]] = response["Records"]
        return records

    def _pump_stream(self, consumer: _StreamConsumer, result: _PassResult) -> None:
        if not consumer.retry.waiting:
            stream_arn, shards = self._stream(consumer.table_name)
            for shard_id in shards:
                after = consumer.checkpoints.get(shard_id)
                limit = 1 if consumer.narrow_until else min(consumer.batch_size, STREAM_READ_MAX)
                records = self._read_shard(stream_arn, shard_id, after, limit)
                if not records:
                    continue
                result.delivered = True
                event = {"Records": [self._stream_record(r, stream_arn) for r in records]}
                if not self._deliver_records(consumer, shard_id, event):
                    break
        if consumer.retry.attempts:
            result.pending.append(f"stream handler {consumer.name!r}: {consumer.retry}")

    def _deliver_records(
        self, consumer: _StreamConsumer, shard_id: str, event: dict[str, Any]
    ) -> bool:
        """Deliver one batch and move the checkpoint past what succeeded."""
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        try:
            failures = _batch_failures(
                self._invoke(consumer.name, consumer.handler, event), sequence_numbers
            )
        except Exception as error:
            logger.exception(
                "stream handler %r failed on records %s..%s; the batch will be retried",
                consumer.name,
                sequence_numbers[0],
                sequence_numbers[-1],
            )
            self._stream_failed(consumer, shard_id, event["Records"], error)
            return False
        if not failures:
            consumer.checkpoints[shard_id] = sequence_numbers[-1]
            consumer.retry = _Retry()
            if consumer.narrow_until and int(sequence_numbers[-1]) >= int(consumer.narrow_until):
                consumer.narrow_until = None
            return True
        first_failed = min(failures, key=int)
        position = sequence_numbers.index(first_failed)
        if position:
            consumer.checkpoints[shard_id] = sequence_numbers[position - 1]
            consumer.retry = _Retry()
        failure = RuntimeError(f"batch item failures {sorted(failures, key=int)}")
        logger.error(
            "stream handler %r reported %s; retrying from %s", consumer.name, failure, first_failed
        )
        self._stream_failed(consumer, shard_id, [event["Records"][position]], failure)
        return False

    def _stream_failed(
        self,
        consumer: _StreamConsumer,
        shard_id: str,
        failing: list[dict[str, Any]],
        error: BaseException,
    ) -> None:
        """Retry ``failing`` later, or, once its retries are spent, set its record aside.

        ``failing`` is the one record that failed, or a whole batch that raised. Which of
        a batch's records fails is not known, so (like Lambda's bisect-on-error) the batch
        is then narrowed to one record at a time before anything is set aside.
        """
        if consumer.retry.attempts < self._stream_max_retries:
            consumer.retry.failed(error, *self._retry_backoff)
            return
        if len(failing) > 1:
            consumer.narrow_until = failing[-1]["dynamodb"]["SequenceNumber"]
            consumer.retry = _Retry()
            return
        (record,) = failing
        logger.error(
            "stream handler %r: record %s still fails after %d retries (%s); "
            "it goes to the failure destination and the stream moves on: %s",
            consumer.name,
            record["dynamodb"]["SequenceNumber"],
            consumer.retry.attempts,
            error,
            record,
        )
        self.failed_records.append(record)
        consumer.checkpoints[shard_id] = record["dynamodb"]["SequenceNumber"]
        consumer.retry = _Retry()

    def _stream_record(self, record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
        """The record as Lambda delivers it: with its source ARN and an epoch time (botocore
        parses the time into a datetime, which Chalice's ``DynamoDBRecord`` cannot read)."""
        dynamodb = dict(record["dynamodb"])
        created = dynamodb["ApproximateCreationDateTime"]
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            **record,
            "eventSource": "aws:dynamodb",
            "awsRegion": self._settings.region,
            "eventSourceARN": stream_arn,
            "dynamodb": dynamodb,
        }

    # SQS

    def _pump_queue(self, consumer: _QueueConsumer, result: _PassResult, *, report: bool) -> None:
        sqs = self._aws.client("sqs")
        messages: list[dict[str, Any]] = []
        while len(messages) < consumer.batch_size:
            received = sqs.receive_message(
                QueueUrl=consumer.queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_MAX, consumer.batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages.extend(received)
        if messages:
            result.delivered = True
            self._deliver_messages(consumer, messages)
        if report:
            counts = sqs.get_queue_attributes(
                QueueUrl=consumer.queue_url, AttributeNames=list(_QUEUE_COUNTS)
            )["Attributes"]
            waiting, in_flight, delayed = (int(counts[name]) for name in _QUEUE_COUNTS)
            if waiting or in_flight or delayed:
                result.pending.append(
                    f"queue of handler {consumer.name!r}: {waiting} waiting, "
                    f"{in_flight} in flight or awaiting retry, {delayed} delayed"
                )

    def _deliver_messages(self, consumer: _QueueConsumer, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._sqs_record(m, consumer.queue_arn) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        try:
            failed = _batch_failures(self._invoke(consumer.name, consumer.handler, event), ids)
        except Exception:
            logger.exception(
                "queue handler %r failed on messages %s; all will be redelivered",
                consumer.name,
                ids,
            )
            failed = set(ids)
        else:
            if failed:
                logger.error(
                    "queue handler %r reported failures for messages %s; they will be redelivered",
                    consumer.name,
                    sorted(failed),
                )
        sqs = self._aws.client("sqs")
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        for chunk in _chunks(done, SQS_RECEIVE_MAX):
            sqs.delete_message_batch(
                QueueUrl=consumer.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        for chunk in _chunks(retry, SQS_RECEIVE_MAX):
            sqs.change_message_visibility_batch(
                QueueUrl=consumer.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self._sqs_retry_delay,
                    }
                    for i, m in enumerate(chunk)
                ],
            )

    def _sqs_record(self, message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: _lambda_message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self._settings.region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    # EventBridge

    def _pump_events(self, result: _PassResult) -> None:
        with self._events_lock:
            deliveries = list(self._events)
            self._events.clear()
        for delivery in deliveries:
            finished = False
            if not delivery.retry.waiting:
                result.delivered = True
                finished = self._deliver_event(delivery)
            if not finished:
                self._requeue(delivery)
                result.pending.append(
                    f"event {delivery.event['id']} for handler {delivery.target.name!r}: "
                    f"{delivery.retry}"
                )

    def _deliver_event(self, delivery: _EventDelivery) -> bool:
        """Invoke the handler; False when the event must be delivered again later."""
        try:
            self._invoke(delivery.target.name, delivery.target.handler, delivery.event)
        except Exception as error:
            if delivery.retry.attempts < EVENT_RETRIES:
                logger.exception(
                    "event handler %r failed on event %s; retrying",
                    delivery.target.name,
                    delivery.event["id"],
                )
                delivery.retry.failed(error, *self._retry_backoff)
                return False
            logger.exception(
                "event handler %r failed on event %s %d times; giving up",
                delivery.target.name,
                delivery.event["id"],
                EVENT_RETRIES + 1,
            )
            self.failed_events.append(delivery.event)
        return True

    def _requeue(self, delivery: _EventDelivery) -> None:
        with self._events_lock:
            self._events.append(delivery)


def _batch_failures(response: Any, identifiers: list[str]) -> set[str]:
    """The identifiers a partial batch response reports failed.

    As Lambda does, a malformed report (an identifier missing, empty or not in the
    batch) fails the whole batch rather than guessing.
    """
    if not isinstance(response, Mapping) or "batchItemFailures" not in response:
        return set()
    reported = response["batchItemFailures"] or []
    failed = {
        item.get("itemIdentifier") if isinstance(item, Mapping) else None for item in reported
    }
    if not failed <= set(identifiers):
        logger.error("malformed batchItemFailures %r: the whole batch failed", reported)
        return set(identifiers)
    return {str(identifier) for identifier in failed}


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS's API spells message attributes differently from the Lambda event."""
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _checked_pattern(source: CloudWatchEventConfig) -> dict[str, Any]:
    """Refuse, at start-up, patterns the local matcher would silently get wrong."""

    def check(pattern: Any, path: str) -> None:
        if isinstance(pattern, Mapping):
            for key, value in pattern.items():
                check(value, f"{path}.{key}" if path else str(key))
        elif not isinstance(pattern, list) or any(
            isinstance(value, Mapping | list) for value in pattern
        ):
            raise EventPatternError(
                f"handler {source.name!r}: event pattern at {path!r} is {pattern!r}; the "
                "local runtime matches only lists of exact values and nested objects"
            )

    check(source.event_pattern, "")
    return source.event_pattern


def _matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge matching for exact values: every pattern key must match, a list
    matches a value equal to one of its items (or, for an array value, any element)."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not _matches(expected, actual):
                return False
        elif isinstance(actual, list):
            if not any(value in expected for value in actual):
                return False
        elif actual not in expected:
            return False
    return True
