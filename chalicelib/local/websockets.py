"""Local WebSocket API: what API Gateway's WebSocket API does on AWS, for the embedded default.

``chalice local`` serves HTTP routes only. On AWS, API Gateway holds the clients'
sockets and invokes the ``@app.on_ws_connect``/``on_ws_message``/``on_ws_disconnect``
Lambda functions with its event shapes, and other functions answer clients through
boto3's ``apigatewaymanagementapi`` client. :class:`LocalWebSockets` does both
in-process, on the ``websockets`` library's threaded server:

* The ``$connect`` handler runs during the opening handshake, with the upgrade
  request's headers and query string. A non-2xx ``statusCode`` refuses the handshake
  with that status; headers it returns go on the handshake response. As on API
  Gateway, a subprotocol the client offers is accepted only when the ``$connect``
  response names it in ``Sec-WebSocket-Protocol`` (``graphql-transport-ws`` clients
  depend on it).
* Each message goes to ``$default`` on the connection's own thread: one at a time per
  connection, in the order received. Binary frames arrive base64-encoded.
* ``$disconnect`` runs exactly once per connection, whichever side closed it.
* :class:`LocalManagementApi` posts to, closes and describes these sockets, raising
  boto3's ``GoneException`` for a connection that is unknown or closed.

A handler that raises is logged; the connection and the server carry on (API Gateway
answers such a message with an internal-error frame). Like Lambda, Chalice's websocket
handler needs the region in the environment (``AWS_REGION``/``AWS_DEFAULT_REGION``,
which the embedded AWS sets).
"""

from __future__ import annotations

import base64
import http
import json
import logging
import os
import secrets
import string
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from socket import SO_SNDTIMEO, SOL_SOCKET
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import ClientError
from chalice.app import Chalice
from chalice.local import LambdaContext
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from chalicelib.local.events import LAMBDA_MEMORY_MB, LAMBDA_TIMEOUT_MS

logger = logging.getLogger(__name__)

# The Lambda functions Chalice deploys for the three routes ("<app>-<stage>-<name>").
FUNCTION_NAMES = {
    "$connect": "websocket_connect",
    "$default": "websocket_message",
    "$disconnect": "websocket_disconnect",
}
# A client that never answers a close frame holds delete_connection and stop() no longer.
CLOSE_TIMEOUT_SECONDS = 2.0
# A client that stops reading is dropped (1006) once a write to it has found no room in
# the socket's buffers for this long: a post to it then fails with GoneException instead
# of blocking the poster for good (a write that trickles out may take a few such spells).
SEND_TIMEOUT_SECONDS = 5
# How long stop() waits for the last $disconnect handlers to finish.
STOP_TIMEOUT_SECONDS = 30.0
# Pending connections the listening socket queues: enough for bursts of clients (the
# standard library's default of 5 resets some of 32 concurrent ones).
LISTEN_BACKLOG = 1024
# API Gateway's close code and reason when it closes sockets itself (stage redeployed,
# idle timeout), and its reason for a client's close frame without a status.
GOING_AWAY = (1001, "Going away")
NO_STATUS_REASON = "Client-side close frame status not set"
# The headers API Gateway gives the $disconnect event: the upgrade request is long gone.
DISCONNECT_HEADER_NAMES = ("x-api-key", "X-Forwarded-For", "x-restapi")
_ID_ALPHABET = string.ascii_letters + string.digits


def _api_gateway_id() -> str:
    """A connection or request id shaped like API Gateway's (``ZxY1abcdIAMCJQw=``),
    without ``+`` or ``/`` so it needs no escaping in a management API URL."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _as_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _gone(operation: str, connection_id: str) -> ClientError:
    """The error boto3's ``apigatewaymanagementapi`` client raises for such a connection."""
    error = {"Code": "GoneException", "Message": f"Connection {connection_id} is gone"}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 410}}, operation)


def _ok(status: int = 200) -> dict[str, Any]:
    """boto3's metadata of a successful management API call."""
    metadata = {"RequestId": _api_gateway_id(), "HTTPStatusCode": status, "RetryAttempts": 0}
    return {"ResponseMetadata": metadata}


