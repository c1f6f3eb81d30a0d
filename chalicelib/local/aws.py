"""The embedded local default's AWS: moto running inside this process (DESIGN §8).

moto patches botocore for the whole process, so there is exactly one emulated AWS per
process; ``start_embedded_aws`` is therefore idempotent and every ``EmbeddedAWS`` shares
one lock and one "generation" (bumped by ``reset``) with the others. moto is imported
only when the emulator starts, so importing this module (for its types) loads none of
it, and a Lambda bundle, which holds ``chalicelib/`` but no moto, can still import it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from chalicelib import keys
from chalicelib.local.persistence import DYNAMODB_WRITES, DurableState
from chalicelib.queues import dead_letter_queue_name, sqs_attributes
from chalicelib.settings import Settings
from chalicelib.table import TTL_ATTRIBUTE, table_definition

# Without these botocore either finds no credentials/region or, for DynamoDB Streams,
# uses an account-based endpoint moto does not recognise (FIELD-NOTES, moto).
_BOTOCORE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


class EmbeddedAWSError(RuntimeError):
    """The emulated AWS cannot do what was asked, and real AWS must not do it instead."""


ResetHook = Callable[["EmbeddedAWS"], None]


@dataclass
class _Emulator:
    """Process-wide moto state: the running mock and what every reset must rebuild."""

    mock: Any
    # The variables set in os.environ at start, removed again at stop.
    environ_set: list[str]
    generation: int = 0
    running: bool = True
    instances: dict[tuple[str, ...], EmbeddedAWS] = field(default_factory=dict)
    # Where the emulated state is kept on disk, once one app asked for it.
    durable: DurableState | None = None


_emulator: _Emulator | None = None
# One lock for starting, stopping, resetting and delivering: with a single lock no
# thread can hold one while waiting for another (a handler may well call start).
_lock = threading.RLock()
# A failed DynamoDB transaction puts back the items it touched as they were before it
# (chalicelib.local.dynamodb): whatever another thread wrote meanwhile would be lost, a
# stream read in between would deliver records of writes that never happened, and the
# sorted partitions that serve queries are not safe to change from two threads.
# DynamoDB and its stream are therefore emulated one request at a time; real DynamoDB
# needs no such thing.
_dynamodb_lock = threading.Lock()
# SQS requests one at a time too, so the durable state saves the queues as one request
# left them.
_sqs_lock = threading.Lock()


def _resource_key(settings: Settings) -> tuple[str, ...]:
    """What identifies one set of emulated resources; other settings do not matter here."""
    return (
        settings.region,
        settings.account_id,
        settings.table_name,
        settings.lake_bucket,
        settings.athena_results_bucket,
        settings.athena_output,
        settings.athena_workgroup,
        settings.glue_database,
        settings.cascade_queue_name,
        settings.deletion_queue_name,
    )


def _emulate_one_request_at_a_time() -> None:
    """Answer DynamoDB and DynamoDB Streams requests under ``_dynamodb_lock`` (see
    there), and SQS requests under ``_sqs_lock``; done once per process, on moto's
    request handlers, which every in-process client goes through. Streams too: a stream
    read in the middle of a transaction would see records of writes the transaction's
    failure then takes back. After each request, still under its lock, the durable
    state records what it changed (``chalicelib.local.persistence``), so what is on disk
    follows the order the emulator applied them in; a stream read first puts on disk
    the writes whose sync was deferred to the end of their HTTP request."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.sqs.responses import SQSResponse

    def dynamodb_done(action: str, body: Any, status: int) -> None:
        if _emulator is not None and _emulator.durable is not None:
            _emulator.durable.dynamodb_request(action, body, status)

    def sqs_done(action: str, body: Any, status: int) -> None:
        if _emulator is not None and _emulator.durable is not None:
            _emulator.durable.sqs_request(action, status)

    def stream_read() -> None:
        # A write deferred to the end of its HTTP request is not on disk yet: its record
        # must not reach the lake before it is.
        if _emulator is not None and _emulator.durable is not None:
            _emulator.durable.journal.sync()

    for handler, lock, before, done in (
        (DynamoHandler, _dynamodb_lock, None, dynamodb_done),
        (DynamoDBStreamsHandler, _dynamodb_lock, stream_read, None),
        (SQSResponse, _sqs_lock, None, sqs_done),
    ):
        call_action = handler.call_action
        if getattr(call_action, "one_at_a_time", False):
            continue

        def one_at_a_time(
            self: Any,
            call_action: Any = call_action,
            lock: Any = lock,
            before: Any = before,
            done: Any = done,
        ) -> Any:
            with lock:
                if before is not None:
                    before()
                if done is None:
                    return call_action(self)
                # A write as it came, before moto's handling can change it.
                action = self._get_action()
                body = copy.deepcopy(self.body) if action in DYNAMODB_WRITES else None
                response = call_action(self)
                done(action, body, int(response[0]))
                return response

        one_at_a_time.one_at_a_time = True  # type: ignore[attr-defined]
        setattr(handler, "call_action", one_at_a_time)  # noqa: B010 (a method, replaced)


