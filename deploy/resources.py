"""The CloudFormation resources of a stage: what Chalice does not create.

Chalice deploys functions, the API and event-source mappings; the table, buckets,
queues, Glue catalogue and Athena workgroup come from here. Every definition is derived
from the one the app itself uses — the table's from ``chalicelib.table``, the queues'
from ``chalicelib.queues``, the Glue tables' from ``chalicelib.lake.catalog`` — and
every name from the stage's settings, so the deployed resources are the ones the
functions are configured to find.

A stage that signs users in (``OCG_AUTH_MODE`` cognito or both) and names no existing
pool also gets a Cognito user pool and an app client here (:func:`user_pool`), on both
paths; their ids reach the functions as ``OCG_COGNITO_USER_POOL_ID`` and
``OCG_COGNITO_CLIENT_ID``. The functions verify ID tokens against the pool's public keys
(JWKS, over HTTPS), so no role is granted anything on the pool.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.lake.catalog import glue_table_input
from chalicelib.lake.layers import lake_layers
from chalicelib.queues import DLQ_RETENTION_SECONDS, dead_letter_queue_name, queue_attributes
from chalicelib.schema.model import SchemaModel
from chalicelib.settings import Settings
from chalicelib.table import TTL_ATTRIBUTE, table_definition
from deploy.names import (
    access_logs_bucket,
    stage_resource_name,
    user_pool_client_name,
    user_pool_name,
)
from deploy.options import StageOptions, user_pool_region

# Query results are kept this long; tasks keep their ids for 30 days (tasks.service).
RESULTS_EXPIRY_DAYS = 30
# A replaced or deleted lake file can be restored for this long (bucket versioning).
LAKE_NONCURRENT_DAYS = 30
# S3 server access logs and API Gateway access logs are kept this long.
ACCESS_LOG_DAYS = 90
# What a stack deletion does with a resource whose content goes with it: queued
# messages and log lines (their retention bounds them anyway), stated for each such
# resource so that none is left to the default by accident.
DELETED_WITH_THE_STACK = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
# API Gateway ends an integration after 29 s: the API function stops before that, so no
# work goes on after the client was answered 504.
API_TIMEOUT_SECONDS = 28

TABLE, LAKE_BUCKET, RESULTS_BUCKET = "Table", "LakeBucket", "AthenaResultsBucket"
ACCESS_LOGS_BUCKET = "AccessLogsBucket"
CASCADE_QUEUE, DELETION_QUEUE = "CascadeQueue", "DeletionQueue"
STREAM_FAILURES, TRACKER_FAILURES = "StreamFailures", "TrackerFailures"
GLUE_DATABASE, WORKGROUP = "GlueDatabase", "AthenaWorkGroup"
USAGE_PLAN, API_KEY = "ApiUsagePlan", "ApiKey"
USER_POOL, USER_POOL_CLIENT = "UserPool", "UserPoolClient"
# The stack outputs naming the pool and client whose ID tokens the functions accept.
USER_POOL_ID_OUTPUT, USER_POOL_CLIENT_ID_OUTPUT = "UserPoolId", "UserPoolClientId"
USER_POOL_ISSUER_OUTPUT = "UserPoolIssuer"
# The app client's token lifetimes: an ID token is good for an hour (the app checks its
# expiry), a refresh token gets a new one for 30 days.
ID_TOKEN_MINUTES, ACCESS_TOKEN_MINUTES, REFRESH_TOKEN_DAYS = 60, 60, 30
USER_PASSWORD_MIN_LENGTH = 12
API_ACCESS_LOGS, API_LOGS_ROLE, API_ACCOUNT = (
    "ApiAccessLogs",
    "ApiGatewayLogsRole",
    "ApiGatewayAccount",
)
# The WebSocket API's access log, and the fields of each line (API Gateway's WebSocket
# $context variables: one line per connect, message and disconnect).
WEBSOCKET_ACCESS_LOGS = "WebSocketAccessLogs"
WEBSOCKET_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "connectionId": "$context.connectionId",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "requestTime": "$context.requestTime",
        "status": "$context.status",
        "integrationLatency": "$context.integrationLatency",
        "errorMessage": "$context.error.message",
    },
    separators=(",", ":"),
)
# The fields of each API access log line (API Gateway's $context variables).
API_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "apiKeyId": "$context.identity.apiKeyId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "errorMessage": "$context.error.message",
    },
    separators=(",", ":"),
)


def resources_template(
    settings: Settings, model: SchemaModel, options: StageOptions
) -> dict[str, Any]:
    """A CloudFormation template of the stage's resources, with their names and ARNs
    as outputs."""
    resources: dict[str, Any] = {TABLE: _table(settings)}
    resources.update(_access_logs_bucket(settings))
    resources.update(
        _bucket(LAKE_BUCKET, settings.lake_bucket, noncurrent_days=LAKE_NONCURRENT_DAYS)
    )
    resources.update(
        _bucket(
            RESULTS_BUCKET,
            settings.athena_results_bucket,
            noncurrent_days=1,
            expire_after=RESULTS_EXPIRY_DAYS,
            retain=False,  # results expire anyway; the lake and the logs are data to keep
        )
    )
    queues = {
        **_queue(CASCADE_QUEUE, settings.cascade_queue_name),
        **_queue(DELETION_QUEUE, settings.deletion_queue_name),
        STREAM_FAILURES: _failures_queue(settings.stream_failures_queue_name),
        TRACKER_FAILURES: _failures_queue(settings.tracker_failures_queue_name),
    }
    resources.update(queues)
    resources["QueuesTlsOnly"] = _queues_tls_only(list(queues))
    resources.update(_catalog(settings, model))
    resources[WORKGROUP] = _workgroup(settings, options.bytes_scanned_cutoff)
    resources.update(_api_access_logging(settings, options))
    resources.update(user_pool(settings, options))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"OCG {settings.project} ({settings.stage}): data resources",
        "Resources": resources,
        "Outputs": {**_outputs(), **user_pool_outputs(options)},
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
            "DeletionProtectionEnabled": True,
        },
    }


def _tls_only(service: str, resources: list[Any]) -> dict[str, Any]:
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": f"{service}:*",
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _bucket(
    logical_id: str,
    name: str,
    *,
    noncurrent_days: int,
    expire_after: int | None = None,
    retain: bool = True,
    log_to: str | None = ACCESS_LOGS_BUCKET,
    extra_statements: tuple[dict[str, Any], ...] = (),
) -> dict[str, dict[str, Any]]:
    """A private, encrypted, versioned bucket that refuses requests without TLS and logs
    every access to the access-logs bucket.

    Versions replaced or deleted are kept ``noncurrent_days``, so a file a function
    overwrote or removed by mistake can be restored, and they do not pile up."""
    rules: list[dict[str, Any]] = [
        {
            "Id": "expire-old-versions",
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        },
    ]
    if expire_after is not None:
        rules.append({"Id": "expire", "Status": "Enabled", "ExpirationInDays": expire_after})
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
        "VersioningConfiguration": {"Status": "Enabled"},
        "LifecycleConfiguration": {"Rules": rules},
    }
    if log_to is not None:
        properties["LoggingConfiguration"] = {
            "DestinationBucketName": {"Ref": log_to},
            "LogFilePrefix": f"{logical_id}/",
        }
    bucket_arn = {"Fn::GetAtt": [logical_id, "Arn"]}
    objects = {"Fn::Sub": f"${{{logical_id}.Arn}}/*"}
    policy = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": logical_id},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [_tls_only("s3", [bucket_arn, objects]), *extra_statements],
            },
        },
    }
    keep = "Retain" if retain else "Delete"
    bucket = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": keep,
        "UpdateReplacePolicy": keep,
        "Properties": properties,
    }
    return {logical_id: bucket, f"{logical_id}Policy": policy}


def _access_logs_bucket(settings: Settings) -> dict[str, dict[str, Any]]:
    """Where S3 delivers the other buckets' server access logs; S3's logging service may
    write there only for this account's buckets. It does not log itself (that would
    log its own log deliveries)."""
    delivery = {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": {"Fn::Sub": f"${{{ACCESS_LOGS_BUCKET}.Arn}}/*"},
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }
    resources = _bucket(
        ACCESS_LOGS_BUCKET,
        access_logs_bucket(settings),
        noncurrent_days=1,
        expire_after=ACCESS_LOG_DAYS,
        log_to=None,
        extra_statements=(delivery,),
    )
    return resources


def dead_letters_of(queue_logical_id: str) -> str:
    """The logical id of a queue's dead-letter queue."""
    return f"{queue_logical_id}DeadLetters"