def _request_headers(headers: Headers) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``headers`` and ``multiValueHeaders`` as API Gateway builds them: names as sent,
    the last value of a repeated header in ``headers``."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers.raw_items():
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _response_headers(response: dict[str, Any]) -> Headers:
    """The headers of a ``$connect`` Lambda response (single and multi-value)."""
    headers = Headers()
    for name, value in (response.get("headers") or {}).items():
        headers[name] = str(value)
    for name, values in (response.get("multiValueHeaders") or {}).items():
        for value in values:
            headers[name] = str(value)
    return headers


def _limit_send_time(socket: ServerConnection) -> None:
    """Make a send that cannot progress fail after ``SEND_TIMEOUT_SECONDS`` (websockets
    then closes the connection and the poster gets ``GoneException``). A kernel send
    timeout, not a Python socket timeout, which would also time out the idle reads."""
    timeval = struct.pack("ll", SEND_TIMEOUT_SECONDS, 0)
    socket.socket.setsockopt(SOL_SOCKET, SO_SNDTIMEO, timeval)


@dataclass
class _Client:
    """What API Gateway knows about one connection, from its ``$connect`` on."""

    connection_id: str
    domain_name: str
    identity: dict[str, str]
    connected_at: int = field(default_factory=_now_ms)
    last_active_at: int = field(default_factory=_now_ms)
    # Headers of the $connect response, put on the handshake response.
    handshake_headers: Headers = field(default_factory=Headers)


class _ClientSocket(ServerConnection):
    """A server-side socket with its API Gateway connection (``None`` until ``$connect``
    accepts it) and the server that announced it, once announced."""

    client: _Client | None = None
    server: LocalWebSockets | None = None

    def handshake(self, *args: Any, **kwargs: Any) -> None:
        """Open the connection; if the accepting response never reached the client, the
        connection ends here, with its ``$disconnect`` as on API Gateway."""
        try:
            super().handshake(*args, **kwargs)
        except BaseException:
            if self.server is not None:
                self.server.end(self)
            raise


class LocalManagementApi:
    """What boto3's ``apigatewaymanagementapi`` client does, for sockets of this server.

    Called like the boto3 client (keyword arguments, boto3's response shapes and
    ``ClientError`` codes), so code that posts to clients runs unchanged against it.
    """

    def __init__(self, server: LocalWebSockets) -> None:
        self._server = server

    def post_to_connection(self, *, ConnectionId: str, Data: bytes | str) -> dict[str, Any]:
        """Send ``Data`` to the client as one text frame.

        websockets' ``send`` writes a frame under the connection's own lock, so posts
        from any number of threads never interleave, and one poster's messages arrive in
        the order it posted them. Each returns once the kernel took its bytes; a client
        that stops reading is dropped after ``SEND_TIMEOUT_SECONDS`` (GoneException).
        """
        client, socket = self._server.open_socket(ConnectionId, "PostToConnection")
        text = Data.decode() if isinstance(Data, bytes) else Data
        try:
            socket.send(text)
        except ConnectionClosed as closed:
            raise _gone("PostToConnection", ConnectionId) from closed
        client.last_active_at = _now_ms()
        return _ok()

    def delete_connection(self, *, ConnectionId: str) -> dict[str, Any]:
        """Close the socket; its ``$disconnect`` follows on the connection's thread."""
        _, socket = self._server.open_socket(ConnectionId, "DeleteConnection")
        socket.close()
        return _ok(204)

    def get_connection(self, *, ConnectionId: str) -> dict[str, Any]:
        client, _ = self._server.open_socket(ConnectionId, "GetConnection")
        identity = {"SourceIp": client.identity["sourceIp"]}
        if "userAgent" in client.identity:
            identity["UserAgent"] = client.identity["userAgent"]
        return {
            **_ok(),
            "ConnectedAt": _as_datetime(client.connected_at),
            "Identity": identity,
            "LastActiveAt": _as_datetime(client.last_active_at),
        }


