"""The stage's CloudFormation resources: valid for cfn-lint, and the app's own definitions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.lake.catalog import glue_table_inputs
from chalicelib.queues import (
    DLQ_RETENTION_SECONDS,
    MAX_RECEIVE_COUNT,
    RETENTION_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    dead_letter_queue_name,
)
from chalicelib.schema import load_schema
from chalicelib.settings import Settings, load_settings
from chalicelib.table import table_definition
from deploy.names import access_logs_bucket
from deploy.options import StageOptions
from deploy.resources import resources_template
from deploy.validate import lint
from tests.conftest import EXAMPLE_SCHEMA

DEV = {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": "210987654321"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(DEV)


@pytest.fixture(scope="module")
def template(settings: Settings) -> dict[str, Any]:
    return resources_template(
        settings, load_schema(EXAMPLE_SCHEMA, check_sql=False), StageOptions()
    )


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_finds_nothing_not_even_informational(template: dict[str, Any]) -> None:
    assert lint(template, "eu-west-1") == []
    # The informational rules are on: a queue left to the default deletion policy shows.
    undecided = json.loads(json.dumps(template))
    del undecided["Resources"]["CascadeQueue"]["DeletionPolicy"]
    assert any(finding.startswith("[I3011") for finding in lint(undecided, "eu-west-1"))


def test_the_table_is_the_apps_with_recovery_and_ttl(
    template: dict[str, Any], settings: Settings
) -> None:
    (table,) = of_type(template, "AWS::DynamoDB::Table").values()
    properties = table["Properties"]
    expected = table_definition(settings.table_name)

    for name in ("TableName", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes"):
        assert properties[name] == expected[name]
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_both_queues_dead_letter_after_five_receives(
    template: dict[str, Any], settings: Settings
) -> None:
    queues = {
        r["Properties"]["QueueName"]: (k, r)
        for k, r in of_type(template, "AWS::SQS::Queue").items()
    }

    for name in (settings.cascade_queue_name, settings.deletion_queue_name):
        _, queue = queues[name]
        dead_letters, _ = queues[dead_letter_queue_name(name)]
        assert queue["Properties"]["VisibilityTimeout"] == VISIBILITY_TIMEOUT_SECONDS >= 6 * 60
        assert queue["Properties"]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]},
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        }


def test_failing_stream_records_and_tracker_events_each_have_a_queue_kept_14_days(
    template: dict[str, Any], settings: Settings
) -> None:
    queues = of_type(template, "AWS::SQS::Queue")

    assert DLQ_RETENTION_SECONDS == 14 * 24 * 3600
    for logical_id, name in (
        ("StreamFailures", settings.stream_failures_queue_name),
        ("TrackerFailures", settings.tracker_failures_queue_name),
    ):
        assert queues[logical_id]["Properties"] == {
            "QueueName": name,
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        }
        assert template["Outputs"][f"{logical_id}Arn"] == {
            "Value": {"Fn::GetAtt": [logical_id, "Arn"]}
        }
    assert settings.tracker_failures_queue_name == "ocg-shop-tracker-failures"


def test_every_queue_keeps_messages_a_stated_time_and_refuses_plain_http(
    template: dict[str, Any],
) -> None:
    queues = of_type(template, "AWS::SQS::Queue")
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()

    assert len(queues) == 6
    for logical_id, queue in queues.items():
        assert queue["Properties"]["MessageRetentionPeriod"] in (
            RETENTION_SECONDS,
            DLQ_RETENTION_SECONDS,
        ), logical_id
        assert queue["DeletionPolicy"] == "Delete"
    # A dead-lettered message keeps its first enqueue time: its queue must keep it longer.
    assert DLQ_RETENTION_SECONDS > RETENTION_SECONDS
    properties = policy["Properties"]
    assert sorted(ref["Ref"] for ref in properties["Queues"]) == sorted(queues)
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "sqs:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(arn["Fn::GetAtt"][0] for arn in statement["Resource"]) == sorted(queues)


def test_buckets_are_private_encrypted_versioned_logged_and_tls_only(
    template: dict[str, Any], settings: Settings
) -> None:
    buckets = of_type(template, "AWS::S3::Bucket")
    policies = of_type(template, "AWS::S3::BucketPolicy")

    assert {b["Properties"]["BucketName"] for b in buckets.values()} == {
        settings.lake_bucket,
        settings.athena_results_bucket,
        access_logs_bucket(settings),
    }
    for logical_id, bucket in buckets.items():
        properties = bucket["Properties"]
        assert all(properties["PublicAccessBlockConfiguration"].values())
        assert "BucketEncryption" in properties
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = properties["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in rule for rule in rules), logical_id
        policy = policies[f"{logical_id}Policy"]["Properties"]["PolicyDocument"]
        tls_only = policy["Statement"][0]
        assert tls_only["Effect"] == "Deny"
        assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        if logical_id != "AccessLogsBucket":
            logging = properties["LoggingConfiguration"]
            assert logging["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    lake = buckets["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert lake[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    results = buckets["AthenaResultsBucket"]["Properties"]["LifecycleConfiguration"]
    assert {"Id": "expire", "Status": "Enabled", "ExpirationInDays": 30} in results["Rules"]
    # Only S3's log delivery, for this account's buckets, may write access logs.
    _, delivery = policies["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    # The data stays when the stack goes; results expire and go with it.
    assert {k: b["DeletionPolicy"] for k, b in buckets.items()} == {
        "LakeBucket": "Retain",
        "AccessLogsBucket": "Retain",
        "AthenaResultsBucket": "Delete",
    }


def test_the_api_stage_can_log_its_accesses(template: dict[str, Any]) -> None:
    resources = template["Resources"]

    group = resources["ApiAccessLogs"]["Properties"]
    assert group["LogGroupName"] == "/aws/apigateway/ocg-shop-aws-access"
    assert group["RetentionInDays"] == StageOptions().log_retention_in_days
    account = resources["ApiGatewayAccount"]["Properties"]
    assert account["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}
    (managed,) = resources["ApiGatewayLogsRole"]["Properties"]["ManagedPolicyArns"]
    assert managed["Fn::Sub"].endswith("service-role/AmazonAPIGatewayPushToCloudWatchLogs")


def test_every_layer_of_every_lake_table_is_a_native_glue_table(
    template: dict[str, Any], settings: Settings
) -> None:
    model = load_schema(EXAMPLE_SCHEMA, check_sql=False)
    tables = of_type(template, "AWS::Glue::Table")

    assert [t["Properties"]["TableInput"] for t in tables.values()] == glue_table_inputs(
        model, settings.lake_bucket
    )
    assert all(t["Properties"]["DatabaseName"] == {"Ref": "GlueDatabase"} for t in tables.values())
    locations = {
        logical_id: (
            table["Properties"]["TableInput"]["Name"],
            table["Properties"]["TableInput"]["StorageDescriptor"]["Location"],
        )
        for logical_id, table in tables.items()
        if logical_id.startswith("GlueTableUserFavoriteProducts")
    }
    bucket = f"s3://{settings.lake_bucket}"
    assert locations == {
        "GlueTableUserFavoriteProductsLive": (
            "user_favorite_products__live",
            f"{bucket}/tables/user_favorite_products/",
        ),
        "GlueTableUserFavoriteProductsCompacted": (
            "user_favorite_products__compacted",
            f"{bucket}/compacted/user_favorite_products/",
        ),
        "GlueTableUserFavoriteProductsDeleted": (
            "user_favorite_products__deleted",
            f"{bucket}/deleted/user_favorite_products/",
        ),
    }
    (database,) = of_type(template, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"] == {"Name": settings.glue_database}


def test_the_workgroup_enforces_its_output_and_a_scan_cutoff(settings: Settings) -> None:
    model = load_schema(EXAMPLE_SCHEMA, check_sql=False)
    template = resources_template(settings, model, StageOptions(bytes_scanned_cutoff=2 * 1024**3))

    (workgroup,) = of_type(template, "AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert workgroup["Properties"]["Name"] == settings.athena_workgroup
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == 2 * 1024**3
    assert configuration["ResultConfiguration"]["OutputLocation"] == settings.athena_output
    owner = configuration["ResultConfiguration"]["ExpectedBucketOwner"]
    assert owner == {"Ref": "AWS::AccountId"}


SIGN_IN = {
    **DEV,
    "OCG_AUTH_MODE": "cognito",
    "OCG_COGNITO_USER_POOL_ID": "x",
    "OCG_COGNITO_CLIENT_ID": "y",
}


def sign_in_template(options: StageOptions) -> dict[str, Any]:
    return resources_template(
        load_settings(SIGN_IN), load_schema(EXAMPLE_SCHEMA, check_sql=False), options
    )


def test_a_stage_that_signs_users_in_creates_its_pool_and_app_client() -> None:
    template = sign_in_template(StageOptions(auth_mode="cognito"))

    assert lint(template, "eu-west-1") == []
    (pool,) = of_type(template, "AWS::Cognito::UserPool").values()
    properties = pool["Properties"]
    assert properties["UserPoolName"] == "ocg-shop-aws-users"
    assert properties["UsernameAttributes"] == properties["AutoVerifiedAttributes"] == ["email"]
    assert properties["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 12,
        "RequireLowercase": True,
        "RequireUppercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 7,
    }
    assert properties["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert (properties["MfaConfiguration"], properties["EnabledMfas"]) == (
        "OPTIONAL",
        ["SOFTWARE_TOKEN_MFA"],
    )
    # The users are the stage's data: kept with the stack gone, and hard to delete.
    assert properties["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    (client,) = of_type(template, "AWS::Cognito::UserPoolClient").values()
    app = client["Properties"]
    assert app["UserPoolId"] == {"Ref": "UserPool"}
    assert app["ClientName"] == "ocg-shop-aws-app"
    assert app["GenerateSecret"] is False  # browser and mobile apps keep no secret
    assert app["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert app["PreventUserExistenceErrors"] == "ENABLED"
    assert app["EnableTokenRevocation"] is True
    assert (app["IdTokenValidity"], app["TokenValidityUnits"]["IdToken"]) == (60, "minutes")
    assert client["DeletionPolicy"] == "Delete"
    outputs = template["Outputs"]
    assert outputs["UserPoolId"] == {"Value": {"Ref": "UserPool"}}
    assert outputs["UserPoolClientId"] == {"Value": {"Ref": "UserPoolClient"}}
    assert outputs["UserPoolIssuer"] == {
        "Value": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"}
    }


def test_self_sign_up_and_the_admins_password_flow_are_options() -> None:
    template = sign_in_template(
        StageOptions(auth_mode="both", self_sign_up=True, admin_password_auth=True)
    )

    assert lint(template, "eu-west-1") == []
    pool = template["Resources"]["UserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": False}
    flows = template["Resources"]["UserPoolClient"]["Properties"]["ExplicitAuthFlows"]
    assert flows == [
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    ]


def test_an_existing_pool_is_named_not_created() -> None:
    options = StageOptions(
        auth_mode="cognito", user_pool_id="eu-west-1_AbC123", user_pool_client_id="c1i2"
    )

    template = sign_in_template(options)

    assert lint(template, "eu-west-1") == []
    assert not of_type(template, "AWS::Cognito::UserPool")
    assert not of_type(template, "AWS::Cognito::UserPoolClient")
    outputs = template["Outputs"]
    assert outputs["UserPoolId"] == {"Value": "eu-west-1_AbC123"}
    assert outputs["UserPoolClientId"] == {"Value": "c1i2"}
    assert outputs["UserPoolIssuer"] == {
        "Value": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    }


def test_a_stage_that_signs_no_one_in_has_no_pool(template: dict[str, Any]) -> None:
    assert not of_type(template, "AWS::Cognito::UserPool")
    assert not any(output.startswith("UserPool") for output in template["Outputs"])
