"""A recorder in place of WebSocket sockets, and a client speaking the protocol to a hub."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from chalicelib.services import Services
from chalicelib.subscriptions import PROTOCOL, SubscriptionHub, SubscriptionRegistry


class Recorder:
    """Connections that record: what each was sent, how it was closed; some are gone."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.closed: dict[str, tuple[int, str]] = {}
        self.gone: set[str] = set()

    def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        if connection_id in self.gone:
            return False
        self.sent[connection_id].append(json.loads(json.dumps(message)))
        return True

    def close(self, connection_id: str, code: int, reason: str) -> None:
        self.closed[connection_id] = (code, reason)


class Client:
    """One WebSocket client of the hub, speaking the protocol message by message."""

    def __init__(self, hub: SubscriptionHub, recorder: Recorder, connection_id: str) -> None:
        self.hub = hub
        self.recorder = recorder
        self.id = connection_id

    def connect(self, protocols: str = PROTOCOL) -> dict[str, Any]:
        return self.hub.connected(self.id, {"Sec-WebSocket-Protocol": protocols})

    def send(self, message: Mapping[str, Any] | str) -> None:
        self.hub.received(self.id, message if isinstance(message, str) else json.dumps(message))

    def init(self, token: str | None = None) -> None:
        self.connect()
        self.send({"type": "connection_init", "payload": {"Authorization": token} if token else {}})
        assert self.messages()[-1] == {"type": "connection_ack"}

    def subscribe(self, sid: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        self.send({"id": sid, "type": "subscribe", "payload": payload})

    def messages(self) -> list[dict[str, Any]]:
        return self.recorder.sent[self.id]

    @property
    def closed(self) -> tuple[int, str] | None:
        return self.recorder.closed.get(self.id)


def hub_over(
    services: Services,
    recorder: Recorder,
    registry: type[SubscriptionRegistry] = SubscriptionRegistry,
) -> SubscriptionHub:
    """The app's hub, its sockets the recorder, its registry of the given kind."""
    return SubscriptionHub(
        services,
        lambda: services.graphql_endpoint,
        registry(services.client("dynamodb"), services.settings.table_name),
        recorder,
        services.authenticate,
        services.model,
    )
