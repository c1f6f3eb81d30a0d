"""SQL tasks end to end on the embedded default: entities created through GraphQL, the
lake written by the real stream handler, the SQL run by DuckDB, the task finished by the
EventBridge handler, and typed rows read back through ``taskResult…``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib import keys
from chalicelib.lake.layers import lake_layers
from chalicelib.local.athena import LocalAthena
from tests.conftest import LoadedApp, create


def favorite(app: LoadedApp, user_id: str, product_id: str) -> None:
    mutation = "mutation ($u: ID!, $p: ID!) { addFavorite(userId: $u, productId: $p) }"
    assert app.data(mutation, {"u": user_id, "p": product_id}) == {"addFavorite": True}


def trigger(app: LoadedApp, task: str, arguments: str = "") -> str:
    field = f"triggerTask{task[0].upper()}{task[1:]}"
    call = f"{field}({arguments})" if arguments else field
    task_id: str = app.data(f"mutation {{ {call} {{ taskId }} }}")[field]["taskId"]
    return task_id


def task_result(app: LoadedApp, task: str, task_id: str, selection: str) -> dict[str, Any]:
    field = f"taskResult{task[0].upper()}{task[1:]}"
    query = (
        f'{{ {field}(taskId: "{task_id}") {{ taskStatus startDate finishDate errorMessage '
        f"result {selection} }} }}"
    )
    result: dict[str, Any] = app.data(query)[field]
    return result


def run(app: LoadedApp, task: str, arguments: str, selection: str) -> Any:
    task_id = trigger(app, task, arguments)
    app.settle()
    result = task_result(app, task, task_id, selection)
    assert result["taskStatus"] == "SUCCEEDED", result
    return result["result"]


@pytest.fixture
def shop_data(shop: LoadedApp) -> dict[str, str]:
    ids = {
        "ann": create(shop, "User", name="Ann", email="ann@example.com", age=31, vip=True),
        "bob": create(shop, "User", name="Bob", email="bob@example.com"),
        "cid": create(shop, "User", name="Cid", email="cid@example.com"),
        "acme": create(shop, "Brand", name="Acme"),
        "zeta": create(shop, "Brand", name="Zeta"),
    }
    create(shop, "Address", userId=ids["ann"], city="Paris", country="FR")
    create(shop, "Address", userId=ids["bob"], city="Paris", country="FR")
    create(shop, "Address", userId=ids["cid"], city="Berlin", country="DE")
    ids["anvil"] = create(shop, "Product", name="Anvil", brandId=ids["acme"], price=20.0)
    ids["axe"] = create(shop, "Product", name="Axe", brandId=ids["acme"], price=30.0)
    ids["zip"] = create(shop, "Product", name="Zip", brandId=ids["zeta"], price=5.5)
    for user, product in [("ann", "anvil"), ("ann", "axe"), ("bob", "axe"), ("cid", "zip")]:
        favorite(shop, ids[user], ids[product])
    shop.settle()
    return ids


def hold_queries(app: LoadedApp) -> list[Callable[[], None]]:
    """Swap in a local engine whose queries wait until the test runs their jobs."""
    services = app.services
    settings = services.settings
    jobs: list[Callable[[], None]] = []
    services.__dict__["query_engine"] = LocalAthena(
        settings.local_lake_dir,
        lake_layers(services.model),
        workgroup=settings.athena_workgroup,
        region=settings.region,
        account_id=settings.account_id,
        publish=services.local_runtime.events.publish,
        run=jobs.append,
    )
    services.__dict__.pop("tasks", None)
    return jobs


def test_a_task_goes_from_running_to_succeeded_with_typed_rows(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    held = hold_queries(shop)
    task_id = trigger(shop, "usersByCity", 'city: "Paris"')

    running = task_result(shop, "usersByCity", task_id, "{ name }")
    assert running["taskStatus"] == "RUNNING"
    assert running["result"] is None
    assert running["finishDate"] is None

    for job in held:
        job()
    shop.settle()
    done = task_result(shop, "usersByCity", task_id, "{ id name email total }")
    assert done["taskStatus"] == "SUCCEEDED"
    assert done["finishDate"] >= done["startDate"]
    assert done["errorMessage"] is None
    assert done["result"] == [
        {"id": shop_data["ann"], "name": "Ann", "email": "ann@example.com", "total": 2},
        {"id": shop_data["bob"], "name": "Bob", "email": "bob@example.com", "total": 2},
    ]


def test_the_tracker_finished_the_task_before_anyone_polled(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    task_id = trigger(shop, "usersByCity", 'city: "Berlin"')
    shop.settle()

    table = shop.services.settings.table_name
    item = shop.services.client("dynamodb").get_item(
        TableName=table, Key={k: {"S": v} for k, v in keys.task_item_keys(task_id).items()}
    )["Item"]
    assert item["taskStatus"] == {"S": "SUCCEEDED"}
    assert "finishDate" in item


def test_favorite_products_of_a_user(shop: LoadedApp, shop_data: dict[str, str]) -> None:
    rows = run(shop, "favoriteProducts", f'userId: "{shop_data["ann"]}"', "{ id name price }")

    assert sorted(rows, key=lambda row: row["name"]) == [
        {"id": shop_data["anvil"], "name": "Anvil", "price": 20.0},
        {"id": shop_data["axe"], "name": "Axe", "price": 30.0},
    ]


def test_brand_popularity_with_omitted_and_given_arguments(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    selection = "{ brandId favorites averagePrice }"

    everything = run(shop, "brandPopularity", "", selection)
    assert everything == [
        {"brandId": shop_data["acme"], "favorites": 3, "averagePrice": pytest.approx(80 / 3)},
        {"brandId": shop_data["zeta"], "favorites": 1, "averagePrice": 5.5},
    ]
    popular = run(shop, "brandPopularity", "minFavorites: 2", selection)
    assert [row["brandId"] for row in popular] == [shop_data["acme"]]
    prefixed = run(shop, "brandPopularity", 'namePrefix: "Z"', selection)
    assert [row["brandId"] for row in prefixed] == [shop_data["zeta"]]


@pytest.mark.parametrize(
    "payload",
    [
        "Paris' OR '1'='1",
        "Paris'; DROP TABLE address; --",
        "Paris\\' OR 1=1 --",
        "$args.city",
        'Paris\' UNION SELECT id, name, email, 1 FROM "user" --',
    ],
)
def test_injection_payloads_are_values_not_sql(
    shop: LoadedApp, shop_data: dict[str, str], payload: str
) -> None:
    task_id = trigger(shop, "usersByCity", f"city: {_graphql_string(payload)}")
    shop.settle()

    result = task_result(shop, "usersByCity", task_id, "{ name }")
    assert result["taskStatus"] == "SUCCEEDED", result
    assert result["result"] == []
    assert run(shop, "usersByCity", 'city: "Paris"', "{ name }") == [
        {"name": "Ann"},
        {"name": "Bob"},
    ]


def test_a_like_pattern_value_stays_inside_its_literal(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    rows = run(shop, "brandPopularity", "namePrefix: \"x%' OR 1=1 OR '\"", "{ brandId }")

    assert rows == []


def _graphql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


ANALYTICS = '''
type Product {
  id: ID!
  name: String!
  price: Float!
  tags: [String!]
  onSale: Boolean
  createdAt: AWSDateTime!
  updatedAt: AWSDateTime!
}

type ProductRank @task_response {
  name: String!
  price: Float!
  rank: Int!
  tags: [String!]
  onSale: Boolean
  createdAt: AWSDateTime!
}

type Query {
  rankedProducts(since: AWSDateTime!): [ProductRank!]!
    @sql_query(query: """
      SELECT name, price, RANK() OVER (ORDER BY price DESC) AS rank, tags, onSale, createdAt
      FROM product
      WHERE createdAt >= $args.since - INTERVAL '1' DAY
      ORDER BY rank, name
    """)
  productCount: Int! @sql_query(query: "SELECT COUNT(*) FROM product")
  cheapest: ProductRank
    @sql_query(query: """
      SELECT name, price, 1 AS rank, tags, onSale, createdAt
      FROM product ORDER BY price, name LIMIT 1
    """)
  broken: Int @sql_query(query: "SELECT CAST(name AS INTEGER) FROM product")
}
'''


@pytest.fixture
def analytics(load_app: Callable[..., LoadedApp]) -> LoadedApp:
    app = load_app(ANALYTICS)
    create(app, "Product", name="Kite", price=12.5, tags=["sky", "toy"], onSale=True)
    create(app, "Product", name="Yoyo", price=12.5, tags=[])
    create(app, "Product", name="Boat", price=99.0, onSale=False)
    app.settle()
    return app


def test_window_functions_intervals_and_every_result_type(analytics: LoadedApp) -> None:
    rows = run(
        analytics,
        "rankedProducts",
        'since: "2000-01-01T00:00:00Z"',
        "{ name price rank tags onSale createdAt }",
    )

    assert [(r["name"], r["price"], r["rank"]) for r in rows] == [
        ("Boat", 99.0, 1),
        ("Kite", 12.5, 2),
        ("Yoyo", 12.5, 2),
    ]
    assert [(r["tags"], r["onSale"]) for r in rows] == [
        (None, False),
        (["sky", "toy"], True),
        ([], None),
    ]
    for row in rows:
        assert row["createdAt"].endswith("Z")
        assert len(row["createdAt"]) == len("2026-11-23T19:22:14.123Z")
    assert run(analytics, "rankedProducts", 'since: "2999-01-01T00:00:00Z"', "{ name }") == []


def test_scalar_and_single_object_results(analytics: LoadedApp) -> None:
    assert run(analytics, "productCount", "", "") == 3
    assert run(analytics, "cheapest", "", "{ name rank }") == {"name": "Kite", "rank": 1}


def test_a_failing_query_fails_the_task_with_the_engines_reason(analytics: LoadedApp) -> None:
    task_id = trigger(analytics, "broken")
    analytics.settle()

    result = task_result(analytics, "broken", task_id, "")
    assert result["taskStatus"] == "FAILED"
    assert result["result"] is None
    assert result["finishDate"] is not None
    assert "Kite" in result["errorMessage"] or "convert" in result["errorMessage"].lower()


def test_a_task_id_is_only_good_for_its_own_field(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    task_id = trigger(shop, "usersByCity", 'city: "Paris"')
    shop.settle()

    wrong = shop.error_messages(
        f'{{ taskResultFavoriteProducts(taskId: "{task_id}") {{ taskStatus }} }}'
    )
    unknown = shop.error_messages('{ taskResultUsersByCity(taskId: "nope") { taskStatus } }')

    assert wrong == [
        f"no task '{task_id}' of favoriteProducts: use the taskId its trigger returned"
    ]
    assert unknown == ["no task 'nope' of usersByCity: use the taskId its trigger returned"]


def test_results_can_be_read_in_pages(analytics: LoadedApp) -> None:
    task_id = trigger(analytics, "rankedProducts", 'since: "2000-01-01T00:00:00Z"')
    analytics.settle()

    names, token, pages = [], None, 0
    while True:
        after = f', nextToken: "{token}"' if token else ""
        query = (
            f'{{ taskResultRankedProducts(taskId: "{task_id}", limit: 2{after}) '
            "{ result { name } nextToken } }"
        )
        page = analytics.data(query)["taskResultRankedProducts"]
        names += [row["name"] for row in page["result"]]
        pages += 1
        token = page["nextToken"]
        if token is None:
            break
    assert names == ["Boat", "Kite", "Yoyo"]
    assert pages == 2

    bad_token = analytics.error_messages(
        f'{{ taskResultRankedProducts(taskId: "{task_id}", nextToken: "forged") {{ taskStatus }} }}'
    )
    bad_limit = analytics.error_messages(
        f'{{ taskResultRankedProducts(taskId: "{task_id}", limit: 0) {{ taskStatus }} }}'
    )
    assert bad_token == [
        "taskResultRankedProducts: nextToken 'forged' was not issued for the result of "
        f"task {task_id}"
    ]
    assert bad_limit == ["taskResultRankedProducts: limit must be between 1 and 1000, got 0"]


EVENTS = Path(__file__).resolve().parent / "events"


def test_the_tracker_handler_fails_a_task_from_athenas_event(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    hold_queries(shop)
    task_id = trigger(shop, "usersByCity", 'city: "Paris"')
    event = json.loads((EVENTS / "athena_failed.json").read_text())
    event["detail"]["queryExecutionId"] = task_id
    event["detail"]["workgroupName"] = shop.services.settings.athena_workgroup

    shop.client.lambda_.invoke("on_athena_state_change", event)
    shop.client.lambda_.invoke("on_athena_state_change", event)  # a duplicate

    result = task_result(shop, "usersByCity", task_id, "{ name }")
    assert result["taskStatus"] == "FAILED"
    assert result["errorMessage"] == event["detail"]["athenaError"]["errorMessage"]
    assert result["finishDate"] == "2026-11-23T19:22:20.000Z"  # the event's time
    assert result["result"] is None


def test_state_changes_of_another_workgroup_never_reach_the_tracker(shop: LoadedApp) -> None:
    event = json.loads((EVENTS / "athena_succeeded.json").read_text())
    event["detail"]["workgroupName"] = "someone-elses"

    assert shop.services.local_runtime.events.publish(event) == []


STATISTICS = "statistics { dataScannedBytes engineMillis queueMillis resultReused }"


def statistics(app: LoadedApp, task_id: str) -> dict[str, Any]:
    query = f'{{ taskResultUsersByCity(taskId: "{task_id}") {{ taskStatus {STATISTICS} }} }}'
    result: dict[str, Any] = app.data(query)["taskResultUsersByCity"]
    assert result["taskStatus"] == "SUCCEEDED", result
    return dict(result["statistics"])


def test_a_finished_task_tells_what_its_query_cost(
    shop: LoadedApp, shop_data: dict[str, str]
) -> None:
    task_id = trigger(shop, "usersByCity", 'city: "Paris"')
    running = shop.data(f'{{ taskResultUsersByCity(taskId: "{task_id}") {{ {STATISTICS} }} }}')
    shop.settle()

    assert running["taskResultUsersByCity"]["statistics"] in (None, statistics(shop, task_id))
    cost = statistics(shop, task_id)
    lake = shop.services.settings.local_lake_dir
    on_disk = sum(path.stat().st_size for path in lake.rglob("*.parquet"))
    # The files of the tables it reads (user, address): some of the lake, not nothing.
    assert 0 < cost["dataScannedBytes"] < on_disk
    assert cost["engineMillis"] >= 0 and cost["queueMillis"] >= 0
    assert cost["resultReused"] is False
    # Off by default: the same query runs again.
    again = trigger(shop, "usersByCity", 'city: "Paris"')
    shop.settle()
    assert statistics(shop, again)["resultReused"] is False


def test_a_stage_that_opts_in_reuses_an_identical_querys_result(
    load_app: Callable[..., LoadedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCG_RESULT_REUSE_MINUTES", "5")
    app = load_app()
    paris = app.data('mutation { createUser(input: {name: "Ann", email: "a@x.org"}) { id } }')
    app.data(
        'mutation ($u: ID!) { createAddress(input: {userId: $u, city: "Paris", country: "FR"}) '
        "{ id } }",
        {"u": paris["createUser"]["id"]},
    )
    app.settle()
    first = run(app, "usersByCity", 'city: "Paris"', "{ name }")

    task_id = trigger(app, "usersByCity", 'city: "Paris"')
    app.settle()
    reused = statistics(app, task_id)
    assert reused["resultReused"] is True and reused["dataScannedBytes"] == 0
    assert task_result(app, "usersByCity", task_id, "{ name }")["result"] == first
    other = trigger(app, "usersByCity", 'city: "Rome"')
    app.settle()
    assert statistics(app, other)["resultReused"] is False
