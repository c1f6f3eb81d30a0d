"""Metrics end to end on the embedded default: what real requests, stream batches, queue
messages and tasks record, read from the EMF lines their invocations write.

The local default prints no EMF; these tests give the app a stream to write them to
(``services.telemetry.metrics_out``), as a deployment's standard output would get them.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from chalicelib.telemetry.logs import ContextFilter
from tests.conftest import LoadedApp, create
from tests.telemetry.emf import emf_lines, metric_values
from tests.test_joins_flow import ADD_FAVORITE

EVENTS = Path(__file__).resolve().parent / "events"


def captured(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def record_metrics(app: LoadedApp) -> io.StringIO:
    out = io.StringIO()
    app.services.telemetry.metrics_out = out
    return out


def lines_with(out: io.StringIO, metric: str) -> list[dict[str, Any]]:
    return [d for d in emf_lines(out.getvalue()) if metric in metric_values(d)]


def test_each_graphql_request_writes_one_line_with_its_outcome(shop: LoadedApp) -> None:
    out = record_metrics(shop)

    shop.data("{ listUser { items { id } } }")
    shop.graphql("{ readUser(id: 1) { nope } }")
    assert shop.post("{not json").status_code == 400

    documents = emf_lines(out.getvalue())
    assert [metric_values(d) for d in documents] == [
        {"GraphQLRequests": 1, "GraphQLClientErrors": 0, "GraphQLInternalErrors": 0},
        {"GraphQLRequests": 1, "GraphQLClientErrors": 1, "GraphQLInternalErrors": 0},
        {"GraphQLRequests": 1, "GraphQLClientErrors": 1, "GraphQLInternalErrors": 0},
    ]
    assert {(d["Project"], d["Stage"]) for d in documents} == {("shop", "local")}
    assert all(d["correlationId"] for d in documents)  # the request's id, a property


def stream_batch(age_seconds: float) -> dict[str, Any]:
    """A user written then modified, a join row removed, and a record nobody can read;
    the oldest written ``age_seconds`` ago."""
    records = [
        captured(name)["Records"][0]
        for name in ("stream_insert_user", "stream_modify_user", "stream_remove_join_row")
    ]
    bogus = copy.deepcopy(records[0])
    bogus["eventName"], bogus["eventID"] = "BOGUS", "bogus-event"
    bogus["dynamodb"]["SequenceNumber"] = "9" * 28
    now = time.time()
    for offset, record in enumerate([*records, bogus]):
        record["dynamodb"]["ApproximateCreationDateTime"] = now - age_seconds + offset
    return {"Records": [*records, bogus]}


def test_a_stream_batch_counts_its_lake_writes_failures_and_oldest_record(
    shop: LoadedApp,
) -> None:
    out = record_metrics(shop)
    event = stream_batch(age_seconds=90)

    before = time.time()
    response = shop.client.lambda_.invoke("on_table_change", event)
    after = time.time()

    assert response.payload == {"batchItemFailures": [{"itemIdentifier": "9" * 28}]}
    (document,) = emf_lines(out.getvalue())
    values = metric_values(document)
    oldest = event["Records"][0]["dynamodb"]["ApproximateCreationDateTime"]
    assert (before - oldest) * 1000 - 1 <= values.pop("StreamRecordAge") <= (after - oldest) * 1000
    # The REMOVE writes its tombstone and deletes its file.
    assert values == {"LakeObjectsWritten": 3, "LakeObjectsDeleted": 1, "LakeWriteFailures": 1}


def test_a_write_failing_in_a_worker_thread_is_logged_under_its_record(
    shop: LoadedApp, caplog: pytest.LogCaptureFixture
) -> None:
    out = record_metrics(shop)
    record = captured("stream_insert_user")["Records"][0]
    # Where the user's partition directory should be, a file: the write fails.
    blocker = shop.services.settings.local_lake_dir / "tables" / "user" / "year=2026"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    caplog.handler.addFilter(ContextFilter(stage="local", function="on_table_change"))

    with caplog.at_level(logging.ERROR, logger="chalicelib.lake.stream"):
        response = shop.client.lambda_.invoke("on_table_change", {"Records": [record]})

    sequence_number = record["dynamodb"]["SequenceNumber"]
    assert response.payload == {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    (failure,) = [r for r in caplog.records if r.getMessage().startswith("stream record 0")]
    assert failure.threadName != "MainThread"
    assert failure.__dict__["correlationId"] == record["eventID"]
    assert failure.__dict__["failedSequenceNumber"] == sequence_number
    (document,) = emf_lines(out.getvalue())
    assert metric_values(document)["LakeWriteFailures"] == 1


def test_a_cascade_message_counts_the_relations_it_removed(shop: LoadedApp) -> None:
    brand = create(shop, "Brand", name="Acme")
    user = create(shop, "User", name="Ann", email="ann@example.com")
    product = create(shop, "Product", name="Anvil", brandId=brand, price=20.0)
    shop.data(ADD_FAVORITE, {"u": user, "p": product})
    shop.settle()
    shop.services.local_runtime.stop()  # only the invocation below writes metrics now
    out = record_metrics(shop)
    event = captured("sqs_cascade")
    event["Records"][0]["body"] = json.dumps({"entityType": "user", "entityId": user})

    response = shop.client.lambda_.invoke("on_cascade_message", event)

    assert response.payload == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]
    }
    (document,) = emf_lines(out.getvalue())
    assert metric_values(document) == {"RelationsRemoved": 1}


def test_a_query_task_is_counted_when_triggered_and_when_the_tracker_finishes_it(
    shop: LoadedApp,
) -> None:
    out = record_metrics(shop)

    data = shop.data('mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }')
    task_id = data["triggerTaskUsersByCity"]["taskId"]
    shop.settle()

    (request,) = lines_with(out, "GraphQLRequests")
    assert metric_values(request)["TasksTriggered"] == 1
    assert "DeletionTasksTriggered" not in metric_values(request)
    (tracked,) = lines_with(out, "TasksSucceeded")
    assert tracked["correlationId"] == task_id  # the Athena query execution id
    values = metric_values(tracked)
    (duration,) = values.pop("TaskDuration")
    assert 0 <= duration < 60_000
    # The local engine reports the size of the lake files the query reads: none yet.
    assert values == {"TasksSucceeded": 1, "TaskBytesScanned": [0]}


def test_a_deletion_task_counts_its_trigger_its_rows_and_its_success(shop: LoadedApp) -> None:
    brand = create(shop, "Brand", name="Acme")
    user = create(shop, "User", name="Ann", email="ann@example.com")
    product = create(shop, "Product", name="Anvil", brandId=brand, price=20.0)
    shop.data(ADD_FAVORITE, {"u": user, "p": product})
    shop.settle()
    out = record_metrics(shop)

    shop.data(
        f'mutation {{ triggerTaskRemoveFavoritesOfProduct(productId: "{product}") {{ taskId }} }}'
    )
    shop.settle()

    (request,) = lines_with(out, "GraphQLRequests")
    assert metric_values(request)["TasksTriggered"] == 1
    assert metric_values(request)["DeletionTasksTriggered"] == 1
    (deleted,) = lines_with(out, "JoinRowsRemoved")
    values = metric_values(deleted)
    assert values.pop("TaskDuration")[0] >= 0
    assert values == {"JoinRowsRemoved": 1, "TasksSucceeded": 1}
    assert (
        sum(metric_values(d)["LakeObjectsDeleted"] for d in lines_with(out, "LakeObjectsDeleted"))
        == 1
    )
