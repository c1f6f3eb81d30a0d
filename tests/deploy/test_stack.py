"""Path (b) end to end on moto: ``prepare`` makes the stack and the stage's config,
``chalice deploy`` (its record, as Chalice writes it) wires the handlers, ``finish``
completes the mappings and the API's key, and the real handlers, configured by the
written config alone, serve an entity, its lake file and a task."""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import WaiterError
from chalice.config import Config
from chalice.test import Client

from chalicelib.keys import task_item_keys
from chalicelib.queues import FUNCTION_TIMEOUT_SECONDS
from deploy.resources import API_TIMEOUT_SECONDS
from deploy.stack import (
    INLINE_TEMPLATE_LIMIT,
    ROLE_PROPAGATION_DELAYS,
    DeployError,
    apply_stack,
    configure_tracker,
    finish_stage,
    prepare_stage,
    read_deployed,
)
from deploy.stage import read_config, stage_environment, stage_settings
from tests.conftest import ROOT
from tests.deploy import cloudformation_world
from tests.deploy.path_b_world import (
    ACCOUNT,
    FUNCTIONS,
    LAYER,
    STAGE,
    WebSocketStages,
    chalice_deploy,
)


def test_prepare_creates_the_stack_and_points_the_stage_at_it(
    session: Any, config_file: Path
) -> None:
    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    stage = read_config(config_file)["stages"][STAGE]
    variables = stage["environment_variables"]
    table = session.client("dynamodb").describe_table(TableName="OCG-shop")["Table"]
    assert prepared.account_id == variables["OCG_ACCOUNT_ID"] == ACCOUNT
    assert variables["OCG_TABLE_STREAM_ARN"] == table["LatestStreamArn"]
    assert not variables["OCG_TABLE_STREAM_ARN"].endswith("/latest")
    assert (
        variables["OCG_CASCADE_QUEUE_URL"]
        == (session.client("sqs").get_queue_url(QueueName="ocg-shop-cascade")["QueueUrl"])
    )
    assert stage["manage_iam_role"] is False and stage["autogen_policy"] is False
    assert "iam_role_arn" not in stage
    assert set(stage["lambda_functions"]) == FUNCTIONS
    iam = session.client("iam")
    for name, function in stage["lambda_functions"].items():
        role = iam.get_role(RoleName=function["iam_role_arn"].rsplit("/", 1)[-1])["Role"]
        assert role["Arn"] == function["iam_role_arn"], name
    # pyarrow for the functions that write Parquet, and for them only.
    assert stage["lambda_functions"]["on_table_change"]["layers"] == [LAYER]
    assert stage["lambda_functions"]["compact_lake"]["layers"] == [LAYER]
    assert "layers" not in stage["lambda_functions"]["api_handler"]
    # Function names lead with the project's app name; logs kept as the stage says; the
    # API function stops before API Gateway gives up on it.
    assert read_config(config_file)["app_name"] == "ocg-shop"
    assert stage["log_retention_in_days"] == 30
    assert stage["lambda_functions"]["api_handler"]["lambda_timeout"] == API_TIMEOUT_SECONDS < 29
    for listener in ("on_cascade_message", "on_deletion_message"):
        assert stage["lambda_functions"][listener]["lambda_timeout"] == FUNCTION_TIMEOUT_SECONDS
    # Compaction ends a minute before its next run is due (every 15 minutes), and
    # chalice deploy gives it a concurrency of 1 and room for a day's partition.
    assert stage["lambda_functions"]["compact_lake"]["lambda_timeout"] == 14 * 60
    compaction = Config(
        chalice_stage=STAGE, function_name="compact_lake", config_from_disk=read_config(config_file)
    )
    assert compaction.reserved_concurrency == 1
    assert compaction.lambda_memory_size >= 1024
    glue = session.client("glue")
    tables = {t["Name"] for t in glue.get_tables(DatabaseName="shop_db")["TableList"]}
    for table in ("user", "product", "user_favorite_products"):
        assert {f"{table}__live", f"{table}__compacted", f"{table}__deleted"} <= tables
    workgroup = session.client("athena").get_work_group(WorkGroup="ocg-shop")["WorkGroup"]
    output = workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"]
    assert output == f"s3://ocg-shop-athena-{ACCOUNT}/results/"
    (tls_only, *_) = cloudformation_world.bucket_policies[f"ocg-shop-{ACCOUNT}"]["Statement"]
    assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_prepare_twice_changes_nothing(session: Any, config_file: Path) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    first = config_file.read_text()

    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    assert config_file.read_text() == first
    stacks = session.client("cloudformation").describe_stacks(StackName="ocg-shop-dev")
    assert stacks["Stacks"][0]["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


def test_a_built_layer_is_published_once_per_content(
    session: Any, config_file: Path, tmp_path: Path
) -> None:
    layer = tmp_path / "pyarrow-layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("python/pyarrow/__init__.py", "")

    prepare_stage(session, STAGE, config_file=config_file, stream_layer=layer)
    first = read_config(config_file)["stages"][STAGE]["lambda_functions"]["on_table_change"]
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=layer)
    again = read_config(config_file)["stages"][STAGE]["lambda_functions"]["on_table_change"]

    (published,) = session.client("lambda").list_layer_versions(LayerName="ocg-shop-dev-pyarrow")[
        "LayerVersions"
    ]
    assert first["layers"] == again["layers"] == [published["LayerVersionArn"]]
    assert hashlib.sha256(layer.read_bytes()).hexdigest() in published["Description"]


