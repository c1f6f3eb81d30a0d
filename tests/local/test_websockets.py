"""Local WebSocket API: real clients reach the app's ``on_ws_*`` handlers with API
Gateway's event shapes, and the management API reaches the clients as boto3's
``apigatewaymanagementapi`` client would."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.app import Chalice, WebsocketEvent
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chalicelib.local import websockets as local_websockets
from chalicelib.local.websockets import LocalManagementApi, LocalWebSockets

EVENTS = Path(__file__).resolve().parent.parent / "events"
GRAPHQL_WS = "graphql-transport-ws"
TIMEOUT = 10.0


class Recorder:
    """The events the handlers received (and the function each ran as), for tests to
    wait on: handlers run on the server's connection threads."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.function_names: list[str] = []
        self._changed = threading.Condition()

    def add(self, event: WebsocketEvent) -> None:
        with self._changed:
            self.events.append(event.to_dict())
            context: Any = event.context
            self.function_names.append(context.function_name)
            self._changed.notify_all()

    def of(self, route_key: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e for e in self.events if e["requestContext"]["routeKey"] == route_key]

    def wait(self, route_key: str, count: int) -> list[dict[str, Any]]:
        """The first ``count`` events of the route, once they have all come."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.of(route_key)) >= count, TIMEOUT)
        return self.of(route_key)[:count]


def websocket_app(recorder: Recorder, management: Callable[[], LocalManagementApi]) -> Chalice:
    """Handlers that record every event. ``$connect`` refuses with the status in
    ``?refuse=``, fails on ``?fail``, and names the subprotocol in ``?protocol=``;
    ``$default`` posts back what follows ``echo `` and fails on ``boom``."""
    app = Chalice(app_name="t")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.on_ws_connect()
    def connect_(event: WebsocketEvent) -> dict[str, Any]:
        recorder.add(event)
        query = event.to_dict().get("queryStringParameters") or {}
        if "fail" in query:
            raise RuntimeError("a failing $connect")
        if "refuse" in query:
            return {"statusCode": int(query["refuse"]), "body": "go away"}
        if "protocol" in query:
            headers = {"Sec-WebSocket-Protocol": query["protocol"], "X-Local": "yes"}
            return {"statusCode": 200, "headers": headers}
        return {"statusCode": 200}

    @app.on_ws_message()
    def message(event: WebsocketEvent) -> None:
        recorder.add(event)
        if event.body == "boom":
            raise RuntimeError("a failing message")
        if event.body.startswith("echo "):
            data = event.body.removeprefix("echo ").encode()
            management().post_to_connection(ConnectionId=event.connection_id, Data=data)

    @app.on_ws_disconnect()
    def disconnect(event: WebsocketEvent) -> None:
        recorder.add(event)

    return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWebSockets]:
    # Lambda always has the region; Chalice's websocket handler reads it.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    local: LocalWebSockets | None = None

    def management() -> LocalManagementApi:
        assert local is not None
        return local.management

    local = LocalWebSockets(websocket_app(recorder, management), port=0)
    local.start()
    yield local
    local.stop()


def fixture(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"websocket_{name}.json").read_text())
    return event


def open_client(server: LocalWebSockets, query: str = "", **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("close_timeout", TIMEOUT)
    return connect(server.url + query, open_timeout=TIMEOUT, **kwargs)


def error_code(call: Callable[..., Any], **kwargs: Any) -> str:
    """The code of the ``ClientError`` that ``call(**kwargs)`` raises."""
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    code: str = raised.value.response["Error"]["Code"]
    return code


def test_a_connection_gets_api_gateways_connect_message_and_disconnect_events(
    server: LocalWebSockets, recorder: Recorder
) -> None:
    with open_client(server, "?a=1&a=2&b=x", additional_headers={"X-Test": "yes"}) as client:
        client.send("hello")
        client.send(b"\x00\xff")
        recorder.wait("$default", 2)
    connected, disconnected = recorder.wait("$connect", 1)[0], recorder.wait("$disconnect", 1)[0]
    text, binary = recorder.of("$default")

    context = connected["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("$connect", "CONNECT")
    assert (context["apiId"], context["stage"], context["messageDirection"]) == (
        "local",
        "local",
        "IN",
    )
    assert context["domainName"] == server.url.removeprefix("ws://").rstrip("/")
    assert len(context["connectionId"]) == 16 and context["connectionId"].endswith("=")
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"].startswith("Python/")
    assert context["requestTimeEpoch"] >= context["connectedAt"]
    assert connected["headers"]["X-Test"] == "yes"
    assert connected["multiValueHeaders"]["X-Test"] == ["yes"]
    assert connected["queryStringParameters"] == {"a": "2", "b": "x"}
    assert connected["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert connected["isBase64Encoded"] is False

    assert (text["body"], text["isBase64Encoded"]) == ("hello", False)
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\x00\xff", True)
    assert text["requestContext"]["eventType"] == "MESSAGE"
    assert text["requestContext"]["messageId"] != binary["requestContext"]["messageId"]

    ended = disconnected["requestContext"]
    assert (ended["eventType"], ended["disconnectStatusCode"], ended["disconnectReason"]) == (
        "DISCONNECT",
        1000,
        "",
    )
    for event in (text, binary, disconnected):
        for key in ("connectionId", "connectedAt", "identity", "domainName"):
            assert event["requestContext"][key] == context[key]
        assert event["requestContext"]["requestId"] != context["requestId"]
    assert recorder.function_names == [
        "t-local-websocket_connect",
        "t-local-websocket_message",
        "t-local-websocket_message",
        "t-local-websocket_disconnect",
    ]


def test_events_have_the_keys_of_the_fixtures(server: LocalWebSockets, recorder: Recorder) -> None:
    """The fixtures other tests feed to handlers look like what this server sends."""
    with open_client(server) as client:
        client.send(json.dumps({"type": "connection_init", "payload": {}}))
        recorder.wait("$default", 1)
    served = {
        "connect": recorder.wait("$connect", 1)[0],
        "message": recorder.wait("$default", 1)[0],
        "disconnect": recorder.wait("$disconnect", 1)[0],
    }
    for name, event in served.items():
        expected = fixture(name)
        assert set(event) == set(expected), name
        assert set(event["requestContext"]) == set(expected["requestContext"]), name
        assert set(event["requestContext"]["identity"]) == set(
            expected["requestContext"]["identity"]
        ), name
    assert "queryStringParameters" not in served["connect"]


def test_a_subprotocol_is_accepted_only_when_connect_names_it(server: LocalWebSockets) -> None:
    with open_client(server, f"?protocol={GRAPHQL_WS}", subprotocols=[GRAPHQL_WS]) as named:
        assert named.subprotocol == GRAPHQL_WS
        assert named.response is not None and named.response.headers["X-Local"] == "yes"
    with open_client(server, subprotocols=[GRAPHQL_WS]) as unnamed:
        assert unnamed.subprotocol is None
    with open_client(server, "?protocol=other", subprotocols=[GRAPHQL_WS]) as other:
        assert other.subprotocol is None


def test_a_refused_or_failing_connect_refuses_the_handshake(
    server: LocalWebSockets, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    for query, status in (("?refuse=403", 403), ("?refuse=401", 401), ("?fail", 500)):
        with pytest.raises(InvalidStatus) as refused:
            open_client(server, query)
        assert refused.value.response.status_code == status
    assert "$connect handler failed" in caplog.text
    with open_client(server) as client:
        client.send("echo still serving")
        assert client.recv(TIMEOUT) == "still serving"
    assert len(recorder.wait("$disconnect", 1)) == len(recorder.of("$disconnect")) == 1


def test_a_failing_message_handler_is_logged_and_the_connection_carries_on(
    server: LocalWebSockets, caplog: pytest.LogCaptureFixture
) -> None:
    with open_client(server) as client:
        client.send("boom")
        client.send("echo after")
        assert client.recv(TIMEOUT) == "after"
    assert "$default handler failed" in caplog.text


def test_messages_reach_the_handler_and_posts_reach_the_client_in_order(
    server: LocalWebSockets, recorder: Recorder
) -> None:
    with open_client(server) as client:
        connection_id = recorder.wait("$connect", 1)[0]["requestContext"]["connectionId"]
        for n in range(100):
            client.send(f"echo {n}")
        for n in range(100, 300):
            server.management.post_to_connection(ConnectionId=connection_id, Data=str(n))
        received = [client.recv(TIMEOUT) for _ in range(300)]
        bodies = [e["body"] for e in recorder.wait("$default", 100)]
    assert bodies == [f"echo {n}" for n in range(100)]
    assert sorted(received, key=int) == [str(n) for n in range(300)]
    echoes = [int(m) for m in received if int(m) < 100]
    posts = [int(m) for m in received if int(m) >= 100]
    assert echoes == sorted(echoes) and posts == sorted(posts)


def test_get_connection_describes_an_open_connection(
    server: LocalWebSockets, recorder: Recorder
) -> None:
    with open_client(server) as client:
        connection_id = recorder.wait("$connect", 1)[0]["requestContext"]["connectionId"]
        client.send("hello")
        recorder.wait("$default", 1)
        described = server.management.get_connection(ConnectionId=connection_id)
    assert isinstance(described["ConnectedAt"], datetime)
    assert described["LastActiveAt"] >= described["ConnectedAt"]
    assert described["Identity"]["SourceIp"] == "127.0.0.1"
    assert described["Identity"]["UserAgent"].startswith("Python/")


def test_a_closed_or_unknown_connection_is_gone(
    server: LocalWebSockets, recorder: Recorder
) -> None:
    with open_client(server):
        connection_id = recorder.wait("$connect", 1)[0]["requestContext"]["connectionId"]
    recorder.wait("$disconnect", 1)
    api = server.management
    for known in (connection_id, "NoSuchConnId0A="):
        for call, kwargs in (
            (api.post_to_connection, {"Data": b"x"}),
            (api.get_connection, {}),
            (api.delete_connection, {}),
        ):
            assert error_code(call, ConnectionId=known, **kwargs) == "GoneException"


def test_delete_connection_closes_the_socket_and_disconnects_once(
    server: LocalWebSockets, recorder: Recorder
) -> None:
    with open_client(server) as client:
        connection_id = recorder.wait("$connect", 1)[0]["requestContext"]["connectionId"]
        response = server.management.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            client.recv(TIMEOUT)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    disconnected = recorder.wait("$disconnect", 1)[0]["requestContext"]
    assert (disconnected["connectionId"], disconnected["disconnectStatusCode"]) == (
        connection_id,
        1000,
    )
    assert len(recorder.of("$disconnect")) == 1


def test_stop_disconnects_everyone(server: LocalWebSockets, recorder: Recorder) -> None:
    clients = [open_client(server) for _ in range(3)]
    recorder.wait("$connect", 3)
    server.stop()
    server.stop()
    for client in clients:
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        client.close()
    assert {
        (e["requestContext"]["disconnectStatusCode"], e["requestContext"]["disconnectReason"])
        for e in recorder.of("$disconnect")
    } == {(1001, "Going away")}
    assert len(recorder.of("$disconnect")) == 3


def test_a_client_that_stops_reading_is_dropped_instead_of_blocking_posters(
    server: LocalWebSockets, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_websockets, "SEND_TIMEOUT_SECONDS", 1)
    # A client whose queue of unread messages is full stops reading from its socket
    # (without compression, which would shrink the posts to nothing).
    # It cannot read the server's close either: its own close gives up at once.
    with open_client(server, max_queue=1, compression=None, close_timeout=0):
        connection_id = recorder.wait("$connect", 1)[0]["requestContext"]["connectionId"]
        started = time.monotonic()
        with pytest.raises(ClientError) as gone:
            for _ in range(10_000):
                server.management.post_to_connection(ConnectionId=connection_id, Data="x" * 65536)
        assert gone.value.response["Error"]["Code"] == "GoneException"
        assert time.monotonic() - started < TIMEOUT
        disconnected = recorder.wait("$disconnect", 1)[0]["requestContext"]
    assert disconnected["disconnectStatusCode"] == 1006


def test_a_hundred_concurrent_connections_each_receive_their_post(
    server: LocalWebSockets, recorder: Recorder
) -> None:
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=100) as pool:
        clients = list(pool.map(lambda _: stack.enter_context(open_client(server)), range(100)))
        ids = [e["requestContext"]["connectionId"] for e in recorder.wait("$connect", 100)]
        list(pool.map(lambda i: server.management.post_to_connection(ConnectionId=i, Data=i), ids))
        received = list(pool.map(lambda client: client.recv(TIMEOUT), clients))
    assert sorted(received) == sorted(ids) and len(set(ids)) == 100
    assert len(recorder.wait("$disconnect", 100)) == 100