def _queue(logical_id: str, name: str) -> dict[str, dict[str, Any]]:
    dead_letters = dead_letters_of(logical_id)
    attributes = queue_attributes({"Fn::GetAtt": [dead_letters, "Arn"]})
    return {
        dead_letters: _failures_queue(dead_letter_queue_name(name)),
        logical_id: {
            "Type": "AWS::SQS::Queue",
            **DELETED_WITH_THE_STACK,
            "Properties": {"QueueName": name, "SqsManagedSseEnabled": True, **attributes},
        },
    }


def _failures_queue(name: str) -> dict[str, Any]:
    """A queue where what failed is kept for 14 days: a queue's dead-letter queue, or an
    on-failure destination, where a stream record that keeps failing is kept instead of
    being dropped when it leaves the stream (the stream mapping's), or a tracker event
    Lambda has retried in vain (the tracker's asynchronous-invocation config)."""
    return {
        "Type": "AWS::SQS::Queue",
        **DELETED_WITH_THE_STACK,
        "Properties": {
            "QueueName": name,
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        },
    }


def _queues_tls_only(logical_ids: list[str]) -> dict[str, Any]:
    """Every queue refuses a request without TLS."""
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": logical_id} for logical_id in logical_ids],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    _tls_only(
                        "sqs", [{"Fn::GetAtt": [logical_id, "Arn"]} for logical_id in logical_ids]
                    )
                ],
            },
        },
    }


