"""Alarms on every place a message or event can land after failing, and on the bill.

Each alarm notifies the stage's SNS topic (``ocg-<project>-<stage>-alarms``), mailed to
the stage's ``alarm_email`` when one is set (``deploy.options``). They watch:

- every dead-letter queue and failure queue: one message there is a record, a cascade,
  a deletion or a task update that did not happen;
- each function's errors and throttles (a throttled stream or queue function falls
  behind; a throttled tracker's events wait, then fail);
- the stream function's iterator age: the lake falls behind the table;
- the compaction function's longest run near its timeout: the lake changes faster than
  a run folds it, and runs are about to time out (``deploy.compaction``);
- the workgroup's bytes scanned in a day, which is what Athena bills;
- the GraphQL API's internal errors (resolvers that raised; the function itself still
  answered, so its ``Errors`` metric does not count them).

Queues and the workgroup are named by reference, functions by their names
(``deploy.names.function_name``), which both paths give them, so the same alarms serve
the one-stack path and the resources stack beside ``chalice deploy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.settings import Settings
from chalicelib.telemetry import metrics
from deploy.compaction import DURATION_ALARM_SHARE, compaction_timeout
from deploy.names import function_name, stage_resource_name
from deploy.options import StageOptions
from deploy.resources import (
    CASCADE_QUEUE,
    DELETION_QUEUE,
    STREAM_FAILURES,
    TRACKER_FAILURES,
    WORKGROUP,
    dead_letters_of,
)

ALARM_TOPIC = "AlarmTopic"
PERIOD_SECONDS = 300
DAY_SECONDS = 86_400
# The lake may trail the table by this much before anyone is told.
ITERATOR_AGE_ALARM_MS = 5 * 60 * 1000
# Where failed work waits, by the queue's logical id.
FAILURE_QUEUES = {
    dead_letters_of(CASCADE_QUEUE): "cascade messages that kept failing",
    dead_letters_of(DELETION_QUEUE): "deletion-task messages that kept failing",
    STREAM_FAILURES: "stream records the lake could not take",
    TRACKER_FAILURES: "Athena state changes the tracker could not record",
}
# The states and kinds of query whose scanned bytes Athena reports (and bills).
_ATHENA_STATES = ("SUCCEEDED", "FAILED", "CANCELED")


def alarm_resources(
    settings: Settings,
    options: StageOptions,
    functions: Mapping[str, str],
    *,
    stream_function: str,
    compaction_function: str,
) -> dict[str, Any]:
    """The topic and the alarms; ``functions`` maps each function's logical id to its
    Chalice handler name."""
    topic: dict[str, Any] = {"TopicName": stage_resource_name(settings, "alarms")}
    if options.alarm_email:
        topic["Subscription"] = [{"Protocol": "email", "Endpoint": options.alarm_email}]
    resources: dict[str, Any] = {ALARM_TOPIC: {"Type": "AWS::SNS::Topic", "Properties": topic}}
    for queue, what in FAILURE_QUEUES.items():
        resources[f"{queue}Alarm"] = _alarm(
            settings,
            f"{queue}",
            f"{what}: a message waits in the queue (replay or inspect it)",
            metric(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                QueueName={"Fn::GetAtt": [queue, "QueueName"]},
            ),
            threshold=1,
        )
    for logical_id, handler in functions.items():
        name = function_name(settings, handler)
        for metric_name in ("Errors", "Throttles"):
            resources[f"{logical_id}{metric_name}Alarm"] = _alarm(
                settings,
                f"{logical_id}-{metric_name}",
                f"{name}: {metric_name.lower()} in the last {PERIOD_SECONDS // 60} minutes",
                metric("AWS/Lambda", metric_name, "Sum", FunctionName=name),
                threshold=1,
            )
    resources["StreamIteratorAgeAlarm"] = _alarm(
        settings,
        "StreamIteratorAge",
        "the lake trails the table by more than "
        f"{ITERATOR_AGE_ALARM_MS // 60_000} minutes (stream records wait)",
        metric(
            "AWS/Lambda",
            "IteratorAge",
            "Maximum",
            FunctionName=function_name(settings, functions[stream_function]),
        ),
        threshold=ITERATOR_AGE_ALARM_MS,
    )
    slow_ms = int(compaction_timeout(settings) * DURATION_ALARM_SHARE) * 1000
    resources["CompactionDurationAlarm"] = _alarm(
        settings,
        "CompactionDuration",
        f"a compaction run took {slow_ms // 1000} s or more, {DURATION_ALARM_SHARE:.0%} of "
        f"its timeout of {compaction_timeout(settings)} s: the lake changes faster than "
        "a run folds it (give the function more memory, hence CPU)",
        metric(
            "AWS/Lambda",
            "Duration",
            "Maximum",
            FunctionName=function_name(settings, functions[compaction_function]),
        ),
        threshold=slow_ms,
    )
    resources["GraphQLInternalErrorsAlarm"] = _alarm(
        settings,
        "GraphQLInternalErrors",
        "GraphQL resolvers raised unexpected errors (see the API function's log)",
        metric(
            metrics.NAMESPACE,
            metrics.GRAPHQL_INTERNAL_ERRORS,
            "Sum",
            **{
                metrics.PROJECT_DIMENSION: settings.project,
                metrics.STAGE_DIMENSION: settings.stage,
            },
        ),
        threshold=1,
    )
    resources["AthenaScannedBytesAlarm"] = _scanned_bytes_alarm(settings, options)
    return resources


def metric(namespace: str, name: str, statistic: str, **dimensions: Any) -> dict[str, Any]:
    """A metric and the statistic an alarm takes of it."""
    return {
        "Namespace": namespace,
        "MetricName": name,
        "Statistic": statistic,
        "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
    }


def _alarm(
    settings: Settings, what: str, description: str, watched: Mapping[str, Any], *, threshold: int
) -> dict[str, Any]:
    """An alarm that fires on the first period at or over ``threshold``; no data is no
    failure (an idle queue or function publishes nothing)."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": stage_resource_name(settings, what),
            "AlarmDescription": description,
            **watched,
            "Period": PERIOD_SECONDS,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
        },
    }


def _scanned_bytes_alarm(settings: Settings, options: StageOptions) -> dict[str, Any]:
    """Athena publishes each query's scanned bytes by state, kind and workgroup; the
    alarm adds up every state of the workgroup's queries over a day."""
    parts = [
        {
            "Id": f"scanned{index}",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Athena",
                    "MetricName": "ProcessedBytes",
                    "Dimensions": [
                        {"Name": "QueryState", "Value": state},
                        {"Name": "QueryType", "Value": "DML"},
                        {"Name": "WorkGroup", "Value": {"Ref": WORKGROUP}},
                    ],
                },
                "Period": DAY_SECONDS,
                "Stat": "Sum",
            },
        }
        for index, state in enumerate(_ATHENA_STATES)
    ]
    total = " + ".join(f"FILL({part['Id']}, 0)" for part in parts)
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": stage_resource_name(settings, "AthenaScannedBytes"),
            "AlarmDescription": (
                f"the workgroup scanned more than {options.daily_scanned_bytes_alarm:,} bytes "
                "in a day (Athena bills by bytes scanned)"
            ),
            "Metrics": [
                {"Id": "total", "Expression": total, "Label": "bytes scanned", "ReturnData": True},
                *parts,
            ],
            "EvaluationPeriods": 1,
            "Threshold": options.daily_scanned_bytes_alarm,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
        },
    }
