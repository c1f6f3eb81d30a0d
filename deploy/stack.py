"""Path (b): ``chalice deploy``, with the stage's resources in a stack of their own.

Chalice deploys functions, the API and event-source mappings by API calls, not by a
template, so what it does not create comes from a CloudFormation stack beside it:

1. ``prepare`` creates or updates the stack ``ocg-<project>-<stage>`` (the resources of
   ``deploy.resources`` and a least-privilege role per function) and writes into the
   stage of ``.chalice/config.json`` what ``chalice deploy`` must be told: the account,
   the stream's real ARN and the queues (environment variables; on a stage that signs
   users in, the user pool's and app client's ids too), each function's role, the
   pyarrow layer of the stream and compaction functions, and their timeouts.
2. ``chalice deploy --stage <stage>`` creates the functions and wires the handlers.
3. ``finish`` sets on the event-source mappings what Chalice cannot
   (``deploy.event_sources``), gives the Athena state-change tracker its on-failure
   destination and the lake's compaction its invocation settings (no retries:
   ``deploy.compaction``), and adds the API's usage plan and key to the stack (a stage
   whose callers need no key, ``OCG_AUTH_MODE=cognito``, gets its API stage throttled
   instead). Chalice's own redeploys change only batch sizes and never touch an
   asynchronous-invocation config, so these settings stay.

The WebSocket API of GraphQL subscriptions exists only once ``chalice deploy`` has made
it, so ``finish`` reads its id from Chalice's record (``.chalice/deployed/<stage>.json``)
and then: grants the pushing functions ``execute-api:ManageConnections`` on its
connections (the stack's roles; ``prepare`` keeps the grant once the record has the
API), names it, gives its stage an access log and a throttle, and gives the pushing
functions its Management API endpoint (``OCG_WEBSOCKET_ENDPOINT``), both at once
(``UpdateFunctionConfiguration``) and in their ``environment_variables`` of
``.chalice/config.json``, so the next ``chalice deploy`` keeps it. Until ``finish`` has
run, those functions push nothing (without the endpoint the app does not publish).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from chalice.app import Chalice, SQSEventConfig
from chalice.utils import to_cfn_resource_name

from chalicelib.queues import FUNCTION_TIMEOUT_SECONDS
from chalicelib.schema import load_schema
from chalicelib.schema.model import SchemaModel
from chalicelib.settings import Settings
from deploy.alarms import alarm_resources
from deploy.compaction import (
    compaction_invoke_settings,
    compaction_problems,
    compaction_timeout,
)
from deploy.event_sources import queue_settings, stream_settings, tracker_invoke_settings
from deploy.layer import ARCHITECTURE, LAYER_SUFFIX, runtime_python_version
from deploy.names import (
    API_FUNCTION,
    PLACEHOLDER_ACCOUNT_ID,
    app_name,
    function_name,
    function_names,
    name_problems,
    stage_resource_name,
    websocket_api_name,
)
from deploy.options import StageOptions, stage_options, user_pool_problems
from deploy.policies import (
    COMPACTION_FUNCTION,
    PUSHING_FUNCTIONS,
    PYARROW_FUNCTIONS,
    STREAM_FUNCTION,
    TRACKER_FUNCTION,
    WS_MESSAGE_FUNCTION,
    WebSocketApi,
    function_policies,
    function_role,
)
from deploy.resources import (
    ACCESS_LOGS_BUCKET,
    API_ACCESS_LOG_FORMAT,
    API_KEY,
    API_TIMEOUT_SECONDS,
    RESULTS_BUCKET,
    USER_POOL_CLIENT_ID_OUTPUT,
    USER_POOL_ID_OUTPUT,
    WEBSOCKET_ACCESS_LOG_FORMAT,
    resources_template,
    stage_throttle,
    usage_plan,
    websocket_endpoint,
    websocket_throttle,
)
from deploy.stage import (
    AUTH_MODE_VARIABLE,
    CHALICE_CONFIG,
    USER_POOL_CLIENT_VARIABLE,
    USER_POOL_VARIABLE,
    api_stage,
    read_config,
    region_variables,
    stage_app,
    stage_environment,
    stage_settings,
    write_config,
)

ROLE_OUTPUT_SUFFIX = "RoleArn"
WEBSOCKET_ENDPOINT_VARIABLE = "OCG_WEBSOCKET_ENDPOINT"
# The stack outputs written into the stage's environment variables.
OUTPUT_VARIABLES = {
    "TableStreamArn": "OCG_TABLE_STREAM_ARN",
    "CascadeQueueArn": "OCG_CASCADE_QUEUE_ARN",
    "CascadeQueueUrl": "OCG_CASCADE_QUEUE_URL",
    "DeletionQueueArn": "OCG_DELETION_QUEUE_ARN",
    "DeletionQueueUrl": "OCG_DELETION_QUEUE_URL",
}
# The outputs of a stage that signs users in, written likewise; a stage that does not
# has neither output, and neither variable.
USER_POOL_OUTPUT_VARIABLES = {
    USER_POOL_ID_OUTPUT: USER_POOL_VARIABLE,
    USER_POOL_CLIENT_ID_OUTPUT: USER_POOL_CLIENT_VARIABLE,
}
# The states a stack may be used from; anything else (failed, rolled back, still in
# progress after the wait) stops the deployment.
_USABLE_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
INLINE_TEMPLATE_LIMIT = 51_200

# Seconds between attempts while a role just updated is not yet known to Lambda.
ROLE_PROPAGATION_DELAYS = (2, 4, 8, 16, 32)


class DeployError(RuntimeError):
    """The stack or the deployed stage is not in a state this step can work from."""


@dataclass(frozen=True)
class DeployedApi:
    """The API ``chalice deploy`` created, from its record in ``.chalice/deployed``."""

    rest_api_id: str
    stage: str
    url: str


@dataclass(frozen=True)
class DeployedWebSocket:
    """The WebSocket API ``chalice deploy`` created, from its record."""

    api_id: str
    stage: str
    url: str  # wss://…

    @property
    def grants_on(self) -> WebSocketApi:
        return WebSocketApi(self.api_id, self.stage)


def stack_name(settings: Settings) -> str:
    return stage_resource_name(settings)


def queue_listeners(app: Chalice) -> list[str]:
    """The functions fed by a queue, whose timeout its visibility timeout is made for."""
    return [source.name for source in app.event_sources if isinstance(source, SQSEventConfig)]


def stack_template(
    settings: Settings,
    model: SchemaModel,
    options: StageOptions,
    functions: Mapping[str, str],
    *,
    api: DeployedApi | None = None,
    websocket: DeployedWebSocket | None = None,
) -> dict[str, Any]:
    """The resources, a role per function (its ARN an output), the alarms, and once the
    API exists its usage plan and key (unless its callers need none: cognito mode).
    ``functions`` maps the functions' logical ids to their Chalice names. Once the
    WebSocket API exists (``websocket``), the pushing functions' roles may manage its
    connections; before, nothing is granted on it."""
    template = resources_template(settings, model, options)
    resources, outputs = template["Resources"], template["Outputs"]
    resources.update(
        alarm_resources(
            settings,
            options,
            functions,
            stream_function=STREAM_FUNCTION,
            compaction_function=COMPACTION_FUNCTION,
        )
    )
    grants_on = websocket.grants_on if websocket is not None else None
    for function, statements in function_policies(settings, grants_on).items():
        if function not in functions:
            continue  # an app without WebSocket handlers has no such function
        resources[f"{function}Role"] = function_role(settings, functions[function], statements)
        outputs[f"{function}{ROLE_OUTPUT_SUFFIX}"] = {
            "Value": {"Fn::GetAtt": [f"{function}Role", "Arn"]}
        }
    if api is not None and options.uses_api_key:
        resources.update(usage_plan(settings, options, api.rest_api_id, api.stage))
        outputs["ApiKeyId"] = {"Value": {"Ref": API_KEY}}
    return template


def apply_stack(
    session: Any, name: str, template: Mapping[str, Any], *, template_bucket: str | None = None
) -> dict[str, str]:
    """Create the stack or update it to ``template``, wait for it, and return its outputs.

    CloudFormation takes a template of at most 51,200 bytes inline; a larger one goes
    through ``template_bucket`` (:func:`apply_stage_stack` picks one)."""
    cloudformation = session.client("cloudformation")
    body = json.dumps(template, separators=(",", ":"))
    arguments: dict[str, Any] = {"StackName": name, "Capabilities": ["CAPABILITY_IAM"]}
    if fits_inline(template):
        arguments["TemplateBody"] = body
    elif template_bucket is None:
        raise DeployError(
            f"the stack's template is {len(body.encode()):,} bytes, over CloudFormation's "
            f"inline limit of {INLINE_TEMPLATE_LIMIT:,}: pass --template-bucket <a bucket of yours>"
        )
    else:
        key = f"ocg/{name}/template-{hashlib.sha256(body.encode()).hexdigest()}.json"
        s3 = session.client("s3")
        s3.put_object(Bucket=template_bucket, Key=key, Body=body.encode())
        arguments["TemplateURL"] = s3.generate_presigned_url(
            "get_object", Params={"Bucket": template_bucket, "Key": key}, ExpiresIn=3600
        )
    try:
        if stack_exists(cloudformation, name):
            cloudformation.update_stack(**arguments)
            waiter = "stack_update_complete"
        else:
            cloudformation.create_stack(**arguments)
            waiter = "stack_create_complete"
        cloudformation.get_waiter(waiter).wait(
            StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
        )
    except ClientError as error:
        if "No updates are to be performed" not in str(error):
            raise DeployError(f"stack {name}: {error}") from error
    except WaiterError:
        pass  # the stack failed or is still busy: reported below from its state
    (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    if stack["StackStatus"] not in _USABLE_STATES:
        raise DeployError(
            f"stack {name} is {stack['StackStatus']}: {_first_failure(cloudformation, name)}"
        )
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def fits_inline(template: Mapping[str, Any]) -> bool:
    """Whether CloudFormation takes the template inline (``TemplateBody``)."""
    return len(json.dumps(template, separators=(",", ":")).encode()) <= INLINE_TEMPLATE_LIMIT


def stack_exists(cloudformation: Any, name: str) -> bool:
    try:
        cloudformation.describe_stacks(StackName=name)
    except ClientError as error:
        if "does not exist" not in str(error):
            raise
        return False
    return True


# What a stage's stack holds before its template can go through its own results bucket:
# that bucket, with the access-logs bucket it logs to, and their policies.
STAGING_RESOURCES = (
    RESULTS_BUCKET,
    f"{RESULTS_BUCKET}Policy",
    ACCESS_LOGS_BUCKET,
    f"{ACCESS_LOGS_BUCKET}Policy",
)


def apply_stage_stack(
    session: Any,
    settings: Settings,
    template: Mapping[str, Any],
    *,
    template_bucket: str | None = None,
) -> dict[str, str]:
    """The stage's stack, created or updated to ``template``; its outputs.

    A template over CloudFormation's inline limit (the Glue tables, three per lake
    table, make the example schema's one) goes through ``template_bucket`` when one is
    given, else through the stage's own Athena results bucket, as the pyarrow layer
    does. A stack that does not exist yet is first created with that bucket alone
    (:data:`STAGING_RESOURCES`, defined as in the full template, so the update that
    follows keeps them as they are)."""
    name = stack_name(settings)
    if template_bucket is None and not fits_inline(template):
        if not stack_exists(session.client("cloudformation"), name):
            resources = template["Resources"]
            staging = {
                "AWSTemplateFormatVersion": template["AWSTemplateFormatVersion"],
                "Description": template["Description"],
                "Resources": {
                    logical_id: resources[logical_id] for logical_id in STAGING_RESOURCES
                },
            }
            apply_stack(session, name, staging)
        template_bucket = settings.athena_results_bucket
    return apply_stack(session, name, template, template_bucket=template_bucket)


def _first_failure(cloudformation: Any, name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    for event in reversed(events):
        if event.get("ResourceStatus", "").endswith("_FAILED"):
            return f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}"
    return "see the stack's events"


def configure_stage(
    config: Mapping[str, Any],
    stage: str,
    *,
    account_id: str,
    outputs: Mapping[str, str],
    names: Mapping[str, str],
    listeners: list[str],
    stream_layer: str,
    project_app_name: str,
    log_retention_in_days: int,
    compaction_timeout_seconds: int,
) -> dict[str, Any]:
    """The Chalice config with the stage pointed at the stack's resources and roles (and
    at its user pool, when the stage signs users in).

    ``app_name`` leads every function name Chalice gives (``<app_name>-<stage>-…``), so
    it is the project's, and two projects never share a function; the stage's log
    retention is written so Chalice makes each log group with it. ``stream_layer`` (the
    pyarrow layer's ARN) goes to the stream and compaction functions."""
    updated: dict[str, Any] = json.loads(json.dumps(config))
    updated["app_name"] = project_app_name
    stage_config = updated["stages"][stage]
    stage_config["log_retention_in_days"] = log_retention_in_days
    variables = stage_config.setdefault("environment_variables", {})
    variables["OCG_ACCOUNT_ID"] = account_id
    for output, variable in OUTPUT_VARIABLES.items():
        variables[variable] = outputs[output]
    for output, variable in USER_POOL_OUTPUT_VARIABLES.items():
        if output in outputs:
            variables[variable] = outputs[output]
        else:
            variables.pop(variable, None)
    stage_config["manage_iam_role"] = False
    stage_config["autogen_policy"] = False
    stage_config.pop("iam_role_arn", None)
    functions = stage_config.setdefault("lambda_functions", {})
    for logical_id, name in names.items():
        role = outputs.get(f"{logical_id}{ROLE_OUTPUT_SUFFIX}")
        if role is None:
            raise DeployError(f"the stack has no role for {name} ({logical_id})")
        functions.setdefault(name, {})["iam_role_arn"] = role
    for function in PYARROW_FUNCTIONS:
        functions[names[function]]["layers"] = [stream_layer]
    functions[names[API_FUNCTION]]["lambda_timeout"] = API_TIMEOUT_SECONDS
    functions[names[COMPACTION_FUNCTION]]["lambda_timeout"] = compaction_timeout_seconds
    for listener in listeners:  # chalicelib.queues: six times this is the visibility
        functions[listener]["lambda_timeout"] = FUNCTION_TIMEOUT_SECONDS
    return updated


def deployed_api(deployed: Mapping[str, Any], api_stage: str) -> DeployedApi:
    """The API in a ``.chalice/deployed/<stage>.json`` record."""
    for resource in deployed.get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return DeployedApi(resource["rest_api_id"], api_stage, resource["rest_api_url"])
    raise DeployError("the deployed stage has no API: run chalice deploy first")


def deployed_websocket(
    deployed: Mapping[str, Any] | None, api_stage: str
) -> DeployedWebSocket | None:
    """The WebSocket API in a ``.chalice/deployed/<stage>.json`` record, if any."""
    for resource in (deployed or {}).get("resources", []):
        if resource.get("resource_type") == "websocket_api":
            return DeployedWebSocket(
                resource["websocket_api_id"], api_stage, resource.get("websocket_api_url", "")
            )
    return None


def configure_websocket_stage(
    apigatewayv2: Any,
    websocket: DeployedWebSocket,
    access_logs_arn: str,
    options: StageOptions,
    api_name: str,
) -> None:
    """Give the WebSocket API Chalice deployed its name and, on its stage, the access log
    and the default route throttle path (a)'s template sets (Chalice sets neither)."""
    apigatewayv2.update_api(ApiId=websocket.api_id, Name=api_name)
    apigatewayv2.update_stage(
        ApiId=websocket.api_id,
        StageName=websocket.stage,
        AccessLogSettings={
            "DestinationArn": access_logs_arn,
            "Format": WEBSOCKET_ACCESS_LOG_FORMAT,
        },
        DefaultRouteSettings=websocket_throttle(options),
    )


def give_websocket_endpoint(
    lambda_client: Any, settings: Settings, handlers: list[str], endpoint: str
) -> list[str]:
    """Add ``OCG_WEBSOCKET_ENDPOINT`` to each deployed function's environment (the
    other variables kept); the functions' names."""
    named = []
    for handler in handlers:
        name = function_name(settings, handler)
        lambda_client.get_waiter("function_updated").wait(FunctionName=name)
        current = lambda_client.get_function_configuration(FunctionName=name)
        variables = dict(current.get("Environment", {}).get("Variables", {}))
        if variables.get(WEBSOCKET_ENDPOINT_VARIABLE) != endpoint:
            variables[WEBSOCKET_ENDPOINT_VARIABLE] = endpoint
            lambda_client.update_function_configuration(
                FunctionName=name, Environment={"Variables": variables}
            )
        named.append(name)
    return named


def with_websocket_endpoint(
    config: Mapping[str, Any], stage: str, handlers: list[str], endpoint: str
) -> dict[str, Any]:
    """The Chalice config with the endpoint in each pushing function's
    ``environment_variables`` of the stage, so ``chalice deploy`` keeps giving it."""
    updated: dict[str, Any] = json.loads(json.dumps(config))
    functions = updated["stages"][stage].setdefault("lambda_functions", {})
    for handler in handlers:
        variables = functions.setdefault(handler, {}).setdefault("environment_variables", {})
        variables[WEBSOCKET_ENDPOINT_VARIABLE] = endpoint
    return updated


def tune_event_sources(
    lambda_client: Any,
    deployed: Mapping[str, Any],
    stream_failures_arn: str,
    queue_max_concurrency: int,
) -> list[str]:
    """Set on every mapping Chalice created what it cannot; the mappings' descriptions."""
    tuned = []
    for resource in deployed.get("resources", []):
        kind = resource.get("resource_type")
        if kind == "dynamodb_event":
            settings = stream_settings(stream_failures_arn)
        elif kind == "sqs_event":
            settings = queue_settings(queue_max_concurrency)
        else:
            continue
        lambda_client.update_event_source_mapping(UUID=resource["event_uuid"], **settings)
        tuned.append(f"{resource['name']} ({kind})")
    if not tuned:
        raise DeployError("the deployed stage has no event sources: run chalice deploy first")
    return tuned


def configure_tracker(
    lambda_client: Any,
    deployed: Mapping[str, Any],
    tracker_failures_arn: str,
    *,
    wait: Callable[[float], None] = time.sleep,
) -> str:
    """Give the tracker Chalice deployed its asynchronous-invocation config, on
    ``$LATEST`` as in path (a); its description.

    ``PutFunctionEventInvokeConfig`` replaces whatever config the function had, so
    running this again changes nothing. Lambda refuses a destination the function's
    role may not send to yet, which is how it answers while a just-updated role is still
    reaching IAM: that refusal is retried for about a minute."""
    for resource in deployed.get("resources", []):
        if (
            resource.get("resource_type") == "lambda_function"
            and to_cfn_resource_name(resource["name"]) == TRACKER_FUNCTION
        ):
            _put_invoke_config(
                lambda_client,
                wait,
                FunctionName=resource["lambda_arn"],
                Qualifier="$LATEST",
                **tracker_invoke_settings(tracker_failures_arn),
            )
            queue = tracker_failures_arn.rsplit(":", 1)[-1]
            return f"{resource['name']} (failed events to {queue})"
    raise DeployError(
        f"the deployed stage has no tracker ({TRACKER_FUNCTION}): run chalice deploy first"
    )


def configure_compaction(
    lambda_client: Any, deployed: Mapping[str, Any], settings: Settings
) -> str:
    """Give the compaction function Chalice deployed its asynchronous-invocation settings
    (``deploy.compaction``), on ``$LATEST`` as in path (a); its description. Without a
    destination, no role is involved, so Lambda takes them at once."""
    for resource in deployed.get("resources", []):
        if (
            resource.get("resource_type") == "lambda_function"
            and to_cfn_resource_name(resource["name"]) == COMPACTION_FUNCTION
        ):
            invoke = compaction_invoke_settings(settings)
            lambda_client.put_function_event_invoke_config(
                FunctionName=resource["lambda_arn"], Qualifier="$LATEST", **invoke
            )
            return (
                f"{resource['name']} (no retries; an event is dropped after "
                f"{invoke['MaximumEventAgeInSeconds']} s)"
            )
    raise DeployError(
        f"the deployed stage has no compaction function ({COMPACTION_FUNCTION}): run chalice "
        "deploy first"
    )


def _put_invoke_config(lambda_client: Any, wait: Callable[[float], None], **config: Any) -> None:
    for delay in (*ROLE_PROPAGATION_DELAYS, None):
        try:
            lambda_client.put_function_event_invoke_config(**config)
            return
        except lambda_client.exceptions.InvalidParameterValueException as error:
            message = error.response.get("Error", {}).get("Message", "")
            if delay is None or "permission" not in message.lower():
                raise DeployError(
                    f"Lambda refused the tracker's on-failure destination: {message}"
                ) from None
            wait(delay)


def read_deployed(project_dir: Path, stage: str) -> dict[str, Any]:
    """What ``chalice deploy`` recorded of the stage."""
    deployed = read_deployed_if_any(project_dir, stage)
    if deployed is None:
        record = _deployed_record(project_dir, stage)
        raise DeployError(f"{record} not found: run chalice deploy --stage {stage} first")
    return deployed


def _deployed_record(project_dir: Path, stage: str) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def read_deployed_if_any(project_dir: Path, stage: str) -> dict[str, Any] | None:
    record = _deployed_record(project_dir, stage)
    if not record.is_file():
        return None
    deployed: dict[str, Any] = json.loads(record.read_text())
    return deployed


@dataclass(frozen=True)
class PreparedStage:
    stack: str
    account_id: str
    outputs: dict[str, str]


def prepare_stage(
    session: Any,
    stage: str,
    *,
    config_file: Path = CHALICE_CONFIG,
    stream_layer: str | Path,
    template_bucket: str | None = None,
) -> PreparedStage:
    """Step 1: the stack, then the stage's config pointed at it.

    The account is the caller's: the names derived from it (the buckets) must be the
    ones created in it. Every name is checked against its limit before anything is
    created. ``stream_layer`` is a layer ARN, or a built layer zip to publish. Once the
    stage has been deployed, its API's usage plan and key stay in the stack (an update
    without them would delete the key its clients use)."""
    aws_region = region(session)
    account_id = session.client("sts").get_caller_identity()["Account"]
    if account_id == PLACEHOLDER_ACCOUNT_ID:
        raise DeployError(
            f"the caller's account is {PLACEHOLDER_ACCOUNT_ID}, the documentation's example "
            "account: use credentials of your real account"
        )
    config = read_config(config_file)
    stage_environment(config, stage)  # the stage exists
    options = stage_options(config, stage)
    config["stages"][stage].setdefault("environment_variables", {})["OCG_ACCOUNT_ID"] = account_id
    # The stage's sign-in mode, not one exported in this shell, decides the app's routes.
    variables = {**region_variables(aws_region), AUTH_MODE_VARIABLE: options.auth_mode}
    settings = stage_settings(stage, config_file, {**os.environ, **variables}, config=config)
    app = stage_app(stage, config_file, {**variables, "OCG_ACCOUNT_ID": account_id})
    functions = function_names(app)
    problems = name_problems(settings, stage, functions.values())
    problems += compaction_problems(config, stage, settings)
    problems += user_pool_problems(options, stage, aws_region)
    if problems:
        raise DeployError("; ".join(problems))
    model = load_schema(settings.schema_file, check_sql=True)
    name = stack_name(settings)
    deployed = read_deployed_if_any(config_file.parent.parent, stage)
    api = deployed_api(deployed, api_stage(config, stage)) if deployed else None
    websocket = deployed_websocket(deployed, api_stage(config, stage))
    template = stack_template(settings, model, options, functions, api=api, websocket=websocket)
    outputs = apply_stage_stack(session, settings, template, template_bucket=template_bucket)
    if isinstance(stream_layer, Path):
        stream_layer = publish_layer(session, settings, stream_layer)
    write_config(
        configure_stage(
            config,
            stage,
            account_id=account_id,
            outputs=outputs,
            names=functions,
            listeners=queue_listeners(app),
            stream_layer=stream_layer,
            project_app_name=app_name(settings),
            log_retention_in_days=options.log_retention_in_days,
            compaction_timeout_seconds=compaction_timeout(settings),
        ),
        config_file,
    )
    return PreparedStage(name, account_id, outputs)


@dataclass(frozen=True)
class FinishedStage:
    api: DeployedApi
    api_key_id: str | None  # None: the stage's callers need no key (cognito mode)
    event_sources: list[str]
    tracker: str
    compaction: str
    websocket: DeployedWebSocket | None = None
    pushing: tuple[str, ...] = ()  # the functions given the WebSocket endpoint


def finish_stage(
    session: Any,
    stage: str,
    *,
    config_file: Path = CHALICE_CONFIG,
    template_bucket: str | None = None,
) -> FinishedStage:
    """Step 3, after ``chalice deploy``: the usage plan for its API (or, when its callers
    need no key, the API stage's own throttle), the API stage's access log and tracing,
    the mappings' settings, the tracker's on-failure destination, and the compaction's
    invocation settings."""
    aws_region = region(session)
    settings = stage_settings(stage, config_file, {**os.environ, **region_variables(aws_region)})
    config = read_config(config_file)
    options = stage_options(config, stage)
    deployed = read_deployed(config_file.parent.parent, stage)
    api = deployed_api(deployed, api_stage(config, stage))
    model = load_schema(settings.schema_file, check_sql=True)
    functions = function_names(stage_app(stage, config_file, region_variables(aws_region)))
    websocket = deployed_websocket(deployed, api.stage)
    if websocket is None and WS_MESSAGE_FUNCTION in functions:
        raise DeployError(
            "the deployed stage has no WebSocket API although the app has WebSocket "
            "handlers: run chalice deploy first"
        )
    template = stack_template(settings, model, options, functions, api=api, websocket=websocket)
    outputs = apply_stage_stack(session, settings, template, template_bucket=template_bucket)
    log_api_stage(
        session.client("apigateway"),
        api,
        outputs["ApiAccessLogsArn"],
        throttle=None if options.uses_api_key else stage_throttle(options),
    )
    lambda_client = session.client("lambda")
    tuned = tune_event_sources(
        lambda_client, deployed, outputs["StreamFailuresArn"], options.queue_max_concurrency
    )
    tracker = configure_tracker(lambda_client, deployed, outputs["TrackerFailuresArn"])
    compaction = configure_compaction(lambda_client, deployed, settings)
    pushing: list[str] = []
    if websocket is not None:
        configure_websocket_stage(
            session.client("apigatewayv2"),
            websocket,
            outputs["WebSocketAccessLogsArn"],
            options,
            websocket_api_name(settings),
        )
        endpoint = websocket_endpoint(websocket.api_id, aws_region, websocket.stage)
        handlers = [functions[f] for f in PUSHING_FUNCTIONS if f in functions]
        write_config(with_websocket_endpoint(config, stage, handlers, endpoint), config_file)
        pushing = give_websocket_endpoint(lambda_client, settings, handlers, endpoint)
    return FinishedStage(
        api,
        outputs.get("ApiKeyId"),
        tuned,
        tracker,
        compaction,
        websocket,
        tuple(pushing),
    )


def log_api_stage(
    apigateway: Any,
    api: DeployedApi,
    access_logs_arn: str,
    *,
    throttle: Mapping[str, Any] | None = None,
) -> None:
    """Give the stage Chalice deployed its access log and X-Ray tracing, as path (a)'s
    template does (Chalice sets neither, and its redeploys leave them alone), and the
    ``throttle`` of every method (``deploy.resources.stage_throttle``) when given."""
    operations = [
        {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": access_logs_arn},
        {"op": "replace", "path": "/accessLogSettings/format", "value": API_ACCESS_LOG_FORMAT},
        {"op": "replace", "path": "/tracingEnabled", "value": "true"},
    ]
    if throttle is not None:
        methods = f"{throttle['ResourcePath']}/{throttle['HttpMethod']}"
        operations += [
            {
                "op": "replace",
                "path": f"{methods}/throttling/rateLimit",
                "value": str(throttle["ThrottlingRateLimit"]),
            },
            {
                "op": "replace",
                "path": f"{methods}/throttling/burstLimit",
                "value": str(throttle["ThrottlingBurstLimit"]),
            },
        ]
    apigateway.update_stage(
        restApiId=api.rest_api_id, stageName=api.stage, patchOperations=operations
    )


def publish_layer(session: Any, settings: Settings, zip_path: Path) -> str:
    """A built layer as a version of the stage's layer, published once per content.

    The zip's SHA-256 is in the version's description, so an unchanged layer is found
    and reused rather than published again. The zip travels through the Athena results
    bucket (a direct upload is limited to 50 MB), where it expires with the results."""
    body = zip_path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    name = stage_resource_name(settings, LAYER_SUFFIX)
    functions = session.client("lambda")
    for page in functions.get_paginator("list_layer_versions").paginate(LayerName=name):
        for version in page["LayerVersions"]:
            if digest in version.get("Description", ""):
                arn: str = version["LayerVersionArn"]
                return arn
    key = f"deploy/{name}/{digest}.zip"
    session.client("s3").put_object(Bucket=settings.athena_results_bucket, Key=key, Body=body)
    published = functions.publish_layer_version(
        LayerName=name,
        Description=f"pyarrow for the stream and compaction functions, sha256 {digest}",
        Content={"S3Bucket": settings.athena_results_bucket, "S3Key": key},
        CompatibleRuntimes=[f"python{runtime_python_version()}"],
        CompatibleArchitectures=[ARCHITECTURE],
    )
    published_arn: str = published["LayerVersionArn"]
    return published_arn


def region(session: Any) -> str:
    """The session's region, which the stack, the stage and the layer are made for."""
    region: str | None = session.region_name
    if not region:
        raise DeployError("no AWS region: set AWS_DEFAULT_REGION, or a region in your AWS profile")
    return region
