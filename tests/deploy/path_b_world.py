"""Path (b) on moto: the constants of its stage and what ``chalice deploy`` would do.

The fixtures that start this world (``session``, ``config_file``) are in ``conftest.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from deploy.stage import read_config

REGION = "us-east-1"
STAGE = "dev"
ACCOUNT = "210987654321"  # the caller's (moto's default is the example account)
LAYER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:pyarrow:1"
FUNCTIONS = {
    "api_handler",
    "on_table_change",
    "on_cascade_message",
    "on_deletion_message",
    "on_athena_state_change",
    "compact_lake",
    "websocket_connect",
    "websocket_message",
    "websocket_disconnect",
}
WEBSOCKET_API_ID = "ws1234abcd"


class WebSocketStages:
    """API Gateway V2's ``UpdateStage``, which moto lacks: what ``finish`` asked of it
    (every other call goes to moto)."""

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        self.updates: list[dict[str, Any]] = []
        make_api_call = BaseClient._make_api_call

        def call(client: Any, operation: str, params: Any) -> Any:
            service = client.meta.service_model.service_name
            if service == "apigatewayv2" and operation == "UpdateStage":
                self.updates.append(dict(params))
                return {}
            return make_api_call(client, operation, params)

        patch.setattr(BaseClient, "_make_api_call", call)


def chalice_deploy(session: Any, config_file: Path) -> None:
    """What ``chalice deploy`` does that ``finish`` builds on, recorded as Chalice records
    it in ``.chalice/deployed/<stage>.json``: the API, the event handlers' functions, a
    mapping per stream or queue source, the tracker's EventBridge rule and the
    compaction's schedule (moto cannot import Chalice's Swagger 2.0 API; FIELD-NOTES,
    moto)."""
    config = read_config(config_file)
    stage = config["stages"][STAGE]
    variables = stage["environment_variables"]
    functions = session.client("lambda")
    gateway = session.client("apigateway")
    api_id = gateway.create_rest_api(name=config["app_name"])["id"]
    root = gateway.get_resources(restApiId=api_id)["items"][0]["id"]
    gateway.put_method(
        restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE"
    )
    gateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="POST", type="MOCK")
    gateway.create_deployment(restApiId=api_id, stageName="api")
    resources: list[dict[str, Any]] = [
        {
            "name": "rest_api",
            "resource_type": "rest_api",
            "rest_api_id": api_id,
            "rest_api_url": f"https://{api_id}.execute-api.{REGION}.amazonaws.com/api/",
        }
    ]
    sources = [
        ("on_table_change", "dynamodb", variables["OCG_TABLE_STREAM_ARN"]),
        ("on_cascade_message", "sqs", variables["OCG_CASCADE_QUEUE_ARN"]),
        ("on_deletion_message", "sqs", variables["OCG_DELETION_QUEUE_ARN"]),
        ("on_athena_state_change", "cloudwatch", None),
        ("compact_lake", "scheduled", None),
    ]
    for name, kind, source_arn in sources:
        function = functions.create_function(
            FunctionName=f"{config['app_name']}-{STAGE}-{name}",
            Runtime="python3.11",
            Role=stage["lambda_functions"][name]["iam_role_arn"],
            Handler=f"app.{name}",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        resources.append(
            {
                "name": name,
                "resource_type": "lambda_function",
                "lambda_arn": function["FunctionArn"],
            }
        )
        if source_arn is None:  # an EventBridge rule targets it
            resources.append(
                {
                    "name": f"{name}-event",
                    "resource_type": f"{kind}_event",
                    "rule_name": f"{config['app_name']}-{STAGE}-{name}-event",
                }
            )
            continue
        extra = {"StartingPosition": "TRIM_HORIZON"} if kind == "dynamodb" else {}
        mapping = functions.create_event_source_mapping(
            EventSourceArn=source_arn, FunctionName=function["FunctionArn"], **extra
        )
        resources.append(
            {
                "name": f"{name}-{kind}-event-source",
                "resource_type": f"{kind}_event",
                "event_uuid": mapping["UUID"],
                "lambda_arn": function["FunctionArn"],
            }
        )
    # The WebSocket API and its functions, named as Chalice names them.
    gateway_v2 = session.client("apigatewayv2")
    ws_api = gateway_v2.create_api(
        Name=f"{config['app_name']}-{STAGE}-websocket-api",
        ProtocolType="WEBSOCKET",
        RouteSelectionExpression="$request.body.action",
    )["ApiId"]
    resources.append(
        {
            "name": "websocket_api",
            "resource_type": "websocket_api",
            "websocket_api_id": ws_api,
            "websocket_api_url": f"wss://{ws_api}.execute-api.{REGION}.amazonaws.com/api/",
        }
    )
    for name in ("websocket_connect", "websocket_message", "websocket_disconnect"):
        function = functions.create_function(
            FunctionName=f"{config['app_name']}-{STAGE}-{name}",
            Runtime="python3.11",
            Role=stage["lambda_functions"][name]["iam_role_arn"],
            Handler=f"app.on_ws_{name.removeprefix('websocket_')}",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
            Environment={"Variables": dict(variables)},
        )
        resources.append(
            {
                "name": name,
                "resource_type": "lambda_function",
                "lambda_arn": function["FunctionArn"],
            }
        )
    deployed = config_file.parent / "deployed"
    deployed.mkdir()
    (deployed / f"{STAGE}.json").write_text(json.dumps({"resources": resources}))
