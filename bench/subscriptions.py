"""Push latency of GraphQL subscriptions on the local default, with 100 open subscriptions.

A real ``chalice local`` (as ``make run`` starts it) serves the API; 100 WebSocket
clients speak ``graphql-transport-ws`` to its WebSocket port, each subscribed to
``onCreateBrand``. Measured:

- **entity change**: from the moment ``createBrand`` answered to the moment each of the
  100 subscribers received the change (target: within 300 ms);
- **task result**: from the task's ``finishDate`` (when the engine finished it) to the
  moment its subscriber received the result (target: within 200 ms).

Prints medians, 95th percentiles and maxima.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any

from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench._local import Api, chalice_local, free_port

SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", "100"))
CHANGES = 20
TASKS = 10
PROTOCOL = "graphql-transport-ws"


def _client(url: str) -> ClientConnection:
    socket = connect(url, subprotocols=[Subprotocol(PROTOCOL)], open_timeout=30)
    socket.send(json.dumps({"type": "connection_init"}))
    assert json.loads(socket.recv(30))["type"] == "connection_ack"
    return socket


def _subscribe(socket: ClientConnection, query: str, variables: dict[str, Any]) -> None:
    payload = {"query": query, "variables": variables}
    socket.send(json.dumps({"id": "s", "type": "subscribe", "payload": payload}))
    # Messages of a socket are handled in order: once the ping's pong is back, the
    # server holds the subscription.
    socket.send(json.dumps({"type": "ping"}))
    while json.loads(socket.recv(30))["type"] != "pong":
        pass


@contextmanager
def _server() -> Iterator[tuple[Api, str]]:
    port, ws_port = free_port(), free_port()
    os.environ["WS_PORT"] = str(ws_port)
    with tempfile.TemporaryDirectory() as local_dir, chalice_local(local_dir, port):
        yield Api(port), f"ws://127.0.0.1:{ws_port}/"


def _arrivals(sockets: list[ClientConnection], act: Any) -> list[float]:
    """When each socket received its next ``next`` message, read on a thread each,
    after ``act()`` (started once every reader waits)."""
    arrivals = [0.0] * len(sockets)

    def read(index: int) -> None:
        message = json.loads(sockets[index].recv(60))
        assert message["type"] == "next", message
        arrivals[index] = time.time()

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(sockets))]
    for thread in threads:
        thread.start()
    act()
    for thread in threads:
        thread.join()
    return arrivals


class _Clock:
    at = 0.0


def _create(api: Api, name: str, answered: _Clock) -> None:
    api("mutation($n: String!) { createBrand(input: {name: $n}) { id } }", {"n": name})
    answered.at = time.time()


def entity_latencies(api: Api, url: str) -> list[float]:
    with ExitStack() as stack:
        sockets: list[ClientConnection] = []
        for _ in range(SUBSCRIBERS):
            sockets.append(_client(url))
            stack.callback(sockets[-1].close)
        for socket in sockets:
            _subscribe(socket, "subscription { onCreateBrand { id name } }", {})
        latencies = []
        for index in range(CHANGES):
            answered = _Clock()
            arrivals = _arrivals(
                sockets, lambda name=f"b{index}", clock=answered: _create(api, name, clock)
            )
            latencies += [max(0.0, arrival - answered.at) for arrival in arrivals]
        return latencies


def task_latencies(api: Api, url: str) -> list[float]:
    latencies = []
    query = """subscription($t: ID!) {
      onTaskResultUsersByCity(taskId: $t) { taskStatus finishDate result { id } } }"""
    for _ in range(TASKS):
        with _client(url) as socket:
            trigger = 'mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }'
            task = api(trigger)["triggerTaskUsersByCity"]["taskId"]
            payload = {"query": query, "variables": {"t": task}}
            socket.send(json.dumps({"id": "t", "type": "subscribe", "payload": payload}))
            while True:
                message = json.loads(socket.recv(60))
                arrived = time.time()
                if message["type"] != "next":
                    break
                state = message["payload"]["data"]["onTaskResultUsersByCity"]
                if state["taskStatus"] == "SUCCEEDED":
                    finished = datetime.fromisoformat(state["finishDate"]).timestamp()
                    latencies.append(max(0.0, arrived - finished))
    return latencies


def _row(name: str, seconds: list[float], target_ms: int) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    median = statistics.median(ordered)
    return (
        f"{name:<16}{len(ordered):>8}{median * 1000:>12.1f}{p95 * 1000:>10.1f}"
        f"{ordered[-1] * 1000:>10.1f}{target_ms:>10}"
    )


def main() -> None:
    with _server() as (api, url):
        entity = entity_latencies(api, url)
        task = task_latencies(api, url)
    print(f"{'push':<16}{'events':>8}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}{'target':>10}")
    print(_row("entity change", entity, 300))
    print(_row("task result", task, 200))
    print(f"({SUBSCRIBERS} subscribers to every entity change)")


if __name__ == "__main__":
    main()
