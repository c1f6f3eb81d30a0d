"""The local default keeps its state: a new process on the same ``OCG_LOCAL_DIR`` serves
what the last one acknowledged, with the lake agreeing, the queues' messages kept, and
no task left RUNNING. (``tests/local/test_restart.py`` kills a real ``chalice local``.)"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from chalicelib.keys import LAKE_PREFIX
from chalicelib.local import persistence, stop_embedded_aws
from tests.conftest import LoadedApp, create

USERS = "query { listUser(limit: 100, order: ASC) { items { id name age } } }"


def restart(app: LoadedApp, load_app: Callable[..., LoadedApp]) -> LoadedApp:
    """What a stop and a new ``make run`` do to the process: its emulated AWS and every
    thread are gone; only the local directory is left."""
    app.services.close()
    stop_embedded_aws()
    sys.modules.pop("app", None)
    again = load_app()
    again.settle()
    return again


def lake_ids(app: LoadedApp, table: str) -> set[str]:
    root = app.services.settings.local_lake_dir / LAKE_PREFIX / table
    return {path.stem for path in root.rglob("*.parquet")}


def test_a_new_process_serves_what_the_last_one_acknowledged(
    load_app: Callable[..., LoadedApp],
) -> None:
    app = load_app()
    ada = create(app, "User", name="Ada", email="ada@example.com", age=36)
    bob = create(app, "User", name="Bob", email="bob@example.com")
    app.data(f'mutation {{ updateUser(id: "{ada}", input: {{age: 37}}) {{ id }} }}')
    brand = create(app, "Brand", name="Acme")
    product = create(app, "Product", name="Anvil", price=9.5, brandId=brand)
    assert app.data(f'mutation {{ addFavorite(userId: "{ada}", productId: "{product}") }}')
    app.data(f'mutation {{ deleteUser(id: "{bob}") {{ deleted }} }}')
    app.settle()
    before = app.data(USERS)

    again = restart(app, load_app)

    assert (
        again.data(USERS)
        == before
        == {"listUser": {"items": [{"id": ada, "name": "Ada", "age": 37}]}}
    )
    assert again.data(f'query {{ readUser(id: "{bob}") {{ id }} }}') == {"readUser": None}
    # The lake was not emptied, and agrees with the table.
    assert lake_ids(again, "user") == {ada}
    assert len(lake_ids(again, "user_favorite_products")) == 1
    # A repeated INSERT is still a no-op: the relation's row item survived.
    assert again.data(f'mutation {{ addFavorite(userId: "{ada}", productId: "{product}") }}')


def test_writes_folded_into_a_snapshot_and_those_after_it_both_come_back(
    load_app: Callable[..., LoadedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persistence, "SNAPSHOT_AFTER_ENTRIES", 3)
    app = load_app()
    first = [create(app, "User", name=f"u{n}", email=f"u{n}@example.com") for n in range(4)]
    app.settle()  # the stream is delivered: the journal is folded into a snapshot
    state = app.services.settings.local_dir / persistence.STATE_DIR
    assert (state / "dynamodb.snapshot").is_file()
    later = create(app, "User", name="later", email="later@example.com")
    app.data(f'mutation {{ deleteUser(id: "{first[0]}") {{ deleted }} }}')
    app.settle()

    again = restart(app, load_app)

    items = again.data(USERS)["listUser"]["items"]
    assert {item["id"] for item in items} == {*first[1:], later}
    assert lake_ids(again, "user") == {*first[1:], later}


def test_queued_and_dead_lettered_messages_survive(
    load_app: Callable[..., LoadedApp],
) -> None:
    app = load_app()
    sqs = app.services.client("sqs")
    settings = app.services.settings
    dead_letters = sqs.get_queue_url(QueueName=f"{settings.cascade_queue_name}-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dead_letters, MessageBody=json.dumps({"kept": True}))

    again = restart(app, load_app)

    sqs = again.services.client("sqs")
    received = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(message["Body"]) for message in received] == [{"kept": True}]


def _task_told_nothing(app: LoadedApp, *, query_finished: bool) -> str:
    """A task whose item still says RUNNING when the process dies: its query died with
    the process, or had finished (and was kept) before the tracker was told."""
    task_id: str = app.data('mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }')[
        "triggerTaskUsersByCity"
    ]["taskId"]
    app.settle()
    app.services.client("dynamodb").update_item(
        TableName=app.services.settings.table_name,
        Key={"PK": {"S": f"task#{task_id}"}, "SK": {"S": f"task#{task_id}"}},
        UpdateExpression="SET taskStatus = :running REMOVE finishDate",
        ExpressionAttributeValues={":running": {"S": "RUNNING"}},
    )
    kept = app.services.settings.local_dir / "athena" / f"{task_id}.json"
    assert kept.is_file()
    if not query_finished:
        kept.unlink()
    return task_id


def test_a_task_running_when_the_process_died_ends_failed_with_the_reason(
    load_app: Callable[..., LoadedApp],
) -> None:
    app = load_app()
    task_id = _task_told_nothing(app, query_finished=False)

    again = restart(app, load_app)

    result = again.data(
        f'query {{ taskResultUsersByCity(taskId: "{task_id}") {{ taskStatus errorMessage }} }}'
    )["taskResultUsersByCity"]
    assert result["taskStatus"] == "FAILED"
    assert "restarted" in result["errorMessage"]


def test_a_task_whose_query_finished_before_the_process_died_ends_as_it_did(
    load_app: Callable[..., LoadedApp],
) -> None:
    app = load_app()
    task_id = _task_told_nothing(app, query_finished=True)

    again = restart(app, load_app)
    again.settle()

    result = again.data(
        f'query {{ taskResultUsersByCity(taskId: "{task_id}") {{ taskStatus result {{ id }} }} }}'
    )["taskResultUsersByCity"]
    assert result == {"taskStatus": "SUCCEEDED", "result": []}


def test_a_journal_entry_cut_short_by_a_crash_is_dropped_and_the_rest_served(
    load_app: Callable[..., LoadedApp],
) -> None:
    app = load_app()
    ada = create(app, "User", name="Ada", email="ada@example.com")
    app.settle()
    journal = app.services.settings.local_dir / persistence.STATE_DIR / "dynamodb.journal"
    app.services.close()
    stop_embedded_aws()
    with journal.open("a") as file:
        file.write('{"seq": 99, "action": "PutItem", "bo')  # the write never answered

    sys.modules.pop("app", None)
    again = load_app()

    assert again.data(f'query {{ readUser(id: "{ada}") {{ name }} }}') == {
        "readUser": {"name": "Ada"}
    }


def test_a_reset_starts_over_with_nothing_kept(load_app: Callable[..., LoadedApp]) -> None:
    app = load_app()
    create(app, "User", name="Ada", email="ada@example.com")
    app.settle()

    app.services.local_runtime.aws.reset()
    again = restart(app, load_app)

    assert again.data(USERS) == {"listUser": {"items": []}}
    assert lake_ids(again, "user") == set()


def test_a_journal_entry_refused_on_replay_stops_the_start_with_what_to_do(
    load_app: Callable[..., LoadedApp],
) -> None:
    app = load_app()
    ada = create(app, "User", name="Ada", email="ada@example.com")
    app.settle()
    journal = app.services.settings.local_dir / persistence.STATE_DIR / "dynamodb.journal"
    app.services.close()
    stop_embedded_aws()
    # A write the emulator would refuse now (the item exists): a changed emulator.
    refused = {
        "TableName": app.services.settings.table_name,
        "Item": {"PK": {"S": f"user#{ada}"}, "SK": {"S": f"user#{ada}"}},
        "ConditionExpression": "attribute_not_exists(PK)",
    }
    with journal.open("a") as file:
        file.write(json.dumps({"seq": 99, "action": "PutItem", "body": json.dumps(refused)}) + "\n")

    sys.modules.pop("app", None)
    with pytest.raises(SystemExit, match="entry 99 \\(PutItem\\) succeeded when it was written"):
        load_app()


def test_a_deferred_write_is_on_disk_before_its_stream_record_is_read(
    load_app: Callable[..., LoadedApp],
) -> None:
    """An HTTP request syncs its writes once, as it answers; a stream read in between
    must not hand the lake a record whose write a crash could still take back."""
    app = load_app()
    aws = app.services.local_runtime.aws
    table = app.services.settings.table_name
    journal = persistence.DynamoDBJournal(
        app.services.settings.local_dir / persistence.STATE_DIR / "dynamodb.journal"
    )
    streams = aws.client("dynamodbstreams")
    stream_arn = aws.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]

    with app.services.acknowledging():
        aws.client("dynamodb").put_item(
            TableName=table, Item={"PK": {"S": "probe#1"}, "SK": {"S": "probe#1"}}
        )
        streams.get_records(ShardIterator=iterator)
        on_disk = [json.loads(entry["body"]).get("Item", {}).get("PK") for entry in journal.read()]

    assert {"S": "probe#1"} in on_disk
