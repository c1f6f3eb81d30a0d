"""The stage's CloudFormation resources: valid for cfn-lint, and the app's own definitions."""

from __future__ import annotations

import json
from typing import Any

import cfnlint.api
import pytest

from chalicelib.lake.catalog import glue_table_inputs
from chalicelib.queues import (
    DLQ_RETENTION_SECONDS,
    MAX_RECEIVE_COUNT,
    VISIBILITY_TIMEOUT_SECONDS,
    dead_letter_queue_name,
)
from chalicelib.schema import load_schema
from chalicelib.settings import Settings, load_settings
from chalicelib.table import table_definition
from deploy.resources import resources_template
from tests.conftest import EXAMPLE_SCHEMA

DEV = {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": "123456789012"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(DEV)


@pytest.fixture(scope="module")
def template(settings: Settings) -> dict[str, Any]:
    return resources_template(settings, load_schema(EXAMPLE_SCHEMA, check_sql=False))


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_finds_nothing(template: dict[str, Any]) -> None:
    matches = cfnlint.api.lint(json.dumps(template), regions=["eu-west-1"])

    assert [str(match) for match in matches] == []


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


def test_buckets_are_private_encrypted_and_tls_only(
    template: dict[str, Any], settings: Settings
) -> None:
    buckets = of_type(template, "AWS::S3::Bucket")
    policies = of_type(template, "AWS::S3::BucketPolicy")

    assert {b["Properties"]["BucketName"] for b in buckets.values()} == {
        settings.lake_bucket,
        settings.athena_results_bucket,
    }
    for logical_id, bucket in buckets.items():
        assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
        assert "BucketEncryption" in bucket["Properties"]
        policy = policies[f"{logical_id}Policy"]["Properties"]["PolicyDocument"]
        (statement,) = policy["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    results = buckets["AthenaResultsBucket"]["Properties"]["LifecycleConfiguration"]
    assert results["Rules"][0]["ExpirationInDays"] == 30


def test_every_lake_table_is_a_native_glue_table(
    template: dict[str, Any], settings: Settings
) -> None:
    model = load_schema(EXAMPLE_SCHEMA, check_sql=False)
    tables = of_type(template, "AWS::Glue::Table").values()

    assert [t["Properties"]["TableInput"] for t in tables] == glue_table_inputs(
        model, settings.lake_bucket
    )
    assert all(t["Properties"]["DatabaseName"] == {"Ref": "GlueDatabase"} for t in tables)
    (database,) = of_type(template, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"] == {"Name": settings.glue_database}


def test_the_workgroup_enforces_its_output_and_a_scan_cutoff(settings: Settings) -> None:
    model = load_schema(EXAMPLE_SCHEMA, check_sql=False)
    template = resources_template(settings, model, bytes_scanned_cutoff=2 * 1024**3)

    (workgroup,) = of_type(template, "AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert workgroup["Properties"]["Name"] == settings.athena_workgroup
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == 2 * 1024**3
    assert configuration["ResultConfiguration"]["OutputLocation"] == settings.athena_output