def start_embedded_aws(settings: Settings) -> EmbeddedAWS:
    """Start moto for this process (once) and create the project's resources (once).

    Calling it again with settings naming the same resources returns the same
    instance; settings naming other resources (another project) get their own
    instance on the same emulator.
    """
    global _emulator
    if not settings.is_local:
        raise EmbeddedAWSError(
            f"embedded AWS is for OCG_MODE=local, not {settings.mode!r}: it would shadow "
            "the real AWS account for the whole process"
        )
    with _lock:
        if _emulator is None:
            environ = {**_BOTOCORE_ENV, "AWS_DEFAULT_REGION": settings.region}
            environ_set = [name for name in environ if name not in os.environ]
            for name in environ_set:
                os.environ[name] = environ[name]
            # botocore would announce the emulator's placeholder keys as credentials found.
            logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
            from moto import mock_aws

            from chalicelib.local.dynamodb import install as bound_dynamodb_costs

            # Refuses, before anything is emulated, a moto it was not verified against.
            bound_dynamodb_costs()
            mock = mock_aws()
            mock.start()
            _emulate_one_request_at_a_time()
            _emulator = _Emulator(mock=mock, environ_set=environ_set)
        key = _resource_key(settings)
        instance = _emulator.instances.get(key)
        if instance is None:
            instance = EmbeddedAWS(settings, _emulator)
            instance.provision()
            _emulator.instances[key] = instance
        return instance


def stop_embedded_aws() -> None:
    """Stop moto and discard all its state, for test suites that also use ``mock_aws``.

    While the embedded AWS runs, every other ``mock_aws()`` in the process nests inside
    it and shares (and never resets) its state. After this call the instances handed
    out refuse to work rather than reach real AWS; a later ``start_embedded_aws``
    starts afresh.
    """
    global _emulator
    with _lock:
        if _emulator is None:
            return
        _emulator.running = False
        if _emulator.durable is not None:
            _emulator.durable.close()
        _emulator.mock.stop()
        for name in _emulator.environ_set:
            os.environ.pop(name, None)
        _emulator = None