def test_finish_before_chalice_deploy_says_what_to_run(session: Any, config_file: Path) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    with pytest.raises(DeployError, match="run chalice deploy --stage dev first"):
        finish_stage(session, STAGE, config_file=config_file)


def test_finish_sets_what_chalice_cannot_and_gives_the_api_a_key(
    session: Any, config_file: Path
) -> None:
    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    chalice_deploy(session, config_file)

    finished = finish_stage(session, STAGE, config_file=config_file)

    functions = session.client("lambda")
    mappings = {
        m["FunctionArn"].rsplit(":", 1)[-1]: m
        for m in functions.list_event_source_mappings()["EventSourceMappings"]
    }
    stream = mappings[f"ocg-shop-{STAGE}-on_table_change"]
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["MaximumRetryAttempts"] == 5
    failures = prepared.outputs["StreamFailuresArn"]
    assert stream["DestinationConfig"] == {"OnFailure": {"Destination": failures}}
    for queue_listener in ("on_cascade_message", "on_deletion_message"):
        mapping = mappings[f"ocg-shop-{STAGE}-{queue_listener}"]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    gateway = session.client("apigateway")
    (plan,) = gateway.get_usage_plans(keyId=finished.api_key_id)["items"]
    assert plan["apiStages"] == [{"apiId": finished.api.rest_api_id, "stage": "api"}]
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert plan["quota"] == {"limit": 10_000, "period": "DAY"}
    assert finished.api.url.endswith("/api/")
    api_stage = gateway.get_stage(restApiId=finished.api.rest_api_id, stageName="api")
    assert api_stage["accessLogSettings"]["destinationArn"] == prepared.outputs["ApiAccessLogsArn"]
    assert json.loads(api_stage["accessLogSettings"]["format"])["requestId"] == "$context.requestId"
    assert api_stage["tracingEnabled"] is True


