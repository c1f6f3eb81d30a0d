"""GraphQL subscriptions over WebSocket: the ``graphql-transport-ws`` protocol on API
Gateway's WebSocket routes, and the fan-out of entity and task events to subscribers.

API Gateway keeps the sockets; each ``$connect``, message and ``$disconnect`` is one
handler invocation, so a connection's state lives in the table
(:mod:`chalicelib.subscriptions.registry`), and answers go out through the Management
API (:class:`Connections`). The protocol is the ``graphql-ws`` library's
(github.com/enisdenjo/graphql-ws, PROTOCOL.md), what Apollo Client, urql, Relay and
GraphiQL speak: ``connection_init`` carries the user's token, ``subscribe`` starts an
operation, ``next``/``error``/``complete`` answer it, ``ping``/``pong`` keep it alive.

An operation is validated and executed by the same schema and rules as an HTTP request
(:class:`~chalicelib.graphql.endpoint.GraphQLEndpoint`), as the subscriber: for each
event, each subscriber's own document runs with the event as its root value, so what a
subscriber receives is what it selected, and nothing its ``@auth`` rules deny.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError
from graphql import DocumentNode, Executor, GraphQLError, OperationType
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import get_argument_values
from graphql.utilities import get_operation_ast

from chalicelib import keys
from chalicelib.auth.identity import Identity
from chalicelib.auth.rules import Grant, grant
from chalicelib.auth.tokens import KeysUnavailable, TokenError
from chalicelib.graphql.access import EntityAccess
from chalicelib.graphql.context import CallerContext, ServiceContext
from chalicelib.graphql.protocol import GraphQLParams
from chalicelib.schema import naming
from chalicelib.schema.model import Entity, Operation, SchemaModel
from chalicelib.subscriptions.registry import Subscription, SubscriptionRegistry

if TYPE_CHECKING:
    from chalicelib.graphql.endpoint import GraphQLEndpoint

logger = logging.getLogger(__name__)

PROTOCOL = "graphql-transport-ws"
# Close codes of the protocol.
BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, SUBSCRIBER_EXISTS, TOO_MANY_INITS = (
    4400,
    4401,
    4403,
    4409,
    4429,
)
FINISHED = ("SUCCEEDED", "FAILED")
# Posts to the Management API wait on the network: this many at once per event.
FAN_OUT_WORKERS = 16
CHANGES = {"INSERT": "create", "MODIFY": "update", "REMOVE": "delete"}
# API Gateway's limit on one WebSocket message; enforced locally too, so that what works
# against make run works on a stage.
MAX_MESSAGE_BYTES = 128 * 1024


class Connections(Protocol):
    """Where messages to WebSocket clients go: API Gateway's Management API, or locally
    the embedded server's sockets."""

    def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """Send one protocol message; False when the connection is gone."""

    def close(self, connection_id: str, code: int, reason: str) -> None:
        """End the connection with the protocol's close code, where the world can say
        one (API Gateway's Management API cannot: its sockets close without a code)."""


class ManagementConnections:
    """:class:`Connections` over boto3's ``apigatewaymanagementapi`` client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        try:
            self._client.post_to_connection(
                ConnectionId=connection_id, Data=json.dumps(message).encode()
            )
        except ClientError as error:
            if _gone(error):
                return False
            raise
        return True

    def close(self, connection_id: str, code: int, reason: str) -> None:
        logger.info("closing connection %s: %d %s", connection_id, code, reason)
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if not _gone(error):
                raise


def _gone(error: ClientError) -> bool:
    code: object = error.response.get("Error", {}).get("Code")
    return code == "GoneException"


@dataclass(frozen=True)
class _Field:
    """What a Subscription field listens to: an entity's changes of one kind, or a task."""

    entity: Entity | None = None
    change: str = ""

    def topic(self, arguments: Mapping[str, Any]) -> str:
        if self.entity is None:
            return keys.task_topic(str(arguments["taskId"]))
        return keys.entity_topic(self.entity.key, self.change)


def subscription_fields(model: SchemaModel) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    for entity in model.entities:
        fields[naming.on_create_field(entity.name)] = _Field(entity, "create")
        fields[naming.on_update_field(entity.name)] = _Field(entity, "update")
        fields[naming.on_delete_field(entity.name)] = _Field(entity, "delete")
    for name in [t.name for t in model.query_tasks] + [d.name for d in model.delete_mutations]:
        fields[naming.on_task_result_field(name)] = _Field()
    return fields


