"""The cap on task triggers per request, through real GraphQL requests to the app: a
refused request writes no task item and starts no query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import keys
from tests.conftest import LoadedApp


def triggers(
    count: int, field: str = "triggerTaskUsersByCity", arguments: str = 'city: "X"'
) -> str:
    return " ".join(f"t{i}: {field}({arguments}) {{ taskId }}" for i in range(count))


def task_items(app: LoadedApp) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = app.services.client("dynamodb").scan(
        TableName=app.services.settings.table_name,
        FilterExpression="begins_with(PK, :task)",
        ExpressionAttributeValues={":task": {"S": f"{keys.TASK_PREFIX}#"}},
    )["Items"]
    return items


def record_starts(app: LoadedApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every query the app's engine is asked to start."""
    engine = app.services.query_engine
    start = engine.start
    started: list[str] = []

    def recording(sql: str, request_token: str) -> str:
        started.append(sql)
        execution_id: str = start(sql, request_token)
        return execution_id

    monkeypatch.setattr(engine, "start", recording)
    return started


def refused(app: LoadedApp, query: str) -> list[dict[str, Any]]:
    result = app.graphql(query)
    assert result.get("data") is None, result
    errors: list[dict[str, Any]] = result["errors"]
    return errors


def test_six_aliased_triggers_are_refused_before_anything_runs(
    shop: LoadedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = record_starts(shop, monkeypatch)

    errors = refused(shop, f"mutation {{ {triggers(6)} }}")

    assert errors == [
        {
            "message": "this operation triggers 6 tasks; at most 5 are allowed per request",
            "locations": [{"line": 1, "column": 1}],
        }
    ]
    assert started == []
    assert task_items(shop) == []


def test_five_triggers_start_five_tasks(shop: LoadedApp, monkeypatch: pytest.MonkeyPatch) -> None:
    started = record_starts(shop, monkeypatch)

    data = shop.data(f"mutation {{ {triggers(5)} }}")

    assert len({data[f"t{i}"]["taskId"] for i in range(5)}) == 5
    assert len(started) == 5
    assert len(task_items(shop)) == 5
    shop.settle()


def test_triggers_in_fragments_and_inline_fragments_are_counted(
    shop: LoadedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = record_starts(shop, monkeypatch)
    query = """
      mutation Hidden {
        a: triggerTaskUsersByCity(city: "A") { taskId }
        ...More
        ... on Mutation { b: triggerTaskFavoriteProducts(userId: "u") { taskId } }
        ... @include(if: false) { c: triggerTaskBrandPopularity { taskId } }
      }
      fragment More on Mutation {
        d: triggerTaskUsersByCity(city: "D") { taskId }
        ... on Mutation { e: triggerTaskUsersByCity(city: "E") { taskId } }
        f: triggerTaskBrandPopularity @skip(if: true) { taskId }
      }
    """

    (error,) = refused(shop, query)

    assert (
        error["message"] == "operation Hidden triggers 6 tasks; at most 5 are allowed per request"
    )
    assert error["locations"] == [{"line": 2, "column": 7}]
    assert started == []
    assert task_items(shop) == []


def test_two_deletion_triggers_are_refused(
    shop: LoadedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = record_starts(shop, monkeypatch)
    query = """mutation {
      a: triggerTaskRemoveFavoritesOfProduct(productId: "p") { taskId }
      b: triggerTaskRemoveFavoritesOfBrand(brandId: "b") { taskId }
    }"""

    (error,) = refused(shop, query)

    assert error["message"] == (
        "this operation triggers 2 deletion tasks; at most 1 is allowed per request"
    )
    assert started == []
    assert task_items(shop) == []


def test_the_caps_are_settings_of_the_stage(
    load_app: Callable[..., LoadedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCG_MAX_TASK_TRIGGERS", "2")
    monkeypatch.setenv("OCG_MAX_DELETION_TRIGGERS", "2")
    app = load_app()
    started = record_starts(app, monkeypatch)

    (error,) = refused(app, f"mutation {{ {triggers(3)} }}")
    assert error["message"] == "this operation triggers 3 tasks; at most 2 are allowed per request"
    deletions = triggers(2, "triggerTaskRemoveFavoritesOfProduct", 'productId: "p"')
    data = app.data(f"mutation {{ {deletions} }}")

    assert len({data["t0"]["taskId"], data["t1"]["taskId"]}) == 2
    assert len(started) == 2
    app.settle()