def test_finish_gives_the_tracker_its_failure_queue_and_again_changes_nothing(
    session: Any, config_file: Path
) -> None:
    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    chalice_deploy(session, config_file)

    first = finish_stage(session, STAGE, config_file=config_file)
    again = finish_stage(session, STAGE, config_file=config_file)

    described = "on_athena_state_change (failed events to ocg-shop-tracker-failures)"
    assert first.tracker == again.tracker == described
    failures = prepared.outputs["TrackerFailuresArn"]
    # moto 5.2.5 appends each put and shows the first (Lambda replaces the config), so
    # this sees the first finish's config; both finishes put the same one.
    config = session.client("lambda").get_function_event_invoke_config(
        FunctionName=f"ocg-shop-{STAGE}-on_athena_state_change", Qualifier="$LATEST"
    )
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": failures}}
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 6 * 3600
    # Compaction: no retries (the next scheduled run is one), an event dropped once the
    # next is due.
    assert first.compaction == again.compaction
    assert first.compaction.startswith("compact_lake (no retries")
    compaction = session.client("lambda").get_function_event_invoke_config(
        FunctionName=f"ocg-shop-{STAGE}-compact_lake", Qualifier="$LATEST"
    )
    assert compaction["MaximumRetryAttempts"] == 0
    assert compaction["MaximumEventAgeInSeconds"] == 15 * 60
    assert not compaction.get("DestinationConfig", {}).get("OnFailure")
    sqs = session.client("sqs")
    queue = sqs.get_queue_url(QueueName="ocg-shop-tracker-failures")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == failures
    assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)


