"""The ``--merge-template`` for ``chalice package``: one stack with functions and resources.

Chalice's SAM template names the stream and queue ARNs as text from the settings (the
stream's label, ``latest``, is a placeholder). The merge adds the stage's resources
(``deploy.resources``), points every event source at them by reference, and sets on the
event-source mappings what Chalice cannot (FIELD-NOTES, Chalice): partial batch
responses, and for the stream bisection, bounded retries and record age, and an
on-failure destination, so a record that keeps failing is kept, not lost. Each function
gets a role of its own with only what it calls (``deploy.policies``); the stage has
``manage_iam_role: false``, so Chalice creates no broad default role.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, DynamoDBEventConfig, SQSEventConfig
from chalice.utils import to_cfn_resource_name

from chalicelib.queues import DLQ_RETENTION_SECONDS
from chalicelib.schema.model import SchemaModel
from chalicelib.settings import Settings
from deploy.policies import function_policies, function_role
from deploy.resources import (
    CASCADE_QUEUE,
    DEFAULT_BYTES_SCANNED_CUTOFF,
    DELETION_QUEUE,
    TABLE,
    resources_template,
)

STREAM_FAILURES = "StreamFailures"
# A stream record still failing after this many retries (halving the batch around it
# each time) goes to the failure queue instead of holding back its shard.
STREAM_MAX_RETRIES = 5
STREAM_MAX_RECORD_AGE_SECONDS = 24 * 3600
PARTIAL_BATCH_RESPONSE = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}


def merge_template(
    app: Chalice,
    settings: Settings,
    model: SchemaModel,
    *,
    bytes_scanned_cutoff: int = DEFAULT_BYTES_SCANNED_CUTOFF,
) -> dict[str, Any]:
    """What ``chalice package --merge-template`` merges into the app's SAM template."""
    template = resources_template(settings, model, bytes_scanned_cutoff=bytes_scanned_cutoff)
    resources = template["Resources"]
    resources[STREAM_FAILURES] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": settings.stream_failures_queue_name,
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        },
    }
    queues = {
        settings.cascade_queue_arn: CASCADE_QUEUE,
        settings.deletion_queue_arn: DELETION_QUEUE,
    }
    for source in app.event_sources:
        function = to_cfn_resource_name(source.name)
        if isinstance(source, DynamoDBEventConfig):
            event = to_cfn_resource_name(f"{source.name}-dynamodb-event-source")
            properties = _stream_source()
        elif isinstance(source, SQSEventConfig):
            queue = queues.get(str(source.queue_arn))
            if queue is None:
                raise ValueError(
                    f"{source.name} listens to {source.queue_arn}, not a queue of ours"
                )
            event = to_cfn_resource_name(f"{source.name}-sqs-event-source")
            properties = {"Queue": {"Fn::GetAtt": [queue, "Arn"]}, **PARTIAL_BATCH_RESPONSE}
        else:
            continue
        resources[function] = {"Properties": {"Events": {event: {"Properties": properties}}}}
    for function, statements in function_policies(settings, STREAM_FAILURES).items():
        resources[f"{function}Role"] = function_role(settings, statements)
        resources.setdefault(function, {}).setdefault("Properties", {})["Role"] = {
            "Fn::GetAtt": [f"{function}Role", "Arn"]
        }
    return template


def _stream_source() -> dict[str, Any]:
    return {
        "Stream": {"Fn::GetAtt": [TABLE, "StreamArn"]},
        **PARTIAL_BATCH_RESPONSE,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": STREAM_MAX_RETRIES,
        "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_SECONDS,
        "DestinationConfig": {
            "OnFailure": {"Destination": {"Fn::GetAtt": [STREAM_FAILURES, "Arn"]}}
        },
    }
