"""The ``on_ws_*`` handlers of ``app.py`` as Lambda invokes them, with API Gateway's
WebSocket events (``tests/events/websocket_*.json``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.subscriptions import SubscriptionRegistry
from tests.conftest import LoadedApp, create

EVENTS = Path(__file__).resolve().parent.parent / "events"


def event(name: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"websocket_{name}.json").read_text())
    return {**loaded, **changes}


def test_a_connection_lives_from_connect_to_disconnect(
    shop: LoadedApp, hub_of: Callable[..., Any]
) -> None:
    _, recorder = hub_of(shop)
    app = shop.module
    connect = event("connect")
    connection_id = connect["requestContext"]["connectionId"]

    answer = app.on_ws_connect(connect, None)
    app.on_ws_message(event("message"), None)
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": "subscription { onCreateUser { id } }"},
    }
    app.on_ws_message(event("message", body=json.dumps(subscribe)), None)
    registry = SubscriptionRegistry(
        shop.services.client("dynamodb"), shop.services.settings.table_name
    )
    subscribed = [s.connection_id for s in registry.subscribers("user#create")]
    app.on_ws_disconnect(event("disconnect"), None)

    assert answer["statusCode"] == 200
    assert answer["headers"]["Sec-WebSocket-Protocol"] == "graphql-transport-ws"
    assert recorder.sent[connection_id] == [{"type": "connection_ack"}]
    assert subscribed == [connection_id]
    assert list(registry.subscribers("user#create")) == []


def test_a_connect_without_the_protocol_is_refused(shop: LoadedApp) -> None:
    connect = event("connect")
    del connect["headers"]["Sec-WebSocket-Protocol"]

    answer = shop.module.on_ws_connect(connect, None)

    assert answer["statusCode"] == 400


def test_a_failed_push_never_holds_the_lake_back(
    shop: LoadedApp, hub_of: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    clients, recorder = hub_of(shop)
    client = clients("c")
    client.init()
    client.subscribe("s", "subscription { onCreateBrand { name } }")

    def broken(connection_id: str, message: Any) -> bool:
        raise RuntimeError("the Management API is down")

    recorder.send = broken
    create(shop, "Brand", name="Acme")
    shop.settle()

    assert "pushing to subscribers failed" in caplog.text
    lake = shop.services.settings.local_lake_dir / "tables" / "brand"
    assert len(list(lake.rglob("*.parquet"))) == 1
