"""One function per entry point of ``app.py``: Chalice's objects in, Chalice's answers out.

Each adapts the Chalice request or event to the pure function that does the work, with
the clients of :class:`~chalicelib.services.Services` passed in, inside one telemetry
invocation: its log lines carry its correlation id, and the metrics the work records
are written when it ends, even when it raises. A batch's records each get their own
correlation id where the batch is taken apart (their message id, their stream eventID).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalice.app import CORSConfig, Response

if TYPE_CHECKING:
    from chalice.app import CloudWatchEvent, DynamoDBEvent, Request, SQSEvent, WebsocketEvent

    from chalicelib.graphql import HttpResponse
    from chalicelib.services import Services
    from chalicelib.settings import Settings


# Athena's query states after which nothing changes.
FINAL_QUERY_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


logger = logging.getLogger(__name__)


def cors(settings: Settings) -> CORSConfig:
    """The GraphQL routes' CORS, from the stage's settings (docs/configuration.md)."""
    return CORSConfig(
        allow_origin=settings.cors_origin,
        allow_headers=list(settings.cors_headers),
        max_age=settings.cors_max_age,
    )


def _to_chalice(response: HttpResponse) -> Response:
    headers: dict[str, str | list[str]] = {**response.headers}
    return Response(body=response.body, status_code=response.status, headers=headers)


def _api_request_id(request: Request | None) -> str | None:
    """API Gateway's id of the request (the Lambda request id where there is none)."""
    if request is None:
        return None
    request_id = request.context.get("requestId")
    if request_id is None and request.lambda_context is not None:
        request_id = getattr(request.lambda_context, "aws_request_id", None)
    return None if request_id is None else str(request_id)


def graphql_request(request: Request | None, services: Services) -> Response:
    """A GraphQL request, by POST or GET (GraphQL over HTTP)."""
    from chalicelib.graphql.endpoint import HttpRequest

    with services.telemetry.invocation(_api_request_id(request)), services.acknowledging():
        if request is None:
            return _to_chalice(services.graphql_endpoint.execute(None, services))
        headers = {name.lower(): value for name, value in request.headers.items()}
        http = HttpRequest(
            request.method,
            headers,
            dict(request.query_params or {}),
            request.raw_body if request.method == "POST" else None,
        )
        return _to_chalice(services.graphql_endpoint.serve(http, services))


def graphql_get(request: Request | None, services: Services) -> Response:
    """A GET is a query in the URL; without one, a browser gets the playground."""
    params = {} if request is None else dict(request.query_params or {})
    accept = "" if request is None else request.headers.get("accept", "")
    if "query" not in params and "text/html" in accept:
        from chalicelib.graphql.playground import playground_page

        return _to_chalice(
            playground_page(
                _playground_title(services), subscription_url=_subscription_url(services)
            )
        )
    return graphql_request(request, services)


def playground(services: Services) -> Response:
    """The playground where ``GET /graphql`` needs an API key or a token a browser cannot
    send: the page is public, its operations go to ``graphql`` with the headers of its
    header editor, which starts with the ones the stage asks for."""
    from chalicelib.graphql.playground import playground_page

    settings = services.settings
    headers = {
        **({"x-api-key": ""} if settings.api_key_required else {}),
        **({"Authorization": "Bearer "} if settings.token_required else {}),
    }
    template = json.dumps(headers, indent=2) if headers else None
    return _to_chalice(
        playground_page(
            _playground_title(services),
            graphql_url="graphql",
            subscription_url=_subscription_url(services),
            header_template=template,
        )
    )


def _subscription_url(services: Services) -> str | None:
    """Where GraphiQL opens subscriptions: the embedded WebSocket server, or the stage's
    WebSocket API (its Management API endpoint is the same address over https)."""
    runtime = services.local_runtime
    if runtime is not None and runtime.websockets is not None:
        return runtime.websockets.url
    endpoint = services.settings.websocket_endpoint
    return "wss://" + endpoint.removeprefix("https://") if endpoint else None


def _playground_title(services: Services) -> str:
    return f"{services.settings.project} GraphQL"


