"""The whole application at a glance: every route and event handler, each delegating to
one function in ``chalicelib``. A bad setting or a broken ``schema.graphql`` fails here,
at import, so ``chalice local``, ``chalice package`` and ``chalice deploy`` refuse it.
"""

from typing import Any

from chalice.app import (
    Chalice,
    CloudWatchEvent,
    DynamoDBEvent,
    Rate,
    Response,
    SQSEvent,
    WebsocketEvent,
)

from chalicelib import handlers
from chalicelib.services import boot

services = boot()
settings = services.settings

# On Lambda the root logger writes JSON lines (chalicelib.telemetry.logs): Chalice's own
# logger, which reports a route's unhandled exception, must not write text beside it.
app = Chalice(app_name="ocg", configure_logs=not services.telemetry.on_lambda)
app.experimental_feature_flags.update(["WEBSOCKETS"])
cors = handlers.cors(settings)


# Every Content-Type reaches the handler, which answers one it cannot read with a
# GraphQL-shaped 415 (Chalice's own would not be GraphQL-shaped).
@app.route(
    "/graphql",
    methods=["POST"],
    content_types=["*/*"],
    cors=cors,
    api_key_required=settings.api_key_required,
)
def graphql() -> Response:
    return handlers.graphql_request(app.current_request, services)


@app.route("/graphql", methods=["GET"], cors=cors, api_key_required=settings.api_key_required)
def graphql_get() -> Response:
    return handlers.graphql_get(app.current_request, services)


# The playground, for a browser that cannot send the API key GET /graphql needs.
@app.route("/playground", methods=["GET"])
def playground() -> Response:
    return handlers.playground(services)


@app.on_dynamodb_record(
    stream_arn=settings.table_stream_arn, batch_size=100, starting_position="TRIM_HORIZON"
)
def on_table_change(event: DynamoDBEvent) -> dict[str, Any]:
    return handlers.table_changes(event, services)


@app.on_sqs_message(queue_arn=settings.cascade_queue_arn, batch_size=10)
def on_cascade_message(event: SQSEvent) -> dict[str, Any]:
    return handlers.cascade_messages(event, services)


@app.on_sqs_message(queue_arn=settings.deletion_queue_arn, batch_size=1)
def on_deletion_message(event: SQSEvent) -> dict[str, Any]:
    return handlers.deletion_messages(event, services)


@app.on_cw_event(
    {
        "source": ["aws.athena"],
        "detail-type": ["Athena Query State Change"],
        "detail": {"workgroupName": [settings.athena_workgroup]},
    }
)
def on_athena_state_change(event: CloudWatchEvent) -> None:
    handlers.athena_state_change(event, services)


# GraphQL subscriptions (graphql-transport-ws), on API Gateway's WebSocket API.
@app.on_ws_connect()
def on_ws_connect(event: WebsocketEvent) -> Response:
    return handlers.ws_connect(event, services)


@app.on_ws_message()
def on_ws_message(event: WebsocketEvent) -> None:
    handlers.ws_message(event, services)


@app.on_ws_disconnect()
def on_ws_disconnect(event: WebsocketEvent) -> None:
    handlers.ws_disconnect(event, services)


@app.schedule(Rate(settings.compaction_minutes, unit=Rate.MINUTES))
def compact_lake(event: CloudWatchEvent) -> dict[str, Any]:
    return handlers.compact_lake(event, services)


services.deliver_local_events(app)
