"""Join-table INSERT mutations end to end on the embedded default: the row written by
``addFavorite``, mirrored into the lake by the stream handler, read by a SQL task, and
removed with everything else when a referenced entity is deleted."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib import keys
from chalicelib.relations import create_relation
from tests.conftest import LoadedApp, create

TABLE = "user_favorite_products"
ADD_FAVORITE = "mutation ($u: ID!, $p: ID!) { addFavorite(userId: $u, productId: $p) }"


def join_items(app: LoadedApp) -> dict[str, dict[str, Any]]:
    """Every row and relation item of the table by ``PK SK``, plain values."""
    client = app.services.client("dynamodb")
    items = client.scan(TableName=app.services.settings.table_name, ConsistentRead=True)["Items"]
    prefixes = (keys.JOIN_ROW_PREFIX, keys.JOIN_RELATION_PREFIX)
    return {
        f"{item['PK']['S']} {item['SK']['S']}": {name: value["S"] for name, value in item.items()}
        for item in items
        if item["PK"]["S"].startswith(prefixes)
    }


def lake_files(app: LoadedApp) -> list[Path]:
    folder = app.services.settings.local_lake_dir / keys.lake_table_prefix(TABLE)
    return sorted(folder.rglob("*.parquet"))


def favorite_products(app: LoadedApp, user_id: str) -> list[dict[str, Any]]:
    trigger = app.data(
        "mutation ($u: ID!) { triggerTaskFavoriteProducts(userId: $u) { taskId } }", {"u": user_id}
    )
    app.settle()
    result = app.data(
        "query ($t: ID!) { taskResultFavoriteProducts(taskId: $t) "
        "{ taskStatus result { id name price } } }",
        {"t": trigger["triggerTaskFavoriteProducts"]["taskId"]},
    )["taskResultFavoriteProducts"]
    assert result["taskStatus"] == "SUCCEEDED", result
    rows: list[dict[str, Any]] = result["result"]
    return rows


@pytest.fixture
def ids(shop: LoadedApp) -> dict[str, str]:
    brand = create(shop, "Brand", name="Acme")
    return {
        "user": create(shop, "User", name="Ann", email="ann@example.com"),
        "product": create(shop, "Product", name="Anvil", brandId=brand, price=20.0),
    }


def test_add_favorite_writes_the_row_its_parquet_file_and_feeds_the_task(
    shop: LoadedApp, ids: dict[str, str]
) -> None:
    variables = {"u": ids["user"], "p": ids["product"]}

    assert shop.data(ADD_FAVORITE, variables) == {"addFavorite": True}
    shop.settle()

    relation_id = keys.relation_id(TABLE, [("user", ids["user"]), ("product", ids["product"])])
    items = join_items(shop)
    assert set(items) == {
        f"joinTableData#{relation_id} joinTableData#{relation_id}",
        f"joinRelation#user#{ids['user']} joinRelation#{relation_id}",
        f"joinRelation#product#{ids['product']} joinRelation#{relation_id}",
    }
    created_at = items[f"joinTableData#{relation_id} joinTableData#{relation_id}"]["createdAt"]
    path = shop.services.settings.local_lake_dir / keys.lake_object_key(
        TABLE, created_at, relation_id
    )
    assert lake_files(shop) == [path]
    assert path.relative_to(shop.services.settings.local_lake_dir).parts[:3] == (
        "tables",
        TABLE,
        f"year={created_at[:4]}",
    )
    table = pq.read_table(path, use_threads=False, partitioning=None)
    assert table.schema.names == ["relationId", "userId", "productId", "s3Key", "createdAt"]
    assert table.schema.field("createdAt").type == pa.timestamp("ms", tz="UTC")
    (row,) = table.to_pylist()
    assert {name: row[name] for name in ("relationId", "userId", "productId", "s3Key")} == {
        "relationId": relation_id,
        "userId": ids["user"],
        "productId": ids["product"],
        "s3Key": keys.lake_object_key(TABLE, created_at, relation_id),
    }
    assert keys.timestamp_text(row["createdAt"]) == created_at

    assert favorite_products(shop, ids["user"]) == [
        {"id": ids["product"], "name": "Anvil", "price": 20.0}
    ]


def test_a_repeated_add_favorite_is_true_and_changes_nothing(
    shop: LoadedApp, ids: dict[str, str]
) -> None:
    variables = {"u": ids["user"], "p": ids["product"]}
    shop.data(ADD_FAVORITE, variables)
    shop.settle()
    before, files = join_items(shop), lake_files(shop)
    written = files[0].stat().st_mtime_ns

    assert shop.data(ADD_FAVORITE, variables) == {"addFavorite": True}
    shop.settle()

    assert join_items(shop) == before
    assert lake_files(shop) == files
    assert files[0].stat().st_mtime_ns == written


@pytest.mark.parametrize(
    ("user", "product", "message"),
    [
        ("u-missing", None, "addFavorite: User 'u-missing' does not exist"),
        (None, "p-missing", "addFavorite: Product 'p-missing' does not exist"),
        (
            "u-missing",
            "p-missing",
            "addFavorite: User 'u-missing' and Product 'p-missing' do not exist",
        ),
        ("", None, "addFavorite: userId must be a non-empty id"),
    ],
)
def test_a_refused_add_favorite_names_the_reason_and_writes_nothing(
    shop: LoadedApp, ids: dict[str, str], user: str | None, product: str | None, message: str
) -> None:
    variables = {"u": ids["user"] if user is None else user, "p": product or ids["product"]}

    assert shop.error_messages(ADD_FAVORITE, variables) == [message]
    shop.settle()
    assert join_items(shop) == {}
    assert lake_files(shop) == []


def test_deleting_a_favorite_product_removes_the_row_everywhere(
    shop: LoadedApp, ids: dict[str, str]
) -> None:
    shop.data(ADD_FAVORITE, {"u": ids["user"], "p": ids["product"]})
    shop.settle()
    assert len(lake_files(shop)) == 1

    deleted = shop.data(
        "mutation ($id: ID!) { deleteProduct(id: $id) { deleted } }", {"id": ids["product"]}
    )
    assert deleted == {"deleteProduct": {"deleted": True}}
    shop.settle()

    assert join_items(shop) == {}
    assert lake_files(shop) == []
    assert favorite_products(shop, ids["user"]) == []


def test_concurrent_identical_inserts_on_the_local_default_make_one_row(
    shop: LoadedApp, ids: dict[str, str]
) -> None:
    """The embedded AWS answers DynamoDB one request at a time: moto would otherwise
    undo one thread's writes when restoring another's cancelled transaction."""
    join_table = shop.services.model.join_tables[0]
    client, table = shop.services.client("dynamodb"), shop.services.settings.table_name
    references = {"userId": ids["user"], "productId": ids["product"]}
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def insert() -> None:
        barrier.wait()
        results.append(create_relation(client, table, join_table, references))

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]
    assert len(join_items(shop)) == 3