class RefusedUntilRolePropagates:
    """Lambda's answer while the tracker's role is not yet allowed to send to the queue
    (IAM lags behind a role update): refuses ``times`` puts, then lets moto answer."""

    MESSAGE = "The provided execution role does not have permissions to call SendMessage on SQS"

    def __init__(self, times: int) -> None:
        self.left = times

    def __call__(self, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if self.left == 0:
            return None
        self.left -= 1
        error = {"Code": "InvalidParameterValueException", "Message": self.MESSAGE}
        return SimpleNamespace(status_code=400), {"Error": error, "ResponseMetadata": {}}


def refused_puts(session: Any, config_file: Path, refusals: int) -> tuple[Any, Any, str]:
    """The Lambda client, Chalice's record and the failure queue of a deployed stage
    whose tracker role Lambda does not yet see allowed, ``refusals`` times."""
    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    chalice_deploy(session, config_file)
    functions = session.client("lambda")
    functions.meta.events.register(
        "before-call.lambda.PutFunctionEventInvokeConfig", RefusedUntilRolePropagates(refusals)
    )
    deployed = read_deployed(config_file.parent.parent, STAGE)
    return functions, deployed, prepared.outputs["TrackerFailuresArn"]


def test_the_tracker_config_waits_for_the_role_to_reach_iam(
    session: Any, config_file: Path
) -> None:
    functions, deployed, failures = refused_puts(session, config_file, refusals=2)
    waited: list[float] = []

    configure_tracker(functions, deployed, failures, wait=waited.append)

    assert waited == list(ROLE_PROPAGATION_DELAYS[:2])
    config = functions.get_function_event_invoke_config(
        FunctionName=f"ocg-shop-{STAGE}-on_athena_state_change", Qualifier="$LATEST"
    )
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": failures}}


def test_a_tracker_config_refused_for_a_minute_stops_finish(
    session: Any, config_file: Path
) -> None:
    refusals = len(ROLE_PROPAGATION_DELAYS) + 1
    functions, deployed, failures = refused_puts(session, config_file, refusals)
    waited: list[float] = []

    with pytest.raises(DeployError, match="does not have permissions to call SendMessage"):
        configure_tracker(functions, deployed, failures, wait=waited.append)

    assert waited == list(ROLE_PROPAGATION_DELAYS)


def stream_event(session: Any, stream_arn: str) -> dict[str, Any]:
    """Every record of the table's stream so far, as Lambda delivers a batch."""
    streams = session.client("dynamodbstreams")
    records = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            dynamodb = dict(record["dynamodb"])
            dynamodb["ApproximateCreationDateTime"] = int(
                dynamodb["ApproximateCreationDateTime"].timestamp()
            )
            records.append({**record, "eventSourceARN": stream_arn, "dynamodb": dynamodb})
    return {"Records": records}


@pytest.fixture
def deployed_app(session: Any, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``app.py`` as Lambda runs it on the prepared stage: with the config's variables."""
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    for name, value in stage_environment(read_config(config_file), STAGE).items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("app", None)
    module = importlib.import_module("app")
    yield module
    sys.modules.pop("app", None)


def test_the_handlers_run_on_the_prepared_stage_with_its_config_alone(
    session: Any, deployed_app: Any
) -> None:
    client = Client(deployed_app.app, stage_name=STAGE, project_dir=str(ROOT))
    settings = deployed_app.services.settings

    def graphql(query: str) -> dict[str, Any]:
        response = client.http.post(
            "/graphql",
            headers={"content-type": "application/json"},
            body=json.dumps({"query": query}),
        )
        result: dict[str, Any] = json.loads(response.body)
        assert "errors" not in result, result
        data: dict[str, Any] = result["data"]
        return data

    created = graphql(
        'mutation { createUser(input: {name: "Ada", email: "ada@example.com"}) { id createdAt } }'
    )["createUser"]
    response = client.lambda_.invoke(
        "on_table_change", stream_event(session, settings.table_stream_arn)
    )
    assert response.payload == {"batchItemFailures": []}
    year, month, day = created["createdAt"][:10].split("-")
    key = f"tables/user/year={year}/month={month}/day={day}/{created['id']}.parquet"
    body = session.client("s3").get_object(Bucket=settings.lake_bucket, Key=key)["Body"].read()
    assert pq.read_table(io.BytesIO(body)).to_pylist()[0]["name"] == "Ada"

    task_id = graphql('mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }')[
        "triggerTaskUsersByCity"
    ]["taskId"]
    event = json.loads((ROOT / "tests" / "events" / "athena_succeeded.json").read_text())
    event["detail"]["queryExecutionId"] = task_id
    event["detail"]["workgroupName"] = settings.athena_workgroup
    client.lambda_.invoke("on_athena_state_change", event)
    item = (
        session.resource("dynamodb")
        .Table(settings.table_name)
        .get_item(Key=task_item_keys(task_id))["Item"]
    )
    assert item["taskStatus"] == "SUCCEEDED"
    status = graphql(f'{{ taskResultUsersByCity(taskId: "{task_id}") {{ taskStatus }} }}')
    assert status == {"taskResultUsersByCity": {"taskStatus": "SUCCEEDED"}}


def test_a_stage_template_over_the_inline_limit_goes_through_its_results_bucket(
    session: Any, config_file: Path
) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)  # an update

    stored = session.client("s3").list_objects_v2(Bucket=f"ocg-shop-athena-{ACCOUNT}")
    staged = [o["Key"] for o in stored["Contents"] if o["Key"].startswith("ocg/ocg-shop-dev/")]
    # The Glue tables (three per lake table) make the example's template too large to
    # pass inline: it went through the stage's own results bucket, which a first stack of
    # that bucket alone created.
    assert len(staged) == 1 and staged[0].startswith("ocg/ocg-shop-dev/template-")
    (stack,) = session.client("cloudformation").describe_stacks(StackName="ocg-shop-dev")["Stacks"]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


def test_prepare_refuses_a_compaction_that_could_run_twice_at_once(
    session: Any, config_file: Path
) -> None:
    config = read_config(config_file)
    config["stages"][STAGE]["lambda_functions"] = {"compact_lake": {"reserved_concurrency": 2}}
    config_file.write_text(json.dumps(config))

    with pytest.raises(DeployError, match="compact_lake has a reserved concurrency of 2"):
        prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    assert session.client("cloudformation").list_stacks()["StackSummaries"] == []


LARGE_TEMPLATE = {
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Metadata": {"padding": "x" * INLINE_TEMPLATE_LIMIT},
            "Properties": {"QueueName": "large"},
        }
    },
    "Outputs": {"QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}}},
}