def _catalog(settings: Settings, model: SchemaModel) -> dict[str, dict[str, Any]]:
    """The Glue database and one native ``AWS::Glue::Table`` per layer of each lake table
    (``t__live``, ``t__compacted``, ``t__deleted``)."""
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
    for layer in lake_layers(model):
        logical_id = glue_table_logical_id(layer.name)
        if logical_id in resources:
            raise ValueError(f"two lake table layers map to the resource name {logical_id}")
        resources[logical_id] = {
            "Type": "AWS::Glue::Table",
            "Properties": {
                "CatalogId": catalog_id,
                "DatabaseName": {"Ref": GLUE_DATABASE},
                "TableInput": glue_table_input(layer, settings.lake_bucket),
            },
        }
    return resources


def glue_table_logical_id(table_name: str) -> str:
    """``user_favorite_products__live`` → ``GlueTableUserFavoriteProductsLive``: a Glue
    table's name (a layer's, ``chalicelib.lake.layers``) as a logical id, which may hold
    letters and digits only."""
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
                    # Athena writes results only to a bucket of this account.
                    "ExpectedBucketOwner": {"Ref": "AWS::AccountId"},
                },
            },
        },
    }


def _api_access_logging(settings: Settings, options: StageOptions) -> dict[str, Any]:
    """A log group for the API stage's access log, and the account-level role API Gateway
    needs to write any log (``AWS::ApiGateway::Account``: one per account and region; a
    second project setting it sets the same kind of role)."""
    return {
        API_ACCESS_LOGS: {
            "Type": "AWS::Logs::LogGroup",
            **DELETED_WITH_THE_STACK,
            "Properties": {
                "LogGroupName": f"/aws/apigateway/{stage_resource_name(settings, 'access')}",
                "RetentionInDays": options.log_retention_in_days,
            },
        },
        WEBSOCKET_ACCESS_LOGS: {
            "Type": "AWS::Logs::LogGroup",
            **DELETED_WITH_THE_STACK,
            "Properties": {
                "LogGroupName": f"/aws/apigateway/{stage_resource_name(settings, 'ws-access')}",
                "RetentionInDays": options.log_retention_in_days,
            },
        },
        API_LOGS_ROLE: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assumed_by("apigateway.amazonaws.com"),
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    }
                ],
            },
        },
        API_ACCOUNT: {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": [API_LOGS_ROLE, "Arn"]}},
        },
    }


