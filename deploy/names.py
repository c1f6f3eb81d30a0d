"""Every name a deployment gives, and the limits AWS puts on them.

Resource names come from the project (``OCG_PROJECT``), the stage and the account, so
two projects, or two stages of one project, never share a function, a log group, a
stack or an alarm. A name over its service's limit fails on AWS only after a partial
deployment (a bucket refused mid-create rolls the stack back); :func:`name_problems`
finds each of them before anything is created and says which setting to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chalice.app import Chalice
from chalice.utils import to_cfn_resource_name

from chalicelib.queues import dead_letter_queue_name
from chalicelib.settings import Settings

# The documentation example account (and moto's): deployed as is, bucket names collide
# and the functions would send to another account's queues.
PLACEHOLDER_ACCOUNT_ID = "123456789012"

# What a Lambda function name may hold, so what the stage in it may.
STAGE_NAME_RULE = re.compile(r"[A-Za-z0-9_-]+")
# Chalice's name for the function behind the API, and its logical id in a template.
API_HANDLER_NAME = "api_handler"
API_FUNCTION = "APIHandler"
# Chalice's names for the WebSocket API's functions (``chalice.deploy.appgraph``: the
# same on both paths, whatever the handlers are called in app.py), by their logical ids.
WEBSOCKET_HANDLER_NAMES = {
    "WebsocketConnect": "websocket_connect",
    "WebsocketMessage": "websocket_message",
    "WebsocketDisconnect": "websocket_disconnect",
}
# The route each of them serves.
WEBSOCKET_ROUTES = {
    "$connect": "WebsocketConnect",
    "$default": "WebsocketMessage",
    "$disconnect": "WebsocketDisconnect",
}


def function_names(app: Chalice) -> dict[str, str]:
    """Chalice's function names by their logical ids (``OnTableChange`` → ``on_table_change``,
    ``WebsocketMessage`` → ``websocket_message``)."""
    names = {API_FUNCTION: API_HANDLER_NAME}
    names.update({to_cfn_resource_name(source.name): source.name for source in app.event_sources})
    for handler in app.websocket_handlers.values():
        logical_id = WEBSOCKET_ROUTES.get(handler.route_key_handled, "WebsocketMessage")
        names[logical_id] = WEBSOCKET_HANDLER_NAMES[logical_id]
    return names


def websocket_api_name(settings: Settings) -> str:
    """The WebSocket API of GraphQL subscriptions (``ocg-<project>-<stage>-ws``)."""
    return stage_resource_name(settings, "ws")


def app_name(settings: Settings) -> str:
    """Chalice's ``app_name`` for the project: it leads every function name on path b."""
    return f"ocg-{settings.project}"


def stage_resource_name(settings: Settings, suffix: str = "") -> str:
    """``ocg-<project>-<stage>[-suffix]``: what the deployment names per stage (the stack,
    the usage plan and key, the pyarrow layer, the alarm topic)."""
    return f"{app_name(settings)}-{settings.stage}" + (f"-{suffix}" if suffix else "")


def user_pool_name(settings: Settings) -> str:
    """The Cognito user pool a stage creates for sign-in (``deploy.resources.user_pool``)."""
    return stage_resource_name(settings, "users")


def user_pool_client_name(settings: Settings) -> str:
    """The created pool's app client, which the stage's browser and mobile apps use."""
    return stage_resource_name(settings, "app")


def access_logs_bucket(settings: Settings) -> str:
    """The bucket that receives the other buckets' server access logs."""
    return f"{app_name(settings)}-logs-{settings.account_id}"


def function_name(settings: Settings, handler: str) -> str:
    """A function's name, as ``chalice deploy`` gives it (``<app_name>-<stage>-<handler>``)
    and as path (a) sets it, so both paths' log groups and roles agree."""
    return stage_resource_name(settings, handler)


def log_group_name(settings: Settings, handler: str) -> str:
    """Where Lambda writes a function's logs."""
    return f"/aws/lambda/{function_name(settings, handler)}"


@dataclass(frozen=True)
class _Limit:
    what: str
    maximum: int
    setting: str


def _named(settings: Settings, handlers: Iterable[str]) -> list[tuple[str, _Limit]]:
    """Every generated name with its limit and the setting that shortens it."""
    project_or_stage = "a shorter OCG_PROJECT or stage name"
    names = [
        (settings.lake_bucket, _Limit("S3 bucket name", 63, "OCG_LAKE_BUCKET or OCG_PROJECT")),
        (
            settings.athena_results_bucket,
            _Limit("S3 bucket name", 63, "OCG_ATHENA_RESULTS_BUCKET or OCG_PROJECT"),
        ),
        (access_logs_bucket(settings), _Limit("S3 bucket name", 63, "OCG_PROJECT")),
        (settings.table_name, _Limit("DynamoDB table name", 255, "OCG_TABLE")),
        (settings.athena_workgroup, _Limit("Athena workgroup name", 128, "OCG_ATHENA_WORKGROUP")),
        (settings.glue_database, _Limit("Glue database name", 255, "OCG_GLUE_DATABASE")),
        (stage_resource_name(settings), _Limit("stack name", 128, project_or_stage)),
        (user_pool_name(settings), _Limit("Cognito user pool name", 128, project_or_stage)),
        (
            user_pool_client_name(settings),
            _Limit("Cognito app client name", 128, project_or_stage),
        ),
    ]
    for queue, setting in (
        (dead_letter_queue_name(settings.cascade_queue_name), "OCG_CASCADE_QUEUE"),
        (dead_letter_queue_name(settings.deletion_queue_name), "OCG_DELETION_QUEUE"),
        (settings.stream_failures_queue_name, "OCG_STREAM_FAILURES_QUEUE"),
        (settings.tracker_failures_queue_name, "OCG_TRACKER_FAILURES_QUEUE"),
    ):
        names.append((queue, _Limit("SQS queue name", 80, setting)))
    for handler in handlers:
        names.append(
            (function_name(settings, handler), _Limit("Lambda function name", 64, project_or_stage))
        )
    return names


def name_problems(settings: Settings, stage: str, handlers: Iterable[str]) -> list[str]:
    """What AWS would refuse among the Chalice stage's names, each with the setting to
    change; empty when every name fits."""
    problems = []
    if settings.stage != stage:
        problems.append(
            f"OCG_STAGE is {settings.stage!r} but the Chalice stage is {stage!r}: Chalice names "
            f"the functions after its stage, so set OCG_STAGE={stage} in the stage's "
            "environment_variables of .chalice/config.json"
        )
    if settings.account_id == PLACEHOLDER_ACCOUNT_ID:
        problems.append(
            f"OCG_ACCOUNT_ID is {PLACEHOLDER_ACCOUNT_ID}, the documentation's example account: "
            "set it to your 12-digit account id in the stage's environment_variables of "
            ".chalice/config.json (python -m deploy prepare writes the caller's)"
        )
    for name, limit in _named(settings, handlers):
        if len(name) > limit.maximum:
            problems.append(
                f"the {limit.what} {name!r} is {len(name)} characters, over AWS's "
                f"{limit.maximum}: use {limit.setting}"
            )
    if not STAGE_NAME_RULE.fullmatch(stage):
        problems.append(
            f"the stage name {stage!r} must be letters, digits, hyphens and underscores "
            "(it is part of every function name)"
        )
    return problems