def table_changes(event: DynamoDBEvent, services: Services) -> dict[str, Any]:
    """The lake follows the table; then subscribers hear of the changes it took (those
    of a batch that failed hear of them when Lambda delivers them again)."""
    from chalicelib.lake.stream import process_stream_event

    with services.telemetry.invocation():
        records = event.to_dict().get("Records", [])
        response = process_stream_event(
            {"Records": records},
            model=services.model,
            object_store=services.lake_objects,
            sqs_client=services.client("sqs"),
            cascade_queue_url=services.settings.cascade_queue_url,
            max_workers=services.lake_write_workers,
        )
        failures = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        taken = []
        for record in records:
            if record.get("dynamodb", {}).get("SequenceNumber") in failures:
                break
            taken.append(record)
        _pushing(lambda: services.subscriptions.publish_changes(taken))
        return dict(response)


def compact_lake(event: CloudWatchEvent, services: Services) -> dict[str, Any]:
    from chalicelib.lake.compaction import compact_lake, report_fields

    with services.telemetry.invocation(), services.compacting():
        report = compact_lake(
            services.model, services.lake_objects, readers=services.lake_write_workers
        )
        return dict(report_fields(report))


def cascade_messages(event: SQSEvent, services: Services) -> dict[str, Any]:
    from chalicelib.relations import process_cascade_event

    with services.telemetry.invocation():
        return process_cascade_event(
            event.to_dict(),
            services.client("dynamodb"),
            services.settings.table_name,
            services.model,
        )


def deletion_messages(event: SQSEvent, services: Services) -> dict[str, Any]:
    """Deletion tasks' rows deleted; subscribers of each task that finished hear of it."""
    from chalicelib.deletions import finished_task_ids, process_deletion_event

    with services.telemetry.invocation():
        batch = event.to_dict()
        response = process_deletion_event(
            batch,
            services.tasks,
            services.client("dynamodb"),
            services.settings.table_name,
            services.model,
        )
        for task_id in finished_task_ids(batch, response):
            _pushing(functools.partial(services.subscriptions.publish_task, task_id))
        return response


def athena_state_change(event: CloudWatchEvent, services: Services) -> None:
    """The tracker: a finished query moves its task to SUCCEEDED or FAILED. A task not
    recorded yet raises, so the event is delivered again; a query long unrecorded is no
    task and its event is dropped."""
    with services.telemetry.invocation(event.detail.get("queryExecutionId")):
        time = datetime.fromisoformat(event.time) if event.time else None
        services.tasks.record_state_change(event.detail, time)
        # Even when a reader of taskResult… moved the task first: its subscribers hear of
        # a finished task once (then their subscription ends).
        if event.detail.get("currentState") in FINAL_QUERY_STATES:
            task_id = str(event.detail["queryExecutionId"])
            _pushing(lambda: services.subscriptions.publish_task(task_id))


def _pushing(push: Callable[[], None]) -> None:
    """Push to subscribers after the work is done. A push that fails loses no data (the
    table, the lake and the task are as they should be), so it is logged, not raised: a
    retried batch would only push again, and a persistent failure would stall the lake."""
    try:
        push()
    except Exception:
        logger.exception("pushing to subscribers failed; the work itself is done")


def ws_connect(event: WebsocketEvent, services: Services) -> Response:
    """``$connect``: a client of GraphQL subscriptions (chalicelib.subscriptions)."""
    with services.telemetry.invocation(event.connection_id), services.acknowledging():
        answer = services.subscriptions.connected(
            event.connection_id, event.to_dict().get("headers") or {}
        )
        return Response(
            body=answer.get("body", ""),
            status_code=answer["statusCode"],
            headers=answer.get("headers", {}),
        )


def ws_message(event: WebsocketEvent, services: Services) -> None:
    """One protocol message; a mutation sent over the socket is acknowledged as over HTTP."""
    with services.telemetry.invocation(event.connection_id), services.acknowledging():
        services.subscriptions.received(event.connection_id, event.body)


def ws_disconnect(event: WebsocketEvent, services: Services) -> None:
    with services.telemetry.invocation(event.connection_id), services.acknowledging():
        services.subscriptions.disconnected(event.connection_id)