def assumed_by(service: str) -> dict[str, Any]:
    """The trust policy of a role that ``service`` (its principal) assumes."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def api_access_log_setting() -> dict[str, Any]:
    """The API stage's access-log setting (CloudFormation's names)."""
    return {
        "DestinationArn": {"Fn::GetAtt": [API_ACCESS_LOGS, "Arn"]},
        "Format": API_ACCESS_LOG_FORMAT,
    }


def websocket_access_log_setting() -> dict[str, Any]:
    """The WebSocket API stage's access-log setting (CloudFormation's names, which
    API Gateway V2's API takes too)."""
    return {
        "DestinationArn": {"Fn::GetAtt": [WEBSOCKET_ACCESS_LOGS, "Arn"]},
        "Format": WEBSOCKET_ACCESS_LOG_FORMAT,
    }


def websocket_throttle(options: StageOptions) -> dict[str, Any]:
    """The WebSocket API stage's default route settings: the rate and burst of messages
    (connects included) of every client together; no API key meters a WebSocket API."""
    return {
        "ThrottlingRateLimit": options.ws_rate_limit,
        "ThrottlingBurstLimit": options.ws_burst_limit,
    }


def websocket_endpoint(api_id: str, region: str, stage: str) -> str:
    """The WebSocket API's Management API endpoint, where the functions push to clients
    (``OCG_WEBSOCKET_ENDPOINT``); clients connect to the same address over ``wss://``."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


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
        "ApiAccessLogsArn": {"Value": {"Fn::GetAtt": [API_ACCESS_LOGS, "Arn"]}},
        "WebSocketAccessLogsArn": {"Value": {"Fn::GetAtt": [WEBSOCKET_ACCESS_LOGS, "Arn"]}},
    }


def user_pool(settings: Settings, options: StageOptions) -> dict[str, Any]:
    """The Cognito user pool and app client of a stage that signs users in and names no
    existing pool; nothing otherwise. Both deployment paths create them from here.

    Users sign in with their e-mail address, which Cognito verifies; an administrator
    creates them unless ``self_sign_up``; TOTP MFA is offered (optional). The pool holds
    the stage's users, so it is kept when the stack goes and protected from deletion; the
    app client holds nothing and goes with the stack. The client has no secret (browser
    and mobile apps cannot keep one) and signs in with SRP, so no password is sent;
    ``admin_password_auth`` adds the flow an operator's AWS CLI uses."""
    if not options.creates_user_pool:
        return {}
    flows = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    if options.admin_password_auth:
        flows.append("ALLOW_ADMIN_USER_PASSWORD_AUTH")
    return {
        USER_POOL: {
            "Type": "AWS::Cognito::UserPool",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "UserPoolName": user_pool_name(settings),
                "UsernameAttributes": ["email"],
                "UsernameConfiguration": {"CaseSensitive": False},
                "AutoVerifiedAttributes": ["email"],
                "AccountRecoverySetting": {
                    "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]
                },
                "EmailConfiguration": {"EmailSendingAccount": "COGNITO_DEFAULT"},
                "Policies": {
                    "PasswordPolicy": {
                        "MinimumLength": USER_PASSWORD_MIN_LENGTH,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                        "TemporaryPasswordValidityDays": 7,
                    }
                },
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": not options.self_sign_up},
                "MfaConfiguration": "OPTIONAL",
                "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
                "DeletionProtection": "ACTIVE",
            },
        },
        USER_POOL_CLIENT: {
            "Type": "AWS::Cognito::UserPoolClient",
            **DELETED_WITH_THE_STACK,
            "Properties": {
                "ClientName": user_pool_client_name(settings),
                "UserPoolId": {"Ref": USER_POOL},
                "GenerateSecret": False,
                "SupportedIdentityProviders": ["COGNITO"],
                "ExplicitAuthFlows": flows,
                "PreventUserExistenceErrors": "ENABLED",
                "EnableTokenRevocation": True,
                "IdTokenValidity": ID_TOKEN_MINUTES,
                "AccessTokenValidity": ACCESS_TOKEN_MINUTES,
                "RefreshTokenValidity": REFRESH_TOKEN_DAYS,
                "TokenValidityUnits": {
                    "IdToken": "minutes",
                    "AccessToken": "minutes",
                    "RefreshToken": "days",
                },
            },
        },
    }


