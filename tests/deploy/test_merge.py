"""Path (a): ``chalice package --merge-template`` makes one stack that cfn-lint accepts
(the SAM transform included), with every event source wired to its resource and the
lake's compaction on its schedule, one run at a time."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from deploy.options import StageOptions
from deploy.package import ACCOUNT_MARKER, MARKERS, package_stage, with_references
from deploy.validate import sam_transform, validate_packaged

LAYER = "arn:aws:lambda:us-east-1:111111111111:layer:pyarrow:7"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The dev stage packaged with ``python -m deploy package`` (a layer given by ARN,
    so nothing is built): its checks pass and its template is what a user deploys."""
    out = tmp_path_factory.mktemp("package")

    assert package_stage("dev", out, layer_choice=LAYER) == []

    template: dict[str, Any] = json.loads((out / "sam.json").read_text())
    return template


def events(template: dict[str, Any], function: str) -> dict[str, Any]:
    (event,) = template["Resources"][function]["Properties"]["Events"].values()
    properties: dict[str, Any] = event["Properties"]
    return properties


def test_the_stream_and_compaction_functions_alone_get_the_pyarrow_layer(
    packaged: dict[str, Any],
) -> None:
    functions = {
        name: resource["Properties"]
        for name, resource in packaged["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    assert functions["OnTableChange"]["Layers"] == functions["CompactLake"]["Layers"] == [LAYER]
    assert sorted(name for name, function in functions.items() if "Layers" in function) == [
        "CompactLake",
        "OnTableChange",
    ]


def test_an_action_iam_does_not_know_is_found_after_the_transform(
    packaged: dict[str, Any],
) -> None:
    broken = copy.deepcopy(packaged)
    role = broken["Resources"]["APIHandlerRole"]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"][1]["Action"].append(
        "dynamodb:TransactWriteItems"
    )

    (problem,) = validate_packaged(broken, "us-east-1")
    assert problem.startswith("transformed template: [W3037")
    assert "transactwriteitems" in problem


def test_the_api_has_a_usage_plan_with_a_key_for_its_stage(packaged: dict[str, Any]) -> None:
    translated = sam_transform(packaged, "us-east-1")["Resources"]

    plan = translated["ApiUsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPIapiStage"}}]
    assert plan["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    key = translated["ApiUsagePlanKey"]["Properties"]
    assert key["KeyId"] == {"Ref": "ApiKey"} and key["UsagePlanId"] == {"Ref": "ApiUsagePlan"}


def test_only_the_playground_page_needs_no_api_key(packaged: dict[str, Any]) -> None:
    paths = packaged["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]

    assert "security" not in paths["/playground"]["get"]
    for method in ("get", "post"):
        assert paths["/graphql"][method]["security"] == [{"api_key": []}]


def test_the_stream_reads_the_created_table_and_keeps_failing_records(
    packaged: dict[str, Any],
) -> None:
    stream = events(packaged, "OnTableChange")

    assert stream["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["MaximumRetryAttempts"] == 5
    assert stream["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["StreamFailures", "Arn"]}}
    }
    assert packaged["Resources"]["Table"]["Type"] == "AWS::DynamoDB::Table"
    failures = packaged["Resources"]["StreamFailures"]["Properties"]
    assert failures["QueueName"] == "ocg-shop-stream-failures"


def rules_targeting(translated: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The EventBridge rules of the transformed template that invoke ``function``."""
    return [
        rule["Properties"]
        for rule in translated.values()
        if rule["Type"] == "AWS::Events::Rule"
        and [target["Arn"] for target in rule["Properties"]["Targets"]]
        == [{"Fn::GetAtt": [function, "Arn"]}]
    ]


def test_the_tracker_keeps_the_events_lambda_retried_in_vain(packaged: dict[str, Any]) -> None:
    configs = sorted(
        k for k, r in packaged["Resources"].items() if r["Type"] == "AWS::Lambda::EventInvokeConfig"
    )

    assert configs == ["CompactLakeEventInvokeConfig", "OnAthenaStateChangeEventInvokeConfig"]
    name = "OnAthenaStateChangeEventInvokeConfig"
    assert packaged["Resources"][name]["Properties"] == {
        "FunctionName": {"Ref": "OnAthenaStateChange"},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 6 * 3600,
        "DestinationConfig": {
            "OnFailure": {"Destination": {"Fn::GetAtt": ["TrackerFailures", "Arn"]}}
        },
    }
    failures = packaged["Resources"]["TrackerFailures"]
    assert failures["Type"] == "AWS::SQS::Queue"
    assert failures["Properties"]["QueueName"] == "ocg-shop-tracker-failures"
    # After the SAM transform the reference still names the tracker, an EventBridge target.
    translated = sam_transform(packaged, "us-east-1")["Resources"]
    assert translated[name]["Properties"]["FunctionName"] == {"Ref": "OnAthenaStateChange"}
    tracker = translated["OnAthenaStateChange"]
    assert tracker["Type"] == "AWS::Lambda::Function"
    (rule,) = rules_targeting(translated, "OnAthenaStateChange")
    assert rule["EventPattern"]["source"] == ["aws.athena"]


def test_compaction_runs_on_its_schedule_one_run_at_a_time(packaged: dict[str, Any]) -> None:
    function = packaged["Resources"]["CompactLake"]["Properties"]
    (event,) = function["Events"].values()

    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(15 minutes)"}}
    assert function["ReservedConcurrentExecutions"] == 1
    assert function["MemorySize"] == 2048
    assert function["FunctionName"] == "ocg-shop-dev-compact_lake"
    # It ends a minute before the next run is due, so no run finds the last one going
    # (which its concurrency of 1 would throttle) ...
    assert function["Timeout"] == 14 * 60 < 15 * 60 <= 900
    # ... and Lambda does not retry a failed run into the schedule: the next run is one.
    assert packaged["Resources"]["CompactLakeEventInvokeConfig"]["Properties"] == {
        "FunctionName": {"Ref": "CompactLake"},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": 15 * 60,
    }
    translated = sam_transform(packaged, "us-east-1")["Resources"]
    (rule,) = rules_targeting(translated, "CompactLake")
    assert rule["ScheduleExpression"] == "rate(15 minutes)"
    assert translated["CompactLake"]["Properties"]["ReservedConcurrentExecutions"] == 1
    (permission,) = [
        r["Properties"]
        for r in translated.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["FunctionName"] == {"Ref": "CompactLake"}
    ]
    assert permission["Principal"] == "events.amazonaws.com"


def test_compactions_alarms_fit_its_timeout(packaged: dict[str, Any]) -> None:
    timeout_ms = packaged["Resources"]["CompactLake"]["Properties"]["Timeout"] * 1000
    alarms = {
        (a["Properties"]["MetricName"], a["Properties"]["Threshold"])
        for a in packaged["Resources"].values()
        if a["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "FunctionName", "Value": "ocg-shop-dev-compact_lake"}
        in a["Properties"].get("Dimensions", [])
    }

    (duration,) = [threshold for metric, threshold in alarms if metric == "Duration"]
    assert 0 < duration < timeout_ms  # told before runs time out
    assert {metric for metric, _ in alarms} == {"Errors", "Throttles", "Duration"}


@pytest.mark.parametrize(
    ("function", "queue"),
    [("OnCascadeMessage", "CascadeQueue"), ("OnDeletionMessage", "DeletionQueue")],
)
def test_each_queue_listener_reads_the_created_queue_and_reports_failures(
    packaged: dict[str, Any], function: str, queue: str
) -> None:
    source = events(packaged, function)

    assert source["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert packaged["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    timeout = packaged["Resources"][function]["Properties"]["Timeout"]
    assert packaged["Resources"][queue]["Properties"]["VisibilityTimeout"] >= 6 * timeout
    assert source["ScalingConfig"] == {"MaximumConcurrency": StageOptions().queue_max_concurrency}


def test_the_api_and_the_stream_functions_get_the_memory_the_config_gives_them(
    packaged: dict[str, Any],
) -> None:
    memory = {
        name: resource["Properties"]["MemorySize"]
        for name, resource in packaged["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    assert memory["APIHandler"] == memory["OnTableChange"] == 512
    assert memory["CompactLake"] == 2048
    assert memory["OnCascadeMessage"] == 128  # Chalice's default


FUNCTIONS = (
    "APIHandler",
    "OnTableChange",
    "OnCascadeMessage",
    "OnDeletionMessage",
    "CompactLake",
    "WebsocketConnect",
    "WebsocketMessage",
    "WebsocketDisconnect",
)
WS_API_ID = "${WebsocketAPI}"


def allowed(template: dict[str, Any], function: str) -> dict[str, list[Any]]:
    """The function's own role's actions, each with the resources it is allowed on."""
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    actions: dict[str, list[Any]] = {}
    for statement in policy["PolicyDocument"]["Statement"]:
        for action in statement["Action"]:
            actions.setdefault(action, []).extend(statement["Resource"])
    return actions


def test_each_function_has_a_role_of_its_own_and_no_wildcards(
    packaged: dict[str, Any],
) -> None:
    roles = [k for k, r in packaged["Resources"].items() if r["Type"] == "AWS::IAM::Role"]

    assert "DefaultRole" not in roles
    # One per function, and API Gateway's own, for its logs.
    assert sorted(roles) == sorted(
        [f"{function}Role" for function in {*FUNCTIONS, "OnAthenaStateChange"}]
        + ["ApiGatewayLogsRole"]
    )
    for function in (*FUNCTIONS, "OnAthenaStateChange"):
        actions = allowed(packaged, function)
        assert all("*" not in action for action in actions)
        assert all(resource != "*" for resources in actions.values() for resource in resources)


def test_each_function_may_do_only_what_its_code_does(packaged: dict[str, Any]) -> None:
    api, stream = allowed(packaged, "APIHandler"), allowed(packaged, "OnTableChange")
    cascade, tracker = (
        allowed(packaged, "OnCascadeMessage"),
        allowed(packaged, "OnAthenaStateChange"),
    )

    assert "dynamodb:ConditionCheckItem" in api and "athena:StartQueryExecution" in api
    assert "s3:PutObject" in stream and "dynamodb:PutItem" not in stream
    assert not any(action.startswith("athena:") for action in cascade)
    assert "athena:StartQueryExecution" not in tracker
    compaction = allowed(packaged, "CompactLake")
    # The stream handler writes live files and tombstones; compaction folds them into
    # compacted files, and deletes what it folded. No one else writes the lake.
    lake_writers = [f for f in FUNCTIONS if "s3:DeleteObject" in allowed(packaged, f)]
    assert lake_writers == ["OnTableChange", "CompactLake"]
    assert compaction["s3:PutObject"] == [{"Fn::Sub": "${LakeBucket.Arn}/compacted/*"}]
    assert not any(action.startswith(("dynamodb:", "sqs:", "athena:")) for action in compaction)


def test_only_the_tracker_may_send_to_its_failure_queue(packaged: dict[str, Any]) -> None:
    tracker_failures = {"Fn::GetAtt": ["TrackerFailures", "Arn"]}

    on_the_queue = {
        function: [
            action
            for action, resources in allowed(packaged, function).items()
            if tracker_failures in resources
        ]
        for function in (*FUNCTIONS, "OnAthenaStateChange")
    }

    assert on_the_queue == {
        "APIHandler": [],
        "OnTableChange": [],
        "OnCascadeMessage": [],
        "OnDeletionMessage": [],
        "OnAthenaStateChange": ["sqs:SendMessage"],
        "CompactLake": [],
        "WebsocketConnect": [],
        "WebsocketMessage": [],
        "WebsocketDisconnect": [],
    }


def _connections(method: str) -> dict[str, str]:
    return {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        f"{WS_API_ID}/api/{method}/@connections/*"
    }


def test_only_the_pushing_functions_manage_connections_of_the_websocket_api_alone(
    packaged: dict[str, Any],
) -> None:
    managing = {
        function: allowed(packaged, function).get("execute-api:ManageConnections", [])
        for function in (*FUNCTIONS, "OnAthenaStateChange")
    }

    posting = [_connections("POST")]
    assert managing == {
        "APIHandler": [],
        "OnTableChange": posting,
        "OnCascadeMessage": [],
        "OnDeletionMessage": posting,
        "OnAthenaStateChange": posting,
        "CompactLake": [],
        "WebsocketConnect": [],
        # Only the message function closes a connection (a protocol error, a bad token).
        "WebsocketMessage": [*posting, _connections("DELETE")],
        "WebsocketDisconnect": [],
    }


def test_the_websocket_functions_touch_only_connection_items_but_the_message_one(
    packaged: dict[str, Any],
) -> None:
    """$connect records the connection, $disconnect removes it and its subscriptions:
    both only under ``wsConnection#`` (dynamodb:LeadingKeys)."""
    for function, expected in (
        ("WebsocketConnect", ["dynamodb:PutItem"]),
        ("WebsocketDisconnect", ["dynamodb:DeleteItem", "dynamodb:Query"]),
    ):
        role = packaged["Resources"][f"{function}Role"]["Properties"]["Policies"][0]
        (logs, items) = role["PolicyDocument"]["Statement"]
        assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert items["Action"] == expected
        assert items["Resource"] == [{"Fn::GetAtt": ["Table", "Arn"]}]
        assert items["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["wsConnection#*"]}
        }
    # Queries and mutations travel over the socket too: the message function may do what
    # the API function does.
    message, api = allowed(packaged, "WebsocketMessage"), allowed(packaged, "APIHandler")
    assert set(api) < set(message)


def test_the_websocket_api_is_named_logged_and_throttled(packaged: dict[str, Any]) -> None:
    resources = packaged["Resources"]

    api = resources["WebsocketAPI"]["Properties"]
    assert api["Name"] == "ocg-shop-dev-ws" and api["ProtocolType"] == "WEBSOCKET"
    stage = resources["WebsocketAPIStage"]
    assert stage["Properties"]["StageName"] == "api"
    setting = stage["Properties"]["AccessLogSettings"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["WebSocketAccessLogs", "Arn"]}
    assert json.loads(setting["Format"])["connectionId"] == "$context.connectionId"
    logs = resources["WebSocketAccessLogs"]
    assert logs["Properties"]["RetentionInDays"] == 30
    assert logs["DeletionPolicy"] == "Delete"
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": 100,
        "ThrottlingBurstLimit": 200,
    }
    assert "ApiGatewayAccount" in stage["DependsOn"]
    routes = {
        r["Properties"]["RouteKey"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    assert routes == {"$connect", "$default", "$disconnect"}


def test_the_pushing_functions_get_the_management_api_endpoint(
    packaged: dict[str, Any],
) -> None:
    endpoint = {
        "Fn::Sub": f"https://{WS_API_ID}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/api"
    }

    given = {
        function: packaged["Resources"][function]["Properties"]["Environment"]["Variables"].get(
            "OCG_WEBSOCKET_ENDPOINT"
        )
        for function in (*FUNCTIONS, "OnAthenaStateChange")
    }

    pushing = {"OnTableChange", "OnAthenaStateChange", "OnDeletionMessage", "WebsocketMessage"}
    assert {function for function, value in given.items() if value is not None} == pushing
    assert all(given[function] == endpoint for function in pushing)
    # One address for clients: Chalice's output.
    urls = {name: value for name, value in packaged["Outputs"].items() if "wss://" in str(value)}
    assert urls == {
        "WebsocketConnectEndpointURL": {
            "Value": {
                "Fn::Sub": f"wss://{WS_API_ID}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/api/"
            }
        }
    }


def test_the_websocket_functions_have_alarms_like_the_others(packaged: dict[str, Any]) -> None:
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in packaged["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }

    for function, handler in (
        ("WebsocketConnect", "websocket_connect"),
        ("WebsocketMessage", "websocket_message"),
        ("WebsocketDisconnect", "websocket_disconnect"),
    ):
        for metric in ("Errors", "Throttles"):
            alarm = alarms[f"ocg-shop-dev-{function}-{metric}"]
            assert alarm["MetricName"] == metric
            assert alarm["Dimensions"] == [
                {"Name": "FunctionName", "Value": f"ocg-shop-dev-{handler}"}
            ]


def test_functions_and_their_log_groups_are_named_as_chalice_deploy_names_them(
    packaged: dict[str, Any],
) -> None:
    translated = sam_transform(packaged, "us-east-1")["Resources"]
    groups = {
        resource["Properties"]["LogGroupName"]: resource["Properties"]
        for resource in translated.values()
        if resource["Type"] == "AWS::Logs::LogGroup"
    }

    for function in (*FUNCTIONS, "OnAthenaStateChange"):
        name = translated[function]["Properties"]["FunctionName"]
        assert name.startswith("ocg-shop-dev-")
        # The group Lambda writes to exists, with the stage's retention.
        assert groups[f"/aws/lambda/{name}"]["RetentionInDays"] == 30
    assert "/aws/apigateway/ocg-shop-dev-access" in groups
    assert "/aws/apigateway/ocg-shop-dev-ws-access" in groups
    assert translated["WebsocketMessage"]["Properties"]["FunctionName"] == (
        "ocg-shop-dev-websocket_message"
    )


def test_the_api_function_ends_before_api_gateway_gives_up(packaged: dict[str, Any]) -> None:
    assert packaged["Resources"]["APIHandler"]["Properties"]["Timeout"] == 28 < 29


def test_the_api_stage_logs_every_access_and_traces(packaged: dict[str, Any]) -> None:
    translated = sam_transform(packaged, "us-east-1")["Resources"]

    (stage,) = [r for r in translated.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    assert json.loads(setting["Format"])["status"] == "$context.status"
    assert stage["Properties"]["TracingEnabled"] is True
    # API Gateway refuses an access log until the account has its logs role.
    assert "ApiGatewayAccount" in packaged["Resources"]["RestAPI"]["DependsOn"]


def test_the_package_names_the_account_it_is_deployed_in(packaged: dict[str, Any]) -> None:
    """Packaged without an account id, every name and ARN that holds one takes the
    stack's; no placeholder ships."""
    text = json.dumps(packaged)
    resources = packaged["Resources"]

    assert "123456789012" not in text and not any(marker in text for marker in MARKERS)
    assert ACCOUNT_MARKER in MARKERS
    assert resources["LakeBucket"]["Properties"]["BucketName"] == {
        "Fn::Sub": "ocg-shop-${AWS::AccountId}"
    }
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["OCG_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}
    # The dev stage signs no one in: no user pool, and no variable naming one.
    assert "UserPool" not in resources and "UserPoolId" not in packaged["Outputs"]
    assert "OCG_COGNITO_USER_POOL_ID" not in variables
    workgroup = resources["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["ResultConfiguration"]["OutputLocation"] == {
        "Fn::Sub": "s3://ocg-shop-athena-${AWS::AccountId}/results/"
    }


def test_a_string_with_its_own_substitution_syntax_is_kept_literal() -> None:
    markers = {"000000000000": "AWS::AccountId", "pool-marker": "UserPool"}

    assert with_references({"a": ["x-000000000000-${y}"]}, markers) == {
        "a": [{"Fn::Sub": "x-${AWS::AccountId}-${!y}"}]
    }
    assert with_references({"Fn::Sub": "arn:000000000000:${Table}"}, markers) == {
        "Fn::Sub": "arn:${AWS::AccountId}:${Table}"
    }
    # A string that is just a marker refers to what it stands for.
    assert with_references({"a": "pool-marker", "b": "000000000000"}, markers) == {
        "a": {"Ref": "UserPool"},
        "b": {"Ref": "AWS::AccountId"},
    }
    assert with_references({"a": "pool-marker/000000000000"}, markers) == {
        "a": {"Fn::Sub": "${UserPool}/${AWS::AccountId}"}
    }