class LocalWebSockets:
    """API Gateway's WebSocket API for the embedded default: serves ``app``'s
    ``on_ws_*`` handlers to real WebSocket clients on ``host``:``port`` (0: a free port).

    ``api_id`` and ``stage`` go into every event's ``requestContext``, as the deployed
    API's id and stage would.
    """

    def __init__(
        self,
        app: Chalice,
        *,
        host: str = "127.0.0.1",
        port: int,
        api_id: str = "local",
        stage: str = "local",
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._api_id = api_id
        self._stage = stage
        self._management = LocalManagementApi(self)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        # Open connections by id; notified when one's $disconnect has run.
        self._sockets: dict[str, _ClientSocket] = {}
        self._changed = threading.Condition()
        self._stopping = False

    @property
    def url(self) -> str:
        """Where clients connect (with port 0, the port bound by :meth:`start`)."""
        return f"ws://{self._host}:{self._port}/"

    @property
    def management(self) -> LocalManagementApi:
        return self._management

    def start(self) -> None:
        """Listen, then serve on a daemon thread (each connection gets its own thread)."""
        if self._server is not None:
            return
        self._stopping = False
        self._server = serve(
            self._serve_connection,
            self._host,
            self._port,
            create_connection=_ClientSocket,
            process_request=self._connect,
            select_subprotocol=self._select_subprotocol,
            process_response=self._accept,
            close_timeout=CLOSE_TIMEOUT_SECONDS,
            backlog=LISTEN_BACKLOG,
        )
        self._port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ocg-websockets", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close every socket as API Gateway does when it goes away;
        returns once their ``$disconnect`` handlers have run."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        with self._changed:
            self._stopping = True
            sockets = list(self._sockets.values())
        server.shutdown()
        thread.join()
        # websockets' Server never closes the pipe that wakes serve_forever up.
        os.close(server.shutdown_watcher)
        os.close(server.shutdown_notifier)
        for socket in sockets:
            socket.close(*GOING_AWAY)
        with self._changed:
            if not self._changed.wait_for(lambda: not self._sockets, STOP_TIMEOUT_SECONDS):
                logger.warning("%d WebSocket connections still closing", len(self._sockets))
        self._server = self._thread = None

    def open_socket(self, connection_id: str, operation: str) -> tuple[_Client, ServerConnection]:
        """The connection and its socket, or the ``GoneException`` of ``operation``."""
        with self._changed:
            socket = self._sockets.get(connection_id)
        if socket is None or socket.client is None or socket.state is not State.OPEN:
            raise _gone(operation, connection_id)
        return socket.client, socket

    def _connect(self, socket: ServerConnection, request: Request) -> Response | None:
        """Run ``$connect`` for the upgrade request: ``None`` accepts the handshake, a
        response refuses it."""
        assert isinstance(socket, _ClientSocket)
        if self._stopping:
            return socket.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable")
        client = self._new_client(socket, request)
        try:
            response = self._invoke("$connect", self._connect_event(client, request))
        except Exception:
            logger.exception("$connect handler failed for %s", client.connection_id)
            return socket.respond(http.HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error")
        status = int(response.get("statusCode", 200))
        if not 200 <= status < 300:
            body = response.get("body") or http.HTTPStatus(status).phrase
            return socket.respond(status, str(body))
        client.handshake_headers = _response_headers(response)
        socket.client = client
        return None

    def _select_subprotocol(
        self, socket: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """The subprotocol ``$connect`` named, if the client offered it."""
        assert isinstance(socket, _ClientSocket) and socket.client is not None
        named = socket.client.handshake_headers.get("Sec-WebSocket-Protocol")
        return next((protocol for protocol in offered if protocol == named), None)

    def _accept(self, socket: ServerConnection, request: Request, response: Response) -> None:
        """Announce an accepted connection before its handshake response is sent, so that
        posts work as soon as the client is open, and put ``$connect``'s headers on the
        response (websockets has already set ``Sec-WebSocket-Protocol`` when the client
        offered the subprotocol)."""
        assert isinstance(socket, _ClientSocket)
        client = socket.client
        if client is None or response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            return
        for name, value in client.handshake_headers.raw_items():
            if name.lower() != "sec-websocket-protocol":
                response.headers[name] = value
        _limit_send_time(socket)
        with self._changed:
            self._sockets[client.connection_id] = socket
        socket.server = self

    def _serve_connection(self, socket: ServerConnection) -> None:
        """Deliver the socket's messages to ``$default`` in order until it closes."""
        assert isinstance(socket, _ClientSocket) and socket.client is not None
        client = socket.client
        try:
            if self._stopping:
                socket.close(*GOING_AWAY)
            for message in socket:
                client.last_active_at = _now_ms()
                self._deliver("$default", self._message_event(client, message))
        except ConnectionClosed:
            pass  # closed without a proper closing handshake: still a disconnect
        finally:
            self.end(socket)

    def end(self, socket: _ClientSocket) -> None:
        """Run the closed connection's ``$disconnect`` and forget it."""
        assert socket.client is not None
        self._deliver("$disconnect", self._disconnect_event(socket.client, socket))
        with self._changed:
            del self._sockets[socket.client.connection_id]
            self._changed.notify_all()

    def _new_client(self, socket: ServerConnection, request: Request) -> _Client:
        host = request.headers.get("Host") or f"{self._host}:{self._port}"
        identity = {"sourceIp": str(socket.remote_address[0])}
        if "User-Agent" in request.headers:
            identity["userAgent"] = request.headers["User-Agent"]
        return _Client(_api_gateway_id(), host, identity)

    def _connect_event(self, client: _Client, request: Request) -> dict[str, Any]:
        headers, multi_value_headers = _request_headers(request.headers)
        event: dict[str, Any] = {
            "headers": headers,
            "multiValueHeaders": multi_value_headers,
            "requestContext": self._context(client, "$connect", "CONNECT"),
            "isBase64Encoded": False,
        }
        query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
        if query:
            event["queryStringParameters"] = {name: values[-1] for name, values in query.items()}
            event["multiValueQueryStringParameters"] = query
        return event

    def _message_event(self, client: _Client, message: str | bytes) -> dict[str, Any]:
        context = self._context(client, "$default", "MESSAGE")
        context["messageId"] = _api_gateway_id()
        if isinstance(message, bytes):
            body, encoded = base64.b64encode(message).decode(), True
        else:
            body, encoded = message, False
        return {"requestContext": context, "body": body, "isBase64Encoded": encoded}

    def _disconnect_event(self, client: _Client, socket: ServerConnection) -> dict[str, Any]:
        """``$disconnect`` with the close frame's status and reason (1006 if none came)."""
        context = self._context(client, "$disconnect", "DISCONNECT")
        code = socket.close_code or 1006
        reason = NO_STATUS_REASON if code == 1005 else (socket.close_reason or "")
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = reason
        headers = {"Host": client.domain_name, **dict.fromkeys(DISCONNECT_HEADER_NAMES, "")}
        return {
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "requestContext": context,
            "isBase64Encoded": False,
        }

    def _context(self, client: _Client, route_key: str, event_type: str) -> dict[str, Any]:
        """The ``requestContext`` API Gateway sends with every event of ``client``."""
        request_id = _api_gateway_id()
        now = _now_ms()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _as_datetime(now).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "messageDirection": "IN",
            "stage": self._stage,
            "connectedAt": client.connected_at,
            "requestTimeEpoch": now,
            "identity": dict(client.identity),
            "requestId": request_id,
            "domainName": client.domain_name,
            "connectionId": client.connection_id,
            "apiId": self._api_id,
        }

    def _deliver(self, route_key: str, event: dict[str, Any]) -> None:
        """Invoke a route's handler and log its failure: one bad message must not end
        the connection, nor a failing ``$disconnect`` the server."""
        try:
            self._invoke(route_key, event)
        except Exception:
            logger.exception(
                "%s handler failed for %s", route_key, event["requestContext"]["connectionId"]
            )

    def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        """Call the route's Lambda function as Lambda would; without a handler, API
        Gateway's default (connect accepted, message and disconnect dropped)."""
        config = self._app.websocket_handlers.get(route_key)
        if config is None:
            return {"statusCode": 200}
        function_name = f"{self._app.app_name}-{self._stage}-{FUNCTION_NAMES[route_key]}"
        context = LambdaContext(function_name, LAMBDA_MEMORY_MB, LAMBDA_TIMEOUT_MS)
        response: dict[str, Any] = self._app.handler_map[config.name](event, context)
        return response


class LocalConnections:
    """The subscriptions' :class:`~chalicelib.subscriptions.Connections` on this server:
    posts go through the Management API as on AWS, and a close carries the protocol's
    code, which API Gateway cannot send but a local client should see."""

    def __init__(self, server: LocalWebSockets) -> None:
        self._server = server

    def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        try:
            self._server.management.post_to_connection(
                ConnectionId=connection_id, Data=json.dumps(message)
            )
        except ClientError as error:
            if _is_gone(error):
                return False
            raise
        return True

    def close(self, connection_id: str, code: int, reason: str) -> None:
        try:
            _, socket = self._server.open_socket(connection_id, "DeleteConnection")
        except ClientError as error:
            if _is_gone(error):
                return
            raise
        socket.close(code, reason)


def _is_gone(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "GoneException")
