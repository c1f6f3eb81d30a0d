"""The ``--merge-template`` for ``chalice package``: one stack with functions and resources.

Chalice's SAM template names the stream and queue ARNs as text from the settings (the
stream's label, ``latest``, is a placeholder). The merge adds the stage's resources
(``deploy.resources``), points every event source at them by reference, and sets on the
event-source mappings what Chalice cannot (FIELD-NOTES, Chalice): partial batch
responses, and for the stream bisection, bounded retries and record age, and an
on-failure destination, so a record that keeps failing is kept, not lost
(``deploy.event_sources``). The Athena state-change tracker, which EventBridge invokes
asynchronously, gets an on-failure destination the same way, so an event Lambda retried
in vain is kept too. The lake's compaction, which EventBridge invokes on its schedule,
gets the pyarrow layer, a timeout within its interval and no retries
(``deploy.compaction``); its reserved concurrency of 1 comes from the Chalice config.
Each function gets a role of its own with only what it calls (``deploy.policies``); the
stage has ``manage_iam_role: false``, so Chalice creates no broad default role. The API
gets a usage plan with a key, which its methods require, unless the stage signs users in
without one (``OCG_AUTH_MODE=cognito``): its stage then throttles every method itself.
A stage that signs users in gets its user pool and app client from the resources; their
ids reach the functions' environment through the package's markers (``deploy.package``).
The WebSocket API of GraphQL subscriptions, which Chalice creates, gets its name, an
access log and a throttle on its stage; the functions that push to its clients get its
Management API endpoint (``OCG_WEBSOCKET_ENDPOINT``) and a grant on its connections
only; its ``wss://`` URL is Chalice's output ``WebsocketConnectEndpointURL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalice.app import Chalice, CloudWatchEventConfig, DynamoDBEventConfig, SQSEventConfig
from chalice.utils import to_cfn_resource_name

from chalicelib.queues import FUNCTION_TIMEOUT_SECONDS
from chalicelib.schema.model import SchemaModel
from chalicelib.settings import Settings
from deploy.alarms import alarm_resources
from deploy.compaction import compaction_invoke_settings, compaction_timeout
from deploy.event_sources import queue_settings, stream_settings, tracker_invoke_settings
from deploy.layer import ARCHITECTURE, LAYER_SUFFIX, runtime_python_version
from deploy.names import (
    API_FUNCTION,
    function_name,
    function_names,
    log_group_name,
    stage_resource_name,
    websocket_api_name,
)
from deploy.options import StageOptions
from deploy.policies import (
    COMPACTION_FUNCTION,
    PUSHING_FUNCTIONS,
    PYARROW_FUNCTIONS,
    STREAM_FUNCTION,
    TRACKER_FUNCTION,
    WEBSOCKET_API,
    WebSocketApi,
    function_policies,
    function_role,
)
from deploy.resources import (
    API_ACCOUNT,
    API_TIMEOUT_SECONDS,
    CASCADE_QUEUE,
    DELETED_WITH_THE_STACK,
    DELETION_QUEUE,
    STREAM_FAILURES,
    TABLE,
    TRACKER_FAILURES,
    api_access_log_setting,
    resources_template,
    stage_throttle,
    usage_plan,
    websocket_access_log_setting,
    websocket_throttle,
)
from deploy.stage import DEFAULT_API_STAGE

# Chalice's API in its SAM template; SAM resolves ``RestAPI.Stage`` to its stage.
REST_API = "RestAPI"
PYARROW_LAYER = "PyarrowLayer"
# Chalice's WebSocket API stage in its template.
WEBSOCKET_STAGE = "WebsocketAPIStage"
WEBSOCKET_ENDPOINT_VARIABLE = "OCG_WEBSOCKET_ENDPOINT"


def merge_template(
    app: Chalice,
    settings: Settings,
    model: SchemaModel,
    options: StageOptions,
    *,
    stream_layer: str | Path,
    api_stage: str = DEFAULT_API_STAGE,
) -> dict[str, Any]:
    """What ``chalice package --merge-template`` merges into the app's SAM template.

    ``stream_layer`` is the pyarrow layer of the stream and compaction functions: an
    ARN, or a built layer zip (a path relative to the packaged template, which
    ``aws cloudformation package`` uploads). ``api_stage`` is the API Gateway stage
    Chalice deploys both APIs to (the Chalice stage's ``api_gateway_stage``)."""
    template = resources_template(settings, model, options)
    resources = template["Resources"]
    functions = function_names(app)
    for function, handler in functions.items():
        # Named as chalice deploy names them, so each role's log grant and each alarm
        # finds its function on either path. Chalice's template names the API function's
        # log group after a resource that does not exist (``ApiHandler``): each group is
        # named here, as chalice deploy names it.
        resources[function] = {"Properties": {"FunctionName": function_name(settings, handler)}}
        resources[to_cfn_resource_name(f"{handler}-log-group")] = {
            **DELETED_WITH_THE_STACK,
            "Properties": {"LogGroupName": log_group_name(settings, handler)},
        }
    resources[API_FUNCTION]["Properties"]["Timeout"] = API_TIMEOUT_SECONDS
    queues = {
        settings.cascade_queue_arn: CASCADE_QUEUE,
        settings.deletion_queue_arn: DELETION_QUEUE,
    }
    for source in app.event_sources:
        function = to_cfn_resource_name(source.name)
        function_properties = resources[function]["Properties"]
        if isinstance(source, DynamoDBEventConfig):
            event = to_cfn_resource_name(f"{source.name}-dynamodb-event-source")
            properties = {
                "Stream": {"Fn::GetAtt": [TABLE, "StreamArn"]},
                **stream_settings({"Fn::GetAtt": [STREAM_FAILURES, "Arn"]}),
            }
        elif isinstance(source, SQSEventConfig):
            queue = queues.get(str(source.queue_arn))
            if queue is None:
                raise ValueError(
                    f"{source.name} listens to {source.queue_arn}, not a queue of ours"
                )
            event = to_cfn_resource_name(f"{source.name}-sqs-event-source")
            properties = {
                "Queue": {"Fn::GetAtt": [queue, "Arn"]},
                **queue_settings(options.queue_max_concurrency),
            }
            # The queue's visibility timeout is six times this (chalicelib.queues).
            function_properties["Timeout"] = FUNCTION_TIMEOUT_SECONDS
        else:
            continue
        function_properties["Events"] = {event: {"Properties": properties}}
    resources.update(_tracker_invoke_config(app))
    resources[COMPACTION_FUNCTION]["Properties"]["Timeout"] = compaction_timeout(settings)
    resources[f"{COMPACTION_FUNCTION}EventInvokeConfig"] = {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {
            "FunctionName": {"Ref": COMPACTION_FUNCTION},
            "Qualifier": "$LATEST",
            **compaction_invoke_settings(settings),
        },
    }
    websocket = WebSocketApi(f"${{{WEBSOCKET_API}}}", api_stage)
    for function, statements in function_policies(settings, websocket).items():
        if function not in functions:
            continue  # an app without WebSocket handlers has no such function
        resources[f"{function}Role"] = function_role(settings, functions[function], statements)
        resources.setdefault(function, {}).setdefault("Properties", {})["Role"] = {
            "Fn::GetAtt": [f"{function}Role", "Arn"]
        }
    if app.websocket_handlers:
        resources.update(_websocket(settings, options, api_stage))
        endpoint = {"Fn::Sub": _management_endpoint(api_stage)}
        for function in PUSHING_FUNCTIONS:
            properties = resources[function]["Properties"]
            variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
            variables[WEBSOCKET_ENDPOINT_VARIABLE] = endpoint
    api: dict[str, Any] = {"AccessLogSetting": api_access_log_setting(), "TracingEnabled": True}
    if options.uses_api_key:
        resources.update(
            usage_plan(settings, options, {"Ref": REST_API}, {"Ref": f"{REST_API}.Stage"})
        )
    else:  # no key to meter by: the stage's own throttle bounds every caller together
        api["MethodSettings"] = [stage_throttle(options)]
    # API Gateway refuses an access-log setting until the account has its logs role.
    resources[REST_API] = {"DependsOn": [API_ACCOUNT], "Properties": api}
    resources.update(
        alarm_resources(
            settings,
            options,
            functions,
            stream_function=STREAM_FUNCTION,
            compaction_function=COMPACTION_FUNCTION,
        )
    )
    layer: Any = stream_layer
    if isinstance(stream_layer, Path):
        resources[PYARROW_LAYER] = _built_layer(settings, stream_layer)
        layer = {"Ref": PYARROW_LAYER}
    for function in PYARROW_FUNCTIONS:
        resources[function]["Properties"]["Layers"] = [layer]
    return template


def _management_endpoint(api_stage: str) -> str:
    """The Management API of the WebSocket API's stage (``Fn::Sub`` text), as
    ``deploy.resources.websocket_endpoint`` gives it on path b."""
    return (
        f"https://${{{WEBSOCKET_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{api_stage}"
    )


def _websocket(settings: Settings, options: StageOptions, api_stage: str) -> dict[str, Any]:
    """Over Chalice's WebSocket API: its name, and on its stage an access log and the
    throttle of every route (API Gateway refuses an access log until the account has its
    logs role)."""
    return {
        WEBSOCKET_API: {"Properties": {"Name": websocket_api_name(settings)}},
        WEBSOCKET_STAGE: {
            "DependsOn": [API_ACCOUNT],
            "Properties": {
                "StageName": api_stage,
                "AccessLogSettings": websocket_access_log_setting(),
                "DefaultRouteSettings": websocket_throttle(options),
            },
        },
    }


def _tracker_invoke_config(app: Chalice) -> dict[str, Any]:
    """The tracker's asynchronous-invocation config, on ``$LATEST``: Chalice publishes no
    versions, and EventBridge invokes the function unqualified."""
    for source in app.event_sources:
        function = to_cfn_resource_name(source.name)
        if isinstance(source, CloudWatchEventConfig) and function == TRACKER_FUNCTION:
            config = {
                "Type": "AWS::Lambda::EventInvokeConfig",
                "Properties": {
                    "FunctionName": {"Ref": function},
                    "Qualifier": "$LATEST",
                    **tracker_invoke_settings({"Fn::GetAtt": [TRACKER_FAILURES, "Arn"]}),
                },
            }
            return {to_cfn_resource_name(f"{source.name}-event-invoke-config"): config}
    raise ValueError(f"the app has no EventBridge handler named {TRACKER_FUNCTION} (the tracker)")


def _built_layer(settings: Settings, zip_path: Path) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {
            "LayerName": stage_resource_name(settings, LAYER_SUFFIX),
            "Description": "pyarrow for the stream and compaction functions "
            "(requirements-layer.txt)",
            "ContentUri": f"./{zip_path.as_posix()}",
            "CompatibleRuntimes": [f"python{runtime_python_version()}"],
            "CompatibleArchitectures": [ARCHITECTURE],
        },
    }
