"""Local event delivery: a tiny Chalice app's handlers fed by the embedded AWS."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import Chalice, CloudWatchEvent, DynamoDBEvent, SQSEvent

from chalicelib.local import (
    EmbeddedAWS,
    EmbeddedAWSError,
    EventPatternError,
    LocalEventRuntime,
    start_local_runtime,
)
from chalicelib.queues import dead_letter_queue_name
from chalicelib.settings import Settings


def runtime_for(
    app: Chalice, aws: EmbeddedAWS, settings: Settings, *, stream_max_retries: int = 1000
) -> LocalEventRuntime:
    """A runtime with test-speed polling and retries (SQS retries at once)."""
    return LocalEventRuntime(
        app,
        aws,
        settings,
        poll_interval=0.01,
        retry_backoff=(0.01, 0.05),
        sqs_retry_delay=0,
        stream_max_retries=stream_max_retries,
    )


@pytest.fixture
def app() -> Chalice:
    return Chalice(app_name="t")


@pytest.fixture
def runtimes() -> Iterator[list[LocalEventRuntime]]:
    """Runtimes started by a test, stopped whatever the outcome."""
    started: list[LocalEventRuntime] = []
    yield started
    for runtime in started:
        runtime.stop()


def key(pk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": pk}}


def put(aws: EmbeddedAWS, settings: Settings, pk: str, **values: str) -> None:
    item = {**key(pk), **{name: {"S": value} for name, value in values.items()}}
    aws.client("dynamodb").put_item(TableName=settings.table_name, Item=item)


def delete(aws: EmbeddedAWS, settings: Settings, pk: str) -> None:
    aws.client("dynamodb").delete_item(TableName=settings.table_name, Key=key(pk))


def queue_depth(aws: EmbeddedAWS, url: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


# DynamoDB stream


def test_stream_records_reach_the_handler_through_chalice(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    seen: list[tuple[str, Any, Any, Any, str, str]] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> None:
        for r in event:
            seen.append(
                (r.event_name, r.keys, r.new_image, r.old_image, r.table_name, r.aws_region)
            )
            assert r.event_source_arn == aws.table_stream_arn
            assert r.timestamp.year >= 2024
            assert r.stream_view_type == "NEW_AND_OLD_IMAGES"

    put(aws, settings, "a", name="one")
    aws.client("dynamodb").update_item(
        TableName=settings.table_name,
        Key=key("a"),
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "two"}},
    )
    delete(aws, settings, "a")
    runtime_for(app, aws, settings).wait_until_idle()

    one, two = {**key("a"), "name": {"S": "one"}}, {**key("a"), "name": {"S": "two"}}
    table, region = settings.table_name, settings.region
    assert seen == [
        ("INSERT", key("a"), one, None, table, region),
        ("MODIFY", key("a"), two, one, table, region),
        ("REMOVE", key("a"), None, two, table, region),
    ]


def test_a_raising_stream_handler_is_retried_without_skipping(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    deliveries: list[list[str]] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn, batch_size=2)
    def on_change(event: DynamoDBEvent) -> None:
        deliveries.append([r.keys["PK"]["S"] for r in event])
        if len(deliveries) in (2, 3):
            raise RuntimeError("lake unavailable")

    for pk in "abcde":
        put(aws, settings, pk)
    runtime_for(app, aws, settings).wait_until_idle()

    assert deliveries == [["a", "b"], ["c", "d"], ["c", "d"], ["c", "d"], ["e"]]


def test_partial_batch_failure_retries_from_the_failed_record(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    deliveries: list[list[str]] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> dict[str, Any]:
        records = list(event)
        deliveries.append([r.keys["PK"]["S"] for r in records])
        failed = [r.sequence_number for r in records if r.keys["PK"]["S"] in "ce"]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed[:1]]}

    for pk in "abcde":
        put(aws, settings, pk)
    runtime = runtime_for(app, aws, settings)
    with pytest.raises(TimeoutError, match="on_change"):
        runtime.wait_until_idle(timeout=0.3)

    # Retried from "c" (the lowest failure) on, never from "a" again, never past "c".
    assert deliveries[0] == ["a", "b", "c", "d", "e"]
    assert len(deliveries) > 2
    assert all(batch == ["c", "d", "e"] for batch in deliveries[1:])


def test_a_record_failing_past_its_retries_is_set_aside_and_the_stream_moves_on(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    deliveries: list[list[str]] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> dict[str, Any]:
        records = list(event)
        deliveries.append([r.keys["PK"]["S"] for r in records])
        failed = [r.sequence_number for r in records if r.keys["PK"]["S"] == "poison"]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}

    for pk in ("a", "poison", "b"):
        put(aws, settings, pk)
    runtime = runtime_for(app, aws, settings, stream_max_retries=3)
    runtime.wait_until_idle()

    assert deliveries == [["a", "poison", "b"]] + [["poison", "b"]] * 3 + [["b"]]
    (set_aside,) = runtime.failed_records
    assert set_aside["dynamodb"]["Keys"] == key("poison")
    assert set_aside["eventSourceARN"] == aws.table_stream_arn


def test_a_raising_batch_is_narrowed_to_the_failing_record_before_it_is_set_aside(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    deliveries: list[list[str]] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> None:
        batch = [r.keys["PK"]["S"] for r in event]
        deliveries.append(batch)
        if "poison" in batch:
            raise ValueError("cannot process")

    for pk in ("a", "poison", "b"):
        put(aws, settings, pk)
    runtime = runtime_for(app, aws, settings, stream_max_retries=2)
    runtime.wait_until_idle()

    whole, one_by_one = [["a", "poison", "b"]] * 3, [["a"], ["poison"], ["poison"], ["poison"]]
    assert deliveries == [*whole, *one_by_one, ["b"]]
    assert [r["dynamodb"]["Keys"] for r in runtime.failed_records] == [key("poison")]


def test_malformed_batch_failures_fail_the_whole_batch(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    deliveries: list[list[str]] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> dict[str, Any]:
        deliveries.append([r.keys["PK"]["S"] for r in event])
        if len(deliveries) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}
        return {"batchItemFailures": []}

    put(aws, settings, "a")
    put(aws, settings, "b")
    runtime_for(app, aws, settings).wait_until_idle()

    assert deliveries == [["a", "b"], ["a", "b"]]


def test_timeout_names_what_is_pending(app: Chalice, aws: EmbeddedAWS, settings: Settings) -> None:
    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> None:
        raise ValueError("broken handler")

    put(aws, settings, "a")
    with pytest.raises(TimeoutError, match=r"'on_change'.*ValueError: broken handler"):
        runtime_for(app, aws, settings).wait_until_idle(timeout=0.2)


# SQS


def test_sqs_messages_reach_the_handler_through_chalice(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    seen: list[dict[str, Any]] = []

    @app.on_sqs_message(queue_arn=settings.cascade_queue_arn, batch_size=10)
    def on_cascade(event: SQSEvent) -> None:
        for message in event:
            seen.append(message.to_dict())
            assert message.receipt_handle

    aws.client("sqs").send_message(
        QueueUrl=settings.cascade_queue_url,
        MessageBody=json.dumps({"entityType": "user", "entityId": "u1"}),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "cascade"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    runtime_for(app, aws, settings).wait_until_idle()

    [record] = seen
    assert json.loads(record["body"]) == {"entityType": "user", "entityId": "u1"}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == settings.cascade_queue_arn
    assert record["awsRegion"] == settings.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "cascade",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "raw": {
            "binaryValue": "AAE=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert {"messageId", "receiptHandle", "md5OfBody", "md5OfMessageAttributes"} <= set(record)
    assert queue_depth(aws, settings.cascade_queue_url) == 0


def test_sqs_partial_batch_failure_redelivers_only_the_failed_message(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    deliveries: list[list[str]] = []

    @app.on_sqs_message(queue_arn=settings.cascade_queue_arn, batch_size=10)
    def on_cascade(event: SQSEvent) -> dict[str, Any]:
        records = list(event)
        deliveries.append(sorted(r.body for r in records))
        failed = [r.to_dict()["messageId"] for r in records if r.body == "b"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed[: 2 - len(deliveries)]]}

    sqs = aws.client("sqs")
    sqs.send_message_batch(
        QueueUrl=settings.cascade_queue_url,
        Entries=[{"Id": body, "MessageBody": body} for body in "abc"],
    )
    runtime_for(app, aws, settings).wait_until_idle()

    assert deliveries == [["a", "b", "c"], ["b"]]
    assert queue_depth(aws, settings.cascade_queue_url) == 0


def test_a_message_failing_five_times_lands_in_the_dead_letter_queue(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    receive_counts: list[str] = []

    @app.on_sqs_message(queue_arn=settings.deletion_queue_arn)
    def on_deletion(event: SQSEvent) -> None:
        for record in event:
            receive_counts.append(record.to_dict()["attributes"]["ApproximateReceiveCount"])
        raise RuntimeError("cannot delete")

    aws.client("sqs").send_message(QueueUrl=settings.deletion_queue_url, MessageBody="t1")
    runtime_for(app, aws, settings).wait_until_idle()

    assert receive_counts == ["1", "2", "3", "4", "5"]
    assert queue_depth(aws, settings.deletion_queue_url) == 0
    dlq_url = aws.client("sqs").get_queue_url(
        QueueName=dead_letter_queue_name(settings.deletion_queue_name)
    )
    [dead] = aws.client("sqs").receive_message(QueueUrl=dlq_url["QueueUrl"])["Messages"]
    assert dead["Body"] == "t1"


def test_a_retry_missed_by_the_queue_counts_is_still_awaited(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    """moto reads a queue's counts one after another: a message that turns visible
    between them is in none, and a single idle-looking pass must not end the wait."""
    deliveries: list[str] = []

    @app.on_sqs_message(queue_arn=settings.deletion_queue_arn)
    def on_deletion(event: SQSEvent) -> None:
        deliveries.extend(record.body for record in event)
        if len(deliveries) == 1:
            raise RuntimeError("fails once")

    reads_while_awaiting_retry: list[dict[str, str]] = []

    def counts_read_as_the_message_turns_visible(parsed: dict[str, Any], **_: Any) -> None:
        # The first read belongs to the pass that delivered; the second is the one to miss.
        if deliveries == ["t1"]:
            reads_while_awaiting_retry.append(dict(parsed["Attributes"]))
            if len(reads_while_awaiting_retry) == 2:
                parsed["Attributes"] = dict.fromkeys(parsed["Attributes"], "0")

    sqs = aws.client("sqs")
    sqs.meta.events.register(
        "after-call.sqs.GetQueueAttributes", counts_read_as_the_message_turns_visible
    )
    try:
        sqs.send_message(QueueUrl=settings.deletion_queue_url, MessageBody="t1")
        LocalEventRuntime(
            app, aws, settings, poll_interval=0.01, sqs_retry_delay=1
        ).wait_until_idle()
    finally:
        sqs.meta.events.unregister(
            "after-call.sqs.GetQueueAttributes", counts_read_as_the_message_turns_visible
        )

    assert reads_while_awaiting_retry[1]["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert deliveries == ["t1", "t1"]
    assert queue_depth(aws, settings.deletion_queue_url) == 0


def test_a_queue_the_embedded_aws_lacks_is_refused(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    @app.on_sqs_message(queue="no-such-queue")
    def on_nothing(event: SQSEvent) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="no-such-queue"):
        runtime_for(app, aws, settings)


# Chains, EventBridge, the background thread


def test_wait_until_idle_awaits_chained_effects(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    """REMOVE -> cascade message -> delete of a related item -> its REMOVE record."""
    removed: list[str] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> None:
        for record in event:
            if record.event_name == "REMOVE":
                pk = record.keys["PK"]["S"]
                removed.append(pk)
                if pk == "user":
                    aws.client("sqs").send_message(
                        QueueUrl=settings.cascade_queue_url, MessageBody="relation"
                    )

    @app.on_sqs_message(queue_arn=settings.cascade_queue_arn)
    def on_cascade(event: SQSEvent) -> None:
        for message in event:
            delete(aws, settings, message.body)

    put(aws, settings, "user")
    put(aws, settings, "relation")
    runtime = runtime_for(app, aws, settings)
    runtime.wait_until_idle()
    delete(aws, settings, "user")
    runtime.wait_until_idle()

    assert removed == ["user", "relation"]
    assert aws.client("dynamodb").scan(TableName=settings.table_name)["Items"] == []


def athena_event(workgroup: str, state: str = "SUCCEEDED") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Athena Query State Change",
        "source": "aws.athena",
        "account": "123456789012",
        "time": "2026-11-23T19:22:14Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "currentState": state,
            "queryExecutionId": "q-1",
            "workgroupName": workgroup,
            "tags": ["a", "b"],
        },
    }


def test_publish_delivers_to_matching_handlers_only(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    seen: dict[str, list[tuple[str, str, dict[str, Any]]]] = {"mine": [], "other": []}

    @app.on_cw_event(
        {
            "source": ["aws.athena"],
            "detail-type": ["Athena Query State Change"],
            "detail": {"workgroupName": [settings.athena_workgroup], "tags": ["b"]},
        }
    )
    def mine(event: CloudWatchEvent) -> None:
        seen["mine"].append((event.source, event.detail_type, event.detail))

    @app.on_cw_event({"source": ["aws.athena"], "detail": {"workgroupName": ["other"]}})
    def other(event: CloudWatchEvent) -> None:
        seen["other"].append((event.source, event.detail_type, event.detail))

    runtime = runtime_for(app, aws, settings)
    event = athena_event(settings.athena_workgroup)
    assert runtime.publish(event) == ["mine"]
    assert runtime.publish({**event, "source": "aws.glue"}) == []
    runtime.wait_until_idle()

    assert seen == {
        "mine": [("aws.athena", "Athena Query State Change", event["detail"])],
        "other": [],
    }


def test_a_failing_event_handler_is_retried_twice_then_recorded(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    calls: list[str] = []

    @app.on_cw_event({"source": ["aws.athena"]})
    def on_state(event: CloudWatchEvent) -> None:
        calls.append(event.event_id)
        raise RuntimeError("task store down")

    runtime = runtime_for(app, aws, settings)
    event = athena_event("any")
    runtime.publish(event)
    runtime.wait_until_idle()

    assert calls == [event["id"]] * 3
    assert runtime.failed_events == [event]


def test_unsupported_patterns_and_incomplete_events_are_refused(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    @app.on_cw_event({"detail": {"state": [{"prefix": "SUCC"}]}})
    def on_state(event: CloudWatchEvent) -> None:
        raise AssertionError("never called")

    with pytest.raises(EventPatternError, match=r"'detail\.state'"):
        runtime_for(app, aws, settings)

    runtime = runtime_for(Chalice(app_name="t"), aws, settings)
    with pytest.raises(ValueError, match="detail-type"):
        runtime.publish({"source": "aws.athena", "detail": {}})


def test_handlers_get_a_lambda_context(app: Chalice, aws: EmbeddedAWS, settings: Settings) -> None:
    contexts: list[Any] = []

    @app.on_sqs_message(queue_arn=settings.cascade_queue_arn)
    def on_cascade(event: SQSEvent) -> None:
        contexts.append(event.context)

    aws.client("sqs").send_message(QueueUrl=settings.cascade_queue_url, MessageBody="x")
    runtime_for(app, aws, settings).wait_until_idle()

    [context] = contexts
    assert context.function_name == f"t-{settings.stage}-on_cascade"
    assert context.invoked_function_arn.endswith(":function:t-local-on_cascade")
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert context.memory_limit_in_mb == 128
    assert context.aws_request_id


def test_the_background_thread_delivers_and_wait_until_idle_still_works(
    app: Chalice, aws: EmbeddedAWS, settings: Settings, runtimes: list[LocalEventRuntime]
) -> None:
    threads: set[str] = set()
    inserted = threading.Event()

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> None:
        threads.add(threading.current_thread().name)
        inserted.set()

    runtime = runtime_for(app, aws, settings)
    runtime.start()
    runtimes.append(runtime)
    put(aws, settings, "a")
    assert inserted.wait(timeout=5)
    assert threads == {"ocg-local-events"}

    put(aws, settings, "b")
    runtime.wait_until_idle()
    runtime.stop()
    runtime.stop()


def test_start_local_runtime_wires_aws_and_events(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    received = threading.Event()

    @app.on_sqs_message(queue_arn=settings.cascade_queue_arn)
    def on_cascade(event: SQSEvent) -> None:
        received.set()

    local = start_local_runtime(app, settings, poll_interval=0.01)
    try:
        assert local.aws is aws
        local.aws.client("sqs").send_message(QueueUrl=settings.cascade_queue_url, MessageBody="x")
        assert received.wait(timeout=5)
        local.events.wait_until_idle()
    finally:
        local.stop()


def test_a_reset_restarts_reading_from_the_new_stream(
    app: Chalice, aws: EmbeddedAWS, settings: Settings
) -> None:
    seen: list[str] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn)
    def on_change(event: DynamoDBEvent) -> None:
        seen.extend(r.keys["PK"]["S"] for r in event)

    runtime = runtime_for(app, aws, settings)
    put(aws, settings, "before")
    runtime.wait_until_idle()
    aws.reset()
    put(aws, settings, "after")
    runtime.wait_until_idle()

    assert seen == ["before", "after"]


def test_delivery_refuses_to_run_once_the_embedded_aws_stopped(
    app: Chalice, aws: EmbeddedAWS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_for(app, aws, settings)
    monkeypatch.setattr(type(aws), "running", property(lambda self: False))
    with pytest.raises(EmbeddedAWSError, match="stopped"):
        runtime.wait_until_idle()
