"""The embedded local default's AWS: moto running inside this process (DESIGN §8).

moto patches botocore for the whole process, so there is exactly one emulated AWS per
process; ``start_embedded_aws`` is therefore idempotent and every ``EmbeddedAWS`` shares
one lock and one "generation" (bumped by ``reset``) with the others. moto is imported
only when the emulator starts, so importing this module (for its types) loads none of
it, and a Lambda bundle, which holds ``chalicelib/`` but no moto, can still import it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

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


_emulator: _Emulator | None = None
# One lock for starting, stopping, resetting and delivering: with a single lock no
# thread can hold one while waiting for another (a handler may well call start).
_lock = threading.RLock()
# moto runs a DynamoDB transaction on a deep copy of the table and, if the transaction
# fails, puts that copy back: whatever another thread wrote meanwhile (a cascade, a task
# update) would be lost, and a stream read in between would deliver records of writes
# that never happened. DynamoDB and its stream are therefore emulated one request at a
# time; real DynamoDB needs no such thing.
_dynamodb_lock = threading.Lock()


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


def _emulate_dynamodb_one_request_at_a_time() -> None:
    """Answer DynamoDB and DynamoDB Streams requests under ``_dynamodb_lock`` (see
    there); done once per process, on moto's request handlers, which every in-process
    client goes through. Streams too: a stream read in the middle of a transaction
    would see records of writes the transaction's failure then takes back."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        call_action = handler.call_action
        if getattr(call_action, "one_at_a_time", False):
            continue

        def one_at_a_time(self: Any, call_action: Any = call_action) -> Any:
            with _dynamodb_lock:
                return call_action(self)

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

            mock = mock_aws()
            mock.start()
            _emulate_dynamodb_one_request_at_a_time()
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
