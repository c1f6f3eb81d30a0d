"""DELETE mutations as deletion tasks on the embedded default: the SELECT of what to
delete runs on DuckDB, the tracker queues the task, the deletion listener removes the
rows, the stream handler their files; the task says SUCCEEDED only then."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import keys
from chalicelib.queues import dead_letter_queue_name
from tests.conftest import LoadedApp, create
from tests.test_deletions import put_favorites, relation_items
from tests.test_joins_flow import ADD_FAVORITE, favorite_products, join_items, lake_files
from tests.test_tasks_flow import hold_queries


def trigger(app: LoadedApp, field: str, arguments: str) -> str:
    data = app.data(f"mutation {{ {field}({arguments}) {{ taskId }} }}")
    task_id: str = data[field]["taskId"]
    return task_id


def deletion_result(app: LoadedApp, field: str, task_id: str) -> dict[str, Any]:
    result: dict[str, Any] = app.data(
        f'{{ {field}(taskId: "{task_id}") '
        "{ taskStatus startDate finishDate errorMessage deletedCount } }"
    )[field]
    return result


@pytest.fixture
def favorites(shop: LoadedApp) -> dict[str, str]:
    acme, zeta = create(shop, "Brand", name="Acme"), create(shop, "Brand", name="Zeta")
    ids = {
        "ann": create(shop, "User", name="Ann", email="ann@example.com"),
        "bob": create(shop, "User", name="Bob", email="bob@example.com"),
        "acme": acme,
        "anvil": create(shop, "Product", name="Anvil", brandId=acme, price=20.0),
        "axe": create(shop, "Product", name="Axe", brandId=acme, price=30.0),
        "zip": create(shop, "Product", name="Zip", brandId=zeta, price=5.5),
    }
    for user, product in [("ann", "anvil"), ("ann", "zip"), ("bob", "axe"), ("bob", "zip")]:
        shop.data(ADD_FAVORITE, {"u": ids[user], "p": ids[product]})
    shop.settle()
    return ids


def test_a_delete_with_a_join_removes_what_its_select_selects(
    shop: LoadedApp, favorites: dict[str, str]
) -> None:
    task_id = trigger(shop, "triggerTaskRemoveFavoritesOfBrand", f'brandId: "{favorites["acme"]}"')
    shop.settle()

    result = deletion_result(shop, "taskResultRemoveFavoritesOfBrand", task_id)
    assert result["taskStatus"] == "SUCCEEDED", result
    assert result["deletedCount"] == 2
    assert result["finishDate"] >= result["startDate"]
    assert [p["name"] for p in favorite_products(shop, favorites["ann"])] == ["Zip"]
    assert [p["name"] for p in favorite_products(shop, favorites["bob"])] == ["Zip"]
    assert len(lake_files(shop)) == 2
    assert len(join_items(shop)) == 2 * 3  # two rows left, each with two relation items


def test_a_deletion_task_is_running_until_its_rows_are_gone(
    shop: LoadedApp, favorites: dict[str, str]
) -> None:
    held = hold_queries(shop)
    task_id = trigger(
        shop, "triggerTaskRemoveFavoritesOfProduct", f'productId: "{favorites["zip"]}"'
    )

    running = deletion_result(shop, "taskResultRemoveFavoritesOfProduct", task_id)
    assert (running["taskStatus"], running["deletedCount"]) == ("RUNNING", None)
    for job in held:
        job()
    shop.settle()

    done = deletion_result(shop, "taskResultRemoveFavoritesOfProduct", task_id)
    assert (done["taskStatus"], done["deletedCount"]) == ("SUCCEEDED", 2)
    table = shop.services.settings.table_name
    relation_partition = keys.entity_relations_partition("product", favorites["zip"])
    left = shop.services.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": relation_partition}},
    )["Items"]
    assert left == []
    assert len(lake_files(shop)) == 2


def test_a_delete_that_selects_nothing_succeeds_with_zero(
    shop: LoadedApp, favorites: dict[str, str]
) -> None:
    task_id = trigger(shop, "triggerTaskRemoveFavoritesOfProduct", 'productId: "nope\' OR 1=1 --"')
    shop.settle()

    result = deletion_result(shop, "taskResultRemoveFavoritesOfProduct", task_id)
    assert (result["taskStatus"], result["deletedCount"]) == ("SUCCEEDED", 0)
    assert len(lake_files(shop)) == 4


def test_a_deletion_task_id_is_only_good_for_its_own_field(
    shop: LoadedApp, favorites: dict[str, str]
) -> None:
    task_id = trigger(shop, "triggerTaskRemoveFavoritesOfProduct", 'productId: "x"')
    shop.settle()

    assert shop.error_messages(
        f'{{ taskResultRemoveFavoritesOfBrand(taskId: "{task_id}") {{ taskStatus }} }}'
    ) == [f"no task '{task_id}' of removeFavoritesOfBrand: use the taskId its trigger returned"]
    assert shop.error_messages(
        f'{{ taskResultUsersByCity(taskId: "{task_id}") {{ taskStatus }} }}'
    ) == [f"no task '{task_id}' of usersByCity: use the taskId its trigger returned"]


def test_a_cascade_over_300_relations_leaves_nothing_behind(shop: LoadedApp) -> None:
    """Three pages of the user's relation items, dozens of batch writes, 300 files."""
    user = create(shop, "User", name="Ann", email="ann@example.com")
    other = create(shop, "User", name="Bob", email="bob@example.com")
    client, table = shop.services.client("dynamodb"), shop.services.settings.table_name
    put_favorites(client, [(user, f"p{n}") for n in range(300)], table=table)
    kept = put_favorites(client, [(other, "p1")], table=table)
    shop.settle()
    assert len(lake_files(shop)) == 301

    shop.data(f'mutation {{ deleteUser(id: "{user}") {{ deleted }} }}')
    shop.settle()

    assert [path.stem for path in lake_files(shop)] == kept
    assert set(join_items(shop)) == {
        f"{item['PK']} {item['SK']}" for item in relation_items(other, "p1")[1]
    }