class _Refused(Exception):
    """The connection must close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SubscriptionHub:
    """The protocol's server side, and the publisher of events to subscribers."""

    def __init__(
        self,
        services: ServiceContext,
        endpoint: Callable[[], GraphQLEndpoint],
        registry: SubscriptionRegistry,
        connections: Connections,
        authenticate: Any,
        model: SchemaModel,
        *,
        publishing: bool = True,
    ) -> None:
        """``publishing=False``: a stage without a WebSocket API to push through (its
        Management API endpoint unknown) takes events without looking for subscribers."""
        self._services = services
        self._endpoint_of = endpoint
        self._registry = registry
        self._connections = connections
        self._authenticate = authenticate
        self._model = model
        self._publishing = publishing
        self._fields = subscription_fields(model)
        self._entities = {entity.key: entity for entity in model.entities}

    @property
    def _endpoint(self) -> GraphQLEndpoint:
        """Built on first use: a stream batch without subscribers never builds the schema."""
        return self._endpoint_of()

    # The WebSocket routes.

    def connected(self, connection_id: str, headers: Mapping[str, str]) -> dict[str, Any]:
        """``$connect``: accepted only for this protocol, which the answer names (API
        Gateway completes the handshake with it)."""
        offered = {
            p.strip()
            for name, value in headers.items()
            if name.lower() == "sec-websocket-protocol"
            for p in value.split(",")
        }
        if PROTOCOL not in offered:
            return {"statusCode": 400, "body": f"ask for the {PROTOCOL} subprotocol"}
        self._registry.connect(connection_id)
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": PROTOCOL}}

    def received(self, connection_id: str, body: str) -> None:
        """``$default``: one protocol message."""
        try:
            self._receive(connection_id, body)
        except _Refused as refusal:
            self._connections.close(connection_id, refusal.code, refusal.reason)

    def disconnected(self, connection_id: str) -> None:
        self._registry.disconnect(connection_id)

    def _receive(self, connection_id: str, body: str) -> None:
        message = _message(body)
        kind = message["type"]
        if kind == "connection_init":
            self._init(connection_id, message.get("payload"))
        elif kind == "ping":
            self._send(connection_id, {"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "subscribe":
            self._subscribe(connection_id, message)
        elif kind == "complete":
            self._registry.unsubscribe(connection_id, _id(message))
        else:
            raise _Refused(BAD_REQUEST, f"unknown message type {kind!r}")

    def _init(self, connection_id: str, payload: Any) -> None:
        try:
            identity = self._authenticate(_authorization(payload))
        except TokenError as error:
            raise _Refused(FORBIDDEN, f"Forbidden: {error}") from None
        except KeysUnavailable:
            raise _Refused(FORBIDDEN, "Forbidden: tokens cannot be checked right now") from None
        if not self._registry.acknowledge(connection_id, identity):
            raise _Refused(TOO_MANY_INITS, "Too many initialisation requests")
        self._send(connection_id, {"type": "connection_ack"})

    def _subscribe(self, connection_id: str, message: Mapping[str, Any]) -> None:
        subscription_id = _id(message)
        payload = message.get("payload")
        if not isinstance(payload, Mapping) or not isinstance(payload.get("query"), str):
            raise _Refused(BAD_REQUEST, "subscribe needs a payload with a query")
        for name, kind in (("variables", Mapping), ("operationName", str), ("extensions", Mapping)):
            if payload.get(name) is not None and not isinstance(payload[name], kind):
                expected = "a string" if kind is str else "an object"
                raise _Refused(
                    BAD_REQUEST, f"Invalid message received: subscribe's {name} must be {expected}"
                )
        identity = self._registry.identity(connection_id)
        if identity is None:
            raise _Refused(UNAUTHORIZED, "Unauthorized: send connection_init first")
        params = GraphQLParams(
            payload["query"],
            payload.get("variables") or None,
            payload.get("operationName"),
            payload.get("extensions") or {},
        )
        context = CallerContext(self._services, identity)
        document, errors = self._endpoint.prepare(params)
        if document is None:
            self._error(connection_id, subscription_id, errors)
            return
        operation = get_operation_ast(document, params.operation_name)
        if operation is None:
            # A request error, like validation's: the operation cannot even start.
            named = params.operation_name
            problem = (
                f"Unknown operation named '{named}'."
                if named
                else "Must provide operation name if query contains multiple operations."
            )
            self._error(connection_id, subscription_id, [GraphQLError(problem)])
            return
        if operation.operation is not OperationType.SUBSCRIPTION:
            # The protocol carries queries and mutations too: one result, then complete.
            answer = self._endpoint.run(document, params, context)
            self._next(connection_id, subscription_id, answer)
            self._send(connection_id, {"id": subscription_id, "type": "complete"})
            return
        try:
            key, field_name, arguments = self._root_field(document, params)
            field = self._fields[field_name]
            if field.entity is not None:
                EntityAccess(field.entity, context).owner(Operation.READ)
        except GraphQLError as error:
            self._error(connection_id, subscription_id, [error])
            return
        subscription = Subscription(
            connection_id,
            subscription_id,
            field.topic(arguments),
            {
                "query": params.query,
                "variables": params.variables,
                "operationName": params.operation_name,
            },
            arguments,
            identity,
        )
        if not self._registry.subscribe(subscription):
            raise _Refused(SUBSCRIBER_EXISTS, f"Subscriber for {subscription_id} already exists")
        if field.entity is None:
            self._task_state(subscription, document, params, key, first=True)

    def _root_field(
        self, document: DocumentNode, params: GraphQLParams
    ) -> tuple[str, str, dict[str, Any]]:
        """The subscription's one root field, as graphql-core's subscribe finds it
        (through fragments, under its alias): its key in the answer, its name and its
        coerced arguments."""
        schema = self._endpoint.schema
        executor = Executor.build(
            schema,
            document,
            raw_variable_values=dict(params.variables or {}),
            operation_name=params.operation_name,
        )
        if isinstance(executor, list):
            raise executor[0]
        subscription_type = schema.subscription_type
        assert subscription_type is not None
        fields = collect_fields(
            schema,
            executor.fragments,
            executor.variable_values,
            subscription_type,
            executor.operation,
        ).grouped_field_set
        # Validation leaves one root field (SingleFieldSubscriptionsRule).
        key, details = next(iter(fields.items()))
        node = details[0].node
        definition = subscription_type.fields[node.name.value]
        arguments = get_argument_values(definition, node, executor.variable_values)
        return key, node.name.value, arguments

    # Events.

    def publish_changes(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Entity changes of a stream batch, to the subscribers of each, in order. Each
        topic's subscribers are read once per batch: a batch with none costs one query
        per kind of change, and builds nothing else."""
        if not self._publishing:
            return
        subscribers: dict[str, list[Subscription]] = {}
        for record in records:
            image_name = "OldImage" if record.get("eventName") == "REMOVE" else "NewImage"
            image = record.get("dynamodb", {}).get(image_name) or {}
            entity = self._entities.get(image.get(keys.ENTITY_TYPE, {}).get("S", ""))
            change = CHANGES.get(str(record.get("eventName")))
            if entity is None or change is None:
                continue
            topic = keys.entity_topic(entity.key, change)
            if topic not in subscribers:
                subscribers[topic] = list(self._registry.subscribers(topic))
            if not subscribers[topic]:
                continue
            item = self._services.store.api_item(entity, image)
            # An entity's fields are its item's values, the same for every subscriber
            # who may see it: each distinct operation runs once per change.
            answers: dict[str, dict[str, Any]] = {}
            deliveries = []
            for subscription in subscribers[topic]:
                if _matches(subscription, item) and _may_see(entity, subscription.identity, item):
                    request = json.dumps(subscription.request, sort_keys=True)
                    if request not in answers:
                        answers[request] = self._run(subscription, root_value=item)
                    deliveries.append((subscription, answers[request]))
            gone = self._deliver(deliveries)
            for topic_subscribers in subscribers.values():
                topic_subscribers[:] = [s for s in topic_subscribers if s.connection_id not in gone]

    def publish_task(self, task_id: str) -> None:
        """A task's new state, to its subscribers (only its trigger's pass the rules)."""
        if not self._publishing:
            return
        for subscription in list(self._registry.subscribers(keys.task_topic(task_id))):
            params = GraphQLParams(**_request(subscription))
            document, _ = self._endpoint.prepare(params)
            if document is not None:
                key, _, _ = self._root_field(document, params)
                self._task_state(subscription, document, params, key, first=False)

    def _task_state(
        self,
        subscription: Subscription,
        document: DocumentNode,
        params: GraphQLParams,
        key: str,
        *,
        first: bool,
    ) -> None:
        """Run a task subscription now: its state (always the first time, then only once
        it has finished), then ``complete`` when the task has finished. ``key`` is the
        root field's key in the answer."""
        context = CallerContext(self._services, subscription.identity)
        answer = self._endpoint.run(document, params, context)
        cid, sid = subscription.connection_id, subscription.subscription_id
        # The subscription ends with the task; the invocation that removes it (the
        # subscribe itself, or the tracker racing it) is the one that says so.
        if answer.get("errors") and answer.get("data") is None:
            if self._registry.unsubscribe(cid, sid):
                self._send(cid, {"id": sid, "type": "error", "payload": answer["errors"]})
            return
        state = (answer.get("data") or {}).get(key) or {}
        if state.get("taskStatus") not in FINISHED:
            if first:
                self._next(cid, sid, answer)
        elif self._registry.unsubscribe(cid, sid):
            self._next(cid, sid, answer)
            self._send(cid, {"id": sid, "type": "complete"})

    def _run(self, subscription: Subscription, root_value: Any) -> dict[str, Any]:
        params = GraphQLParams(**_request(subscription))
        document, errors = self._endpoint.prepare(params)
        if document is None:
            return {"errors": [error.formatted for error in errors]}
        context = CallerContext(self._services, subscription.identity)
        return self._endpoint.run(document, params, context, root_value=root_value)

    def _deliver(self, deliveries: Sequence[tuple[Subscription, dict[str, Any]]]) -> set[str]:
        """Post each result at once; a connection that is gone is forgotten (and returned)."""
        if not deliveries:
            return set()

        def post(delivery: tuple[Subscription, dict[str, Any]]) -> tuple[str, bool]:
            subscription, answer = delivery
            message = _next_message(subscription.subscription_id, answer)
            return subscription.connection_id, self._connections.send(
                subscription.connection_id, message
            )

        with ThreadPoolExecutor(min(FAN_OUT_WORKERS, len(deliveries))) as pool:
            outcomes = list(pool.map(post, deliveries))
        gone = {cid for cid, sent in outcomes if not sent}
        for connection_id in gone:
            logger.info("connection %s is gone: its subscriptions are removed", connection_id)
            self._registry.disconnect(connection_id)
        return gone

    def _next(self, connection_id: str, subscription_id: str, answer: dict[str, Any]) -> None:
        self._send(connection_id, _next_message(subscription_id, answer))

    def _error(
        self, connection_id: str, subscription_id: str, errors: Sequence[GraphQLError]
    ) -> None:
        payload = [error.formatted for error in errors]
        self._send(connection_id, {"id": subscription_id, "type": "error", "payload": payload})

    def _send(self, connection_id: str, message: Mapping[str, Any]) -> None:
        if not self._connections.send(connection_id, message):
            self._registry.disconnect(connection_id)


def _next_message(subscription_id: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    """``next`` with the answer, or, when that is over API Gateway's message limit (which
    would refuse it), with an error that says so: the subscriber hears of the event."""
    message = {"id": subscription_id, "type": "next", "payload": answer}
    size = len(json.dumps(message).encode())
    if size <= MAX_MESSAGE_BYTES:
        return message
    error = {
        "message": f"this event's answer is {size} bytes, over the {MAX_MESSAGE_BYTES} bytes "
        "a WebSocket message may carry: select fewer fields, or give the task's "
        "subscription a smaller limit and read the rest with taskResult… and its nextToken",
        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
    }
    return {**message, "payload": {"data": None, "errors": [error]}}


def _message(body: str) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(BAD_REQUEST, "Invalid message received: not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise _Refused(BAD_REQUEST, "Invalid message received: no type")
    return message


def _id(message: Mapping[str, Any]) -> str:
    subscription_id = message.get("id")
    if not isinstance(subscription_id, str) or not subscription_id:
        raise _Refused(BAD_REQUEST, f"Invalid message received: {message['type']} needs an id")
    return subscription_id


def _authorization(payload: Any) -> str | None:
    """The token of ``connection_init``'s payload: ``Authorization`` (any case), as
    GraphiQL's and Apollo's clients send headers, or ``authToken``."""
    if not isinstance(payload, Mapping):
        return None
    for name, value in payload.items():
        if name.lower() in ("authorization", "authtoken") and isinstance(value, str):
            return value
    headers = payload.get("headers")
    return _authorization(headers) if isinstance(headers, Mapping) else None


def _request(subscription: Subscription) -> dict[str, Any]:
    request = subscription.request
    return {
        "query": request["query"],
        "variables": request.get("variables"),
        "operation_name": request.get("operationName"),
    }


def _matches(subscription: Subscription, item: Mapping[str, Any]) -> bool:
    """Every filter the subscriber gave equals the item's value."""
    return all(
        value is None or item.get(name) == value for name, value in subscription.arguments.items()
    )


def _may_see(entity: Entity, identity: Identity, item: Mapping[str, Any]) -> bool:
    granted = grant(entity.auth, Operation.READ, identity)
    if granted is Grant.OWN:
        return entity.owner_field is not None and item.get(entity.owner_field) == identity.sub
    return granted is Grant.ALL