def test_a_template_over_the_inline_limit_needs_a_bucket_and_goes_through_it(
    session: Any,
) -> None:
    with pytest.raises(DeployError, match="pass --template-bucket"):
        apply_stack(session, "large", LARGE_TEMPLATE)
    session.client("s3").create_bucket(Bucket="my-templates")

    outputs = apply_stack(session, "large", LARGE_TEMPLATE, template_bucket="my-templates")

    assert outputs == {"QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:large"}
    (stored,) = session.client("s3").list_objects_v2(Bucket="my-templates")["Contents"]
    assert stored["Key"].startswith("ocg/large/template-")


def test_prepare_after_finish_keeps_the_api_key_its_clients_use(
    session: Any, config_file: Path
) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    chalice_deploy(session, config_file)
    finished = finish_stage(session, STAGE, config_file=config_file)

    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    assert prepared.outputs["ApiKeyId"] == finished.api_key_id
    plans = session.client("apigateway").get_usage_plans(keyId=finished.api_key_id)["items"]
    assert [plan["apiStages"] for plan in plans] == [
        [{"apiId": finished.api.rest_api_id, "stage": "api"}]
    ]


class StackStillUpdating:
    """CloudFormation as seen when the wait gives up: the stack is still in progress
    (moto finishes every stack at once, so this state needs a stand-in)."""

    def client(self, service: str) -> Any:
        assert service == "cloudformation"
        return self

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [{"StackName": StackName, "StackStatus": "UPDATE_IN_PROGRESS"}]}

    def update_stack(self, **_: Any) -> None:
        pass

    def get_waiter(self, name: str) -> Any:
        return self

    def wait(self, **_: Any) -> None:
        raise WaiterError("StackUpdateComplete", "Max attempts exceeded", {})

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        return {"StackEvents": []}


def test_a_stack_still_updating_after_the_wait_stops_the_deployment() -> None:
    with pytest.raises(DeployError, match="is UPDATE_IN_PROGRESS"):
        apply_stack(StackStillUpdating(), "ocg-shop-dev", {"Resources": {}})


def sign_in(config_file: Path, mode: str, **ours: Any) -> None:
    """The stage signs users in (``OCG_AUTH_MODE``), with these options."""
    config = read_config(config_file)
    stage = config["stages"][STAGE]
    stage["environment_variables"]["OCG_AUTH_MODE"] = mode
    stage["ocg"] = {**stage.get("ocg", {}), **ours}
    config_file.write_text(json.dumps(config))


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload (its signature is Cognito's business, and the app's)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_prepare_creates_the_user_pool_and_points_the_stage_at_it(
    session: Any, config_file: Path
) -> None:
    sign_in(config_file, "cognito")

    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    variables = read_config(config_file)["stages"][STAGE]["environment_variables"]
    cognito = session.client("cognito-idp")
    (pool,) = cognito.list_user_pools(MaxResults=10)["UserPools"]
    assert pool["Name"] == "ocg-shop-dev-users"
    assert variables["OCG_COGNITO_USER_POOL_ID"] == prepared.outputs["UserPoolId"] == pool["Id"]
    described = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert described["UsernameAttributes"] == ["email"]
    assert described["DeletionProtection"] == "ACTIVE"
    (client,) = cognito.list_user_pool_clients(UserPoolId=pool["Id"])["UserPoolClients"]
    assert variables["OCG_COGNITO_CLIENT_ID"] == prepared.outputs["UserPoolClientId"]
    assert variables["OCG_COGNITO_CLIENT_ID"] == client["ClientId"]
    assert prepared.outputs["UserPoolIssuer"] == (
        f"https://cognito-idp.us-east-1.amazonaws.com/{pool['Id']}"
    )
    # The functions start with the config alone: the ids are the pool's, no marker is left.
    settings = stage_settings(STAGE, config_file, {"AWS_REGION": "us-east-1"})
    assert (settings.cognito_user_pool_id, settings.cognito_client_id) == (
        pool["Id"],
        client["ClientId"],
    )
    assert "marker" not in config_file.read_text().lower()
    # Again: the same pool, the same config.
    written = config_file.read_text()
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    assert config_file.read_text() == written
    assert len(cognito.list_user_pools(MaxResults=10)["UserPools"]) == 1
    # Back to the API key alone: the variables go (the pool stays: it holds the users).
    sign_in(config_file, "api_key")
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    variables = read_config(config_file)["stages"][STAGE]["environment_variables"]
    assert not {"OCG_COGNITO_USER_POOL_ID", "OCG_COGNITO_CLIENT_ID"} & set(variables)


