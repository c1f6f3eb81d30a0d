"""The CloudFormation resources of a stage: what Chalice does not create.

Chalice deploys functions, the API and event-source mappings; the table, buckets,
queues, Glue catalogue and Athena workgroup come from here. Every definition is derived
from the one the app itself uses — the table's from ``chalicelib.table``, the queues'
from ``chalicelib.queues``, the Glue tables' from ``chalicelib.lake.catalog`` — and
every name from the stage's settings, so the deployed resources are the ones the
functions are configured to find.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.lake.catalog import glue_table_input
from chalicelib.lake.columns import lake_tables
from chalicelib.queues import DLQ_RETENTION_SECONDS, dead_letter_queue_name, queue_attributes
from chalicelib.schema.model import SchemaModel
from chalicelib.settings import Settings
from chalicelib.table import TTL_ATTRIBUTE, table_definition

# Athena stops a query that would scan more than this (a runaway query's bill).
DEFAULT_BYTES_SCANNED_CUTOFF = 10 * 1024**3
# Query results are kept this long; tasks keep their ids for 30 days (tasks.service).
RESULTS_EXPIRY_DAYS = 30

TABLE, LAKE_BUCKET, RESULTS_BUCKET = "Table", "LakeBucket", "AthenaResultsBucket"
CASCADE_QUEUE, DELETION_QUEUE = "CascadeQueue", "DeletionQueue"
STREAM_FAILURES, TRACKER_FAILURES = "StreamFailures", "TrackerFailures"
GLUE_DATABASE, WORKGROUP = "GlueDatabase", "AthenaWorkGroup"
USAGE_PLAN, API_KEY = "ApiUsagePlan", "ApiKey"
# Every caller of a deployed API shares these request rates (per second, and the burst).
API_THROTTLE = {"RateLimit": 50, "BurstLimit": 100}


def resources_template(
    settings: Settings,
    model: SchemaModel,
    *,
    bytes_scanned_cutoff: int = DEFAULT_BYTES_SCANNED_CUTOFF,
) -> dict[str, Any]:
    """A CloudFormation template of the stage's resources, with their names and ARNs
    as outputs."""
    resources: dict[str, Any] = {TABLE: _table(settings)}
    resources.update(_bucket(LAKE_BUCKET, settings.lake_bucket))
    resources.update(
        _bucket(RESULTS_BUCKET, settings.athena_results_bucket, expire_after=RESULTS_EXPIRY_DAYS)
    )
    resources.update(_queue(CASCADE_QUEUE, settings.cascade_queue_name))
    resources.update(_queue(DELETION_QUEUE, settings.deletion_queue_name))
    resources[STREAM_FAILURES] = _failures_queue(settings.stream_failures_queue_name)
    resources[TRACKER_FAILURES] = _failures_queue(settings.tracker_failures_queue_name)
    resources.update(_catalog(settings, model))
    resources[WORKGROUP] = _workgroup(settings, bytes_scanned_cutoff)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"OCG {settings.project} ({settings.stage}): data resources",
        "Resources": resources,
        "Outputs": _outputs(),
    }


def _table(settings: Settings) -> dict[str, Any]:
    definition = table_definition(settings.table_name)
    stream = definition.pop("StreamSpecification")
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            **definition,
            "StreamSpecification": {"StreamViewType": stream["StreamViewType"]},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    }


def _bucket(
    logical_id: str, name: str, *, expire_after: int | None = None
) -> dict[str, dict[str, Any]]:
    """A private, encrypted bucket that refuses requests without TLS."""
    properties: dict[str, Any] = {
        "BucketName": name,
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    }
    if expire_after is not None:
        properties["LifecycleConfiguration"] = {
            "Rules": [{"Id": "expire", "Status": "Enabled", "ExpirationInDays": expire_after}]
        }
    bucket_arn = {"Fn::GetAtt": [logical_id, "Arn"]}
    policy = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": logical_id},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, {"Fn::Sub": f"${{{logical_id}.Arn}}/*"}],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }
    # The lake is data to keep; query results expire anyway.
    keep = "Retain" if expire_after is None else "Delete"
    bucket = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": keep,
        "UpdateReplacePolicy": keep,
        "Properties": properties,
    }
    return {logical_id: bucket, f"{logical_id}Policy": policy}


def _queue(logical_id: str, name: str) -> dict[str, dict[str, Any]]:
    dead_letters = f"{logical_id}DeadLetters"
    attributes = queue_attributes({"Fn::GetAtt": [dead_letters, "Arn"]})
    return {
        dead_letters: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": dead_letter_queue_name(name),
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        },
        logical_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": name, "SqsManagedSseEnabled": True, **attributes},
        },
    }


def _failures_queue(name: str) -> dict[str, Any]:
    """An on-failure destination: where a stream record that keeps failing is kept
    instead of being dropped when it leaves the stream (the stream mapping's), or a
    tracker event Lambda has retried in vain instead of being dropped (the tracker's
    asynchronous-invocation config)."""
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": name,
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        },
    }


def _catalog(settings: Settings, model: SchemaModel) -> dict[str, dict[str, Any]]:
    """The Glue database and one native ``AWS::Glue::Table`` per lake table."""
    catalog_id = {"Ref": "AWS::AccountId"}
    resources: dict[str, dict[str, Any]] = {
        GLUE_DATABASE: {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": catalog_id,
                "DatabaseInput": {"Name": settings.glue_database},
            },
        }
    }
    for spec in lake_tables(model):
        logical_id = glue_table_logical_id(spec.name)
        if logical_id in resources:
            raise ValueError(f"two lake tables map to the resource name {logical_id}")
        resources[logical_id] = {
            "Type": "AWS::Glue::Table",
            "Properties": {
                "CatalogId": catalog_id,
                "DatabaseName": {"Ref": GLUE_DATABASE},
                "TableInput": glue_table_input(spec, settings.lake_bucket),
            },
        }
    return resources


def glue_table_logical_id(table_name: str) -> str:
    """``user_favorite_products`` → ``GlueTableUserFavoriteProducts``."""
    parts = re.split(r"[^A-Za-z0-9]+", table_name)
    return "GlueTable" + "".join(part[:1].upper() + part[1:] for part in parts)


def _workgroup(settings: Settings, bytes_scanned_cutoff: int) -> dict[str, Any]:
    """Queries run here only: its output location and scan cutoff cannot be overridden."""
    return {
        "Type": "AWS::Athena::WorkGroup",
        "Properties": {
            "Name": settings.athena_workgroup,
            "State": "ENABLED",
            "RecursiveDeleteOption": True,
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "PublishCloudWatchMetricsEnabled": True,
                "BytesScannedCutoffPerQuery": bytes_scanned_cutoff,
                "ResultConfiguration": {
                    "OutputLocation": settings.athena_output,
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                },
            },
        },
    }


def _outputs() -> dict[str, Any]:
    """What a stage's functions must be told: the stream they read and the queues; and
    what the post-deploy step must: the on-failure destinations."""
    return {
        "TableStreamArn": {"Value": {"Fn::GetAtt": [TABLE, "StreamArn"]}},
        "CascadeQueueArn": {"Value": {"Fn::GetAtt": [CASCADE_QUEUE, "Arn"]}},
        "CascadeQueueUrl": {"Value": {"Ref": CASCADE_QUEUE}},
        "DeletionQueueArn": {"Value": {"Fn::GetAtt": [DELETION_QUEUE, "Arn"]}},
        "DeletionQueueUrl": {"Value": {"Ref": DELETION_QUEUE}},
        "StreamFailuresArn": {"Value": {"Fn::GetAtt": [STREAM_FAILURES, "Arn"]}},
        "TrackerFailuresArn": {"Value": {"Fn::GetAtt": [TRACKER_FAILURES, "Arn"]}},
    }


def stage_resource_name(settings: Settings, suffix: str = "") -> str:
    """``ocg-<project>-<stage>[-suffix]``: what the deployment names per stage (the stack,
    the usage plan and key, the pyarrow layer)."""
    return f"ocg-{settings.project}-{settings.stage}" + (f"-{suffix}" if suffix else "")


def usage_plan(settings: Settings, rest_api_id: Any, api_stage: Any) -> dict[str, Any]:
    """An API key and the usage plan that admits it to the API's stage, throttled (the
    API and its stage by name, or by reference in a template).

    API Gateway refuses a request to a method that requires a key unless the key belongs
    to a usage plan of that stage."""
    name = stage_resource_name(settings)
    return {
        USAGE_PLAN: {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": name,
                "ApiStages": [{"ApiId": rest_api_id, "Stage": api_stage}],
                "Throttle": API_THROTTLE,
            },
        },
        API_KEY: {
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {"Name": name, "Enabled": True},
        },
        f"{USAGE_PLAN}Key": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {
                "KeyId": {"Ref": API_KEY},
                "KeyType": "API_KEY",
                "UsagePlanId": {"Ref": USAGE_PLAN},
            },
        },
    }