class EmbeddedAWS:
    """One project's resources on the process's emulator, and clients to reach them."""

    def __init__(self, settings: Settings, emulator: _Emulator) -> None:
        self.settings = settings
        self._emulator = emulator
        self.session = boto3.session.Session(region_name=settings.region)
        self.client_config = Config(account_id_endpoint_mode="disabled")
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._reset_hooks: list[ResetHook] = []

    @property
    def lock(self) -> threading.RLock:
        """Held while moto state is wiped; event delivery holds it so it never sees half a reset."""
        return _lock

    @property
    def running(self) -> bool:
        """False once :func:`stop_embedded_aws` has ended the emulation."""
        return self._emulator.running

    @property
    def generation(self) -> int:
        """Bumped by every reset, so consumers know their stream positions are void."""
        return self._emulator.generation

    def client(self, service_name: str) -> Any:
        """A shared boto3 client (they are thread-safe; creating one costs ~20 ms)."""
        with self._clients_lock:
            client = self._clients.get(service_name)
            if client is None:
                client = self.session.client(service_name, config=self.client_config)
                client.meta.events.register("before-send", self._refuse_real_aws)

                self._clients[service_name] = client
            return client

    def _refuse_real_aws(self, request: Any, **kwargs: Any) -> None:
        """Clients handed out stay alive after a stop; they must not reach real AWS."""
        if not self.running:
            raise EmbeddedAWSError(
                f"the embedded AWS is stopped; refusing to send {request.method} "
                f"{request.url} to real AWS"
            )

    def keep_state(self) -> int:
        """Keep the emulated state in the local directory from now on, after putting back
        what an earlier process kept there; how many journaled writes were applied again.

        One directory per process: the first app to ask keeps the state."""
        with self.lock:
            if self._emulator.durable is not None:
                return 0
            durable = DurableState(
                self.settings.local_dir, self.settings.account_id, self.settings.region
            )
            # At start-up, before any request or delivery: nothing runs beside it.
            applied = durable.restore(self.client("dynamodb"))
            self._emulator.durable = durable
            return applied

    def task_ids(self) -> list[str]:
        """The ids of the task items in the table, read from the emulator's memory: a
        Scan of a large table would cost seconds of a start."""
        from moto.dynamodb.models import dynamodb_backends

        prefix = f"{keys.TASK_PREFIX}#"
        table = dynamodb_backends[self.settings.account_id][self.settings.region].get_table(
            self.settings.table_name
        )
        with _dynamodb_lock:
            partitions = [str(key.value) for key in table.items]
        return [key[len(prefix) :] for key in partitions if key.startswith(prefix)]

    def acknowledging(self) -> contextlib.AbstractContextManager[None]:
        """The block's DynamoDB writes reach the disk once, when it ends, instead of one
        at a time: an HTTP request's writes are durable when it answers (one sync for
        the hundred creates of a bulk load's request)."""
        durable = self._emulator.durable
        return contextlib.nullcontext() if durable is None else durable.journal.deferred()

    @property
    def journal_position(self) -> int | None:
        """The last journaled write, when the state is kept."""
        durable = self._emulator.durable
        return None if durable is None else durable.journal.position

    def snapshot(self) -> None:
        """Fold the journal into a snapshot now; the caller has seen every stream record
        delivered (a bulk set-up, a benchmark)."""
        durable = self._emulator.durable
        if durable is not None:
            with _dynamodb_lock:
                durable.snapshot()

    def snapshot_if_due(self, delivered_up_to: int) -> None:
        """Fold the journal into a snapshot when it is long enough and no write came
        after ``delivered_up_to``, the journal position up to which the caller delivered
        every stream record (a snapshot must hold no write whose record is undelivered:
        a restart does not make its record again)."""
        durable = self._emulator.durable
        if durable is None or not durable.snapshot_due():
            return
        with _dynamodb_lock:
            if durable.journal.position == delivered_up_to:
                durable.snapshot()

    def add_reset_hook(self, hook: ResetHook) -> Callable[[], None]:
        """Run ``hook(self)`` after each reset, for resources created by other modules
        (Glue tables, the local lake directory) that a reset wipes too.

        Returns the function that unregisters it.
        """
        self._reset_hooks.append(hook)
        return lambda: self._reset_hooks.remove(hook)

    def reset(self) -> None:
        """Wipe every emulated resource of the process and re-create the projects' own.

        For test isolation: afterwards the table, buckets and queues exist and are empty.
        """
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            if self._emulator.durable is not None:
                self._emulator.durable.clear()
            self._emulator.generation += 1
            instances = list(self._emulator.instances.values())
            for instance in instances:
                instance.provision()
            for instance in instances:
                for hook in instance._reset_hooks:
                    hook(instance)

    @property
    def table_stream_arn(self) -> str:
        """The real stream ARN: its label is a timestamp, unlike the one in settings."""
        table = self.client("dynamodb").describe_table(TableName=self.settings.table_name)
        return str(table["Table"]["LatestStreamArn"])

    def release_shard_iterators(self, iterators: list[str]) -> None:
        """Drop shard iterators moto would otherwise keep forever.

        moto stores every iterator that ``get_shard_iterator`` and ``get_records`` hand
        out (~1 kB each) and never expires them, so polling a stream leaks memory.
        """
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        backend = dynamodbstreams_backends[self.settings.account_id][self.settings.region]
        for iterator in iterators:
            backend.shard_iterators.pop(iterator, None)

    def provision(self) -> None:
        """Create the project's resources as the deployed stack would have them."""
        s = self.settings
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**table_definition(s.table_name))
        dynamodb.update_time_to_live(
            TableName=s.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        s3 = self.client("s3")
        for bucket in (s.lake_bucket, s.athena_results_bucket):
            s3.create_bucket(**_bucket_args(bucket, s.region))
        self._create_queue(s.cascade_queue_name, s.cascade_queue_url, s.cascade_queue_arn)
        self._create_queue(s.deletion_queue_name, s.deletion_queue_url, s.deletion_queue_arn)
        self.client("glue").create_database(DatabaseInput={"Name": s.glue_database})
        self.client("athena").create_work_group(
            Name=s.athena_workgroup,
            Configuration={"ResultConfiguration": {"OutputLocation": s.athena_output}},
        )

    def _create_queue(self, name: str, expected_url: str, expected_arn: str) -> None:
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=dead_letter_queue_name(name))["QueueUrl"]
        attributes = sqs_attributes(_queue_arn(sqs, dlq_url))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = _queue_arn(sqs, url)
        if (url, arn) != (expected_url, expected_arn):
            raise EmbeddedAWSError(
                f"queue {name!r}: moto assigned URL {url} and ARN {arn}, but the settings "
                f"say {expected_url} and {expected_arn}; handlers registered with the "
                "settings' ARN would never receive its messages"
            )


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _bucket_args(bucket: str, region: str) -> dict[str, Any]:
    """us-east-1 is the one region that rejects an explicit location constraint."""
    if region == "us-east-1":
        return {"Bucket": bucket}
    return {"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": region}}