def test_a_user_made_as_documented_gets_an_id_token_for_the_stage(
    session: Any, config_file: Path
) -> None:
    """docs/deploying.md, Sign-in: the AWS CLI's calls, made with boto3 (moto does not
    check a client's flows, so the flow is checked on the client)."""
    sign_in(config_file, "both", admin_password_auth=True)
    outputs = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER).outputs
    pool, client = outputs["UserPoolId"], outputs["UserPoolClientId"]
    cognito = session.client("cognito-idp")
    flows = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    assert "ALLOW_ADMIN_USER_PASSWORD_AUTH" in flows["ExplicitAuthFlows"]

    cognito.admin_create_user(
        UserPoolId=pool,
        Username="ada@example.com",
        UserAttributes=[
            {"Name": "email", "Value": "ada@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username="ada@example.com", Password="Correct-horse-9", Permanent=True
    )
    cognito.create_group(UserPoolId=pool, GroupName="editors")
    cognito.admin_add_user_to_group(
        UserPoolId=pool, Username="ada@example.com", GroupName="editors"
    )
    answer = cognito.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": "Correct-horse-9"},
    )

    token = claims(answer["AuthenticationResult"]["IdToken"])
    # What the app checks: the issuer, the app client, an ID token; and the user's groups.
    assert token["iss"] == outputs["UserPoolIssuer"]
    assert token["aud"] == client
    assert token["token_use"] == "id"
    assert token["cognito:groups"] == ["editors"]


def test_an_existing_pool_is_written_as_named_and_none_is_created(
    session: Any, config_file: Path
) -> None:
    sign_in(config_file, "cognito", user_pool_id="us-east-1_Existing1", user_pool_client_id="c123")

    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    variables = read_config(config_file)["stages"][STAGE]["environment_variables"]
    assert variables["OCG_COGNITO_USER_POOL_ID"] == "us-east-1_Existing1"
    assert variables["OCG_COGNITO_CLIENT_ID"] == "c123"
    assert prepared.outputs["UserPoolIssuer"] == (
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Existing1"
    )
    assert session.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []


def test_prepare_refuses_a_pool_of_another_region(session: Any, config_file: Path) -> None:
    sign_in(config_file, "both", user_pool_id="eu-west-1_Existing1", user_pool_client_id="c123")

    with pytest.raises(
        DeployError, match=r"is a pool in eu-west-1, but the stage deploys to us-east-1"
    ):
        prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    assert session.client("cloudformation").list_stacks()["StackSummaries"] == []


def test_finish_on_a_cognito_stage_throttles_the_stage_and_makes_no_key(
    session: Any, config_file: Path
) -> None:
    sign_in(config_file, "cognito")
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    chalice_deploy(session, config_file)

    finished = finish_stage(session, STAGE, config_file=config_file)

    gateway = session.client("apigateway")
    assert finished.api_key_id is None
    assert gateway.get_usage_plans()["items"] == []
    assert gateway.get_api_keys()["items"] == []
    stage = gateway.get_stage(restApiId=finished.api.rest_api_id, stageName="api")
    throttle = stage["methodSettings"]["*/*"]
    assert (throttle["throttlingRateLimit"], throttle["throttlingBurstLimit"]) == (50.0, 100)
    assert stage["tracingEnabled"] is True


PUSHING = ("websocket_message", "on_table_change", "on_athena_state_change", "on_deletion_message")


def test_finish_gives_the_pushing_functions_the_websocket_endpoint_and_its_grant(
    session: Any, config_file: Path, websocket_stages: WebSocketStages
) -> None:
    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    # Before chalice deploy made the WebSocket API, no role may manage its connections.
    template = session.client("cloudformation").get_template(StackName=prepared.stack)
    assert "execute-api" not in json.dumps(template["TemplateBody"])
    chalice_deploy(session, config_file)
    (ws_api,) = session.client("apigatewayv2").get_apis()["Items"]

    finished = finish_stage(session, STAGE, config_file=config_file)

    endpoint = f"https://{ws_api['ApiId']}.execute-api.us-east-1.amazonaws.com/api"
    assert finished.websocket is not None and finished.websocket.api_id == ws_api["ApiId"]
    functions = session.client("lambda")
    for handler in ("compact_lake", "websocket_connect", *PUSHING):
        name = f"ocg-shop-{STAGE}-{handler}"
        variables = (
            functions.get_function_configuration(FunctionName=name)
            .get("Environment", {})
            .get("Variables", {})
        )
        assert (variables.get("OCG_WEBSOCKET_ENDPOINT") == endpoint) == (handler in PUSHING)
        if handler == "websocket_message":  # its other variables are kept
            assert variables["OCG_STAGE"] == STAGE
    assert sorted(finished.pushing) == sorted(f"ocg-shop-{STAGE}-{h}" for h in PUSHING)
    # The next chalice deploy keeps it: it is in those functions' config.
    stage = read_config(config_file)["stages"][STAGE]
    for handler, function in stage["lambda_functions"].items():
        given = function.get("environment_variables", {}).get("OCG_WEBSOCKET_ENDPOINT")
        assert given == (endpoint if handler in PUSHING else None)
    # The API is named as path (a) names it; its stage logs and is throttled.
    assert session.client("apigatewayv2").get_api(ApiId=ws_api["ApiId"])["Name"] == (
        "ocg-shop-dev-ws"
    )
    (update,) = websocket_stages.updates
    assert update["ApiId"] == ws_api["ApiId"] and update["StageName"] == "api"
    logs = update["AccessLogSettings"]
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in session.client("cloudformation").describe_stacks(StackName=prepared.stack)[
            "Stacks"
        ][0]["Outputs"]
    }
    assert logs["DestinationArn"] == outputs["WebSocketAccessLogsArn"]
    assert json.loads(logs["Format"])["routeKey"] == "$context.routeKey"
    assert update["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": 100,
        "ThrottlingBurstLimit": 200,
    }
    # The pushing functions' roles now post to this API's connections only.
    template = session.client("cloudformation").get_template(StackName=prepared.stack)
    roles = template["TemplateBody"]["Resources"]
    connections = (
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        f"{ws_api['ApiId']}/api/POST/@connections/*"
    )
    for role in ("OnTableChangeRole", "OnAthenaStateChangeRole", "WebsocketMessageRole"):
        statements = roles[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        (grant,) = [
            s
            for s in statements
            if s["Action"] == ["execute-api:ManageConnections"]
            and s["Resource"] == [{"Fn::Sub": connections}]
        ]
        assert grant["Effect"] == "Allow"
    # prepare keeps the grant and the endpoint from then on.
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    again = session.client("cloudformation").get_template(StackName=prepared.stack)
    assert connections in json.dumps(again["TemplateBody"])
    stage = read_config(config_file)["stages"][STAGE]
    assert stage["lambda_functions"]["on_table_change"]["environment_variables"] == {
        "OCG_WEBSOCKET_ENDPOINT": endpoint
    }
