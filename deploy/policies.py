"""Least privilege: one IAM role per function, allowed only what that function calls.

The statements follow the code each handler runs (``chalicelib.handlers``): the GraphQL
function reads and writes the table, starts and reads Athena queries (Athena reads the
lake and the Glue catalogue with the caller's permissions) and queues deletion tasks;
the stream function reads the stream, writes the lake and queues cascades; each queue
listener reads its queue and deletes join rows; the tracker updates tasks. The stream
function and the tracker may also send to their on-failure destinations: Lambda sends
there with the function's own role.
"""

from __future__ import annotations

from typing import Any

from chalicelib.settings import Settings
from deploy.resources import (
    CASCADE_QUEUE,
    DELETION_QUEUE,
    LAKE_BUCKET,
    RESULTS_BUCKET,
    STREAM_FAILURES,
    TABLE,
    TRACKER_FAILURES,
    WORKGROUP,
)

# Chalice's logical ids: the API function, and one per event handler in app.py.
API_FUNCTION = "APIHandler"
STREAM_FUNCTION, CASCADE_FUNCTION = "OnTableChange", "OnCascadeMessage"
DELETION_FUNCTION, TRACKER_FUNCTION = "OnDeletionMessage", "OnAthenaStateChange"

_TABLE_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
_TABLE_WRITE = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]
_QUEUE_CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
_ATHENA_READ = ["athena:GetQueryExecution", "athena:GetQueryResults"]
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


def _allow(actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _arn(logical_id: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def function_policies(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The policy statements of each function, by its logical id."""
    table = [_arn(TABLE), _sub(f"${{{TABLE}.Arn}}/index/*")]
    workgroup = _sub(
        f"arn:${{AWS::Partition}}:athena:${{AWS::Region}}:${{AWS::AccountId}}:"
        f"workgroup/${{{WORKGROUP}}}"
    )
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    catalog = [
        _sub(f"{glue}:catalog"),
        _sub(f"{glue}:database/{settings.glue_database}"),
        _sub(f"{glue}:table/{settings.glue_database}/*"),
    ]
    lake_objects = _sub(f"${{{LAKE_BUCKET}.Arn}}/*")
    results = [_arn(RESULTS_BUCKET), _sub(f"${{{RESULTS_BUCKET}.Arn}}/*")]
    deletion_queue, cascade_queue = _arn(DELETION_QUEUE), _arn(CASCADE_QUEUE)
    return {
        API_FUNCTION: [
            # A transaction is authorised item by item, by the write actions it performs.
            _allow([*_TABLE_READ, *_TABLE_WRITE], table),
            _allow(["athena:StartQueryExecution", *_ATHENA_READ], [workgroup]),
            _allow(["glue:GetDatabase", "glue:GetTable", "glue:GetTables"], catalog),
            _allow(["s3:ListBucket", "s3:GetBucketLocation"], [_arn(LAKE_BUCKET), results[0]]),
            _allow(["s3:GetObject"], [lake_objects]),
            _allow(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], [results[1]]),
            _allow(["sqs:SendMessage"], [deletion_queue]),
        ],
        STREAM_FUNCTION: [
            _allow(
                [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ],
                [_arn(TABLE, "StreamArn")],
            ),
            _allow(["s3:PutObject", "s3:DeleteObject"], [lake_objects]),
            _allow(["sqs:SendMessage"], [cascade_queue, _arn(STREAM_FAILURES)]),
        ],
        CASCADE_FUNCTION: [
            _allow(_QUEUE_CONSUME, [cascade_queue]),
            _allow([*_TABLE_READ, "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"], table),
        ],
        DELETION_FUNCTION: [
            _allow(_QUEUE_CONSUME, [deletion_queue]),
            _allow([*_TABLE_READ, "dynamodb:BatchWriteItem", "dynamodb:UpdateItem"], table),
            _allow(_ATHENA_READ, [workgroup]),
            _allow(["s3:GetObject"], [results[1]]),
            _allow(["s3:ListBucket", "s3:GetBucketLocation"], [results[0]]),
        ],
        TRACKER_FUNCTION: [
            _allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], table),
            _allow(["athena:GetQueryExecution"], [workgroup]),
            # Lambda sends a failed asynchronous event to its destination with this role.
            _allow(["sqs:SendMessage"], [deletion_queue, _arn(TRACKER_FAILURES)]),
        ],
    }


def function_role(settings: Settings, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """A role Lambda assumes, with the function's statements and its own logs."""
    logs = _sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
        f"log-group:/aws/lambda/ocg-{settings.stage}-*"
    )
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "least-privilege",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            _allow(
                                [
                                    "logs:CreateLogGroup",
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                ],
                                [logs],
                            ),
                            *statements,
                        ],
                    },
                }
            ],
        },
    }