def test_a_deletion_message_that_keeps_failing_ends_in_the_dead_letter_queue(
    shop: LoadedApp,
) -> None:
    settings = shop.services.settings
    sqs = shop.services.client("sqs")
    sqs.send_message(QueueUrl=settings.deletion_queue_url, MessageBody='{"taskId": "nope"}')

    shop.settle()

    dlq_url = sqs.get_queue_url(QueueName=dead_letter_queue_name(settings.deletion_queue_name))[
        "QueueUrl"
    ]
    [dead] = sqs.receive_message(QueueUrl=dlq_url)["Messages"]
    assert dead["Body"] == '{"taskId": "nope"}'


def test_after_compaction_a_delete_and_a_cascade_still_remove_each_relation_once(
    shop: LoadedApp, favorites: dict[str, str]
) -> None:
    """The relations are compacted rows, not live files, when they are deleted: the
    SELECT counts each once and the removals' tombstones hide them from every query."""
    fired = shop.services.local_runtime.schedules.fire("compact_lake")
    assert fired["liveFolded"] >= 4  # users, products, brands and the 4 relations
    lake = shop.services.settings.local_lake_dir
    assert not list((lake / "tables").rglob("*.parquet"))

    task_id = trigger(shop, "triggerTaskRemoveFavoritesOfBrand", f'brandId: "{favorites["acme"]}"')
    shop.settle()
    result = deletion_result(shop, "taskResultRemoveFavoritesOfBrand", task_id)
    assert (result["taskStatus"], result["deletedCount"]) == ("SUCCEEDED", 2)
    assert [p["name"] for p in favorite_products(shop, favorites["ann"])] == ["Zip"]
    assert favorite_products(shop, favorites["bob"])[0]["name"] == "Zip"

    shop.data(f'mutation {{ deleteProduct(id: "{favorites["zip"]}") {{ deleted }} }}')
    shop.settle()
    assert favorite_products(shop, favorites["ann"]) == []
    again = trigger(shop, "triggerTaskRemoveFavoritesOfBrand", f'brandId: "{favorites["acme"]}"')
    shop.settle()
    assert deletion_result(shop, "taskResultRemoveFavoritesOfBrand", again)["deletedCount"] == 0
    shop.services.local_runtime.schedules.fire("compact_lake")
    assert favorite_products(shop, favorites["bob"]) == []
    assert not list((lake / "deleted").rglob("*.parquet"))