def user_pool_issuer(region: str, user_pool_id: str) -> str:
    """The ``iss`` of the pool's tokens; its public keys are at
    ``<issuer>/.well-known/jwks.json``."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def user_pool_outputs(options: StageOptions) -> dict[str, Any]:
    """The pool, its app client and its tokens' issuer, as outputs of a stage that signs
    users in: the created ones by reference, or the existing ones the options name. Path
    (b) gives the functions these ids; clients read them here."""
    if not options.signs_in:
        return {}
    if options.creates_user_pool:
        pool: Any = {"Ref": USER_POOL}
        client: Any = {"Ref": USER_POOL_CLIENT}
        issuer: Any = {"Fn::Sub": user_pool_issuer("${AWS::Region}", f"${{{USER_POOL}}}")}
    else:
        assert options.user_pool_id is not None  # both or neither: deploy.options
        pool, client = options.user_pool_id, options.user_pool_client_id
        issuer = user_pool_issuer(user_pool_region(pool), pool)
    return {
        USER_POOL_ID_OUTPUT: {"Value": pool},
        USER_POOL_CLIENT_ID_OUTPUT: {"Value": client},
        USER_POOL_ISSUER_OUTPUT: {"Value": issuer},
    }


def stage_throttle(options: StageOptions) -> dict[str, Any]:
    """The API stage's own rate and burst, for every method (``MethodSettings``): what
    bounds a stage whose callers have no API key (cognito mode), since a usage plan
    meters only requests that carry a key. It bounds all callers together."""
    return {
        "ResourcePath": "/*",
        "HttpMethod": "*",
        "ThrottlingRateLimit": options.api_rate_limit,
        "ThrottlingBurstLimit": options.api_burst_limit,
    }


def usage_plan(
    settings: Settings, options: StageOptions, rest_api_id: Any, api_stage: Any
) -> dict[str, Any]:
    """An API key and the usage plan that admits it to the API's stage, throttled and
    with a daily quota per key (the API and its stage by name, or by reference in a
    template).

    API Gateway refuses a request to a method that requires a key unless the key belongs
    to a usage plan of that stage."""
    name = stage_resource_name(settings)
    return {
        USAGE_PLAN: {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": name,
                "ApiStages": [{"ApiId": rest_api_id, "Stage": api_stage}],
                "Throttle": {
                    "RateLimit": options.api_rate_limit,
                    "BurstLimit": options.api_burst_limit,
                },
                "Quota": {"Limit": options.api_daily_quota, "Period": "DAY"},
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
