"""Someone is told: every place a message or event lands after failing, every function's
errors and throttles, the lake falling behind, compaction nearing its timeout, and the
day's Athena scan."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.schema import load_schema
from chalicelib.settings import load_settings
from chalicelib.telemetry import metrics
from deploy.alarms import ALARM_TOPIC, alarm_resources
from deploy.compaction import compaction_timeout
from deploy.options import StageOptions
from deploy.resources import resources_template
from deploy.validate import lint
from tests.conftest import EXAMPLE_SCHEMA

FUNCTIONS = {
    "APIHandler": "api_handler",
    "OnTableChange": "on_table_change",
    "OnCascadeMessage": "on_cascade_message",
    "OnDeletionMessage": "on_deletion_message",
    "OnAthenaStateChange": "on_athena_state_change",
    "CompactLake": "compact_lake",
}
SETTINGS = load_settings(
    {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": "210987654321",
     "OCG_STAGE": "dev"}
)  # fmt: skip


def template(options: StageOptions) -> dict[str, Any]:
    stack = resources_template(SETTINGS, load_schema(EXAMPLE_SCHEMA, check_sql=False), options)
    stack["Resources"].update(
        alarm_resources(
            SETTINGS,
            options,
            FUNCTIONS,
            stream_function="OnTableChange",
            compaction_function="CompactLake",
        )
    )
    return stack


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return template(StageOptions())


def alarms(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in stack["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def watched(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_the_stack_with_its_alarms_is_clean_for_cfn_lint(stack: dict[str, Any]) -> None:
    assert lint(stack, "eu-west-1") == []


def test_every_queue_where_failed_work_waits_has_an_alarm(stack: dict[str, Any]) -> None:
    queues = {
        k
        for k, r in stack["Resources"].items()
        if r["Type"] == "AWS::SQS::Queue"
        and r["Properties"]["QueueName"]
        not in (SETTINGS.cascade_queue_name, SETTINGS.deletion_queue_name)
    }
    on_queues = {
        watched(alarm)["QueueName"]["Fn::GetAtt"][0]: alarm
        for alarm in alarms(stack).values()
        if alarm.get("Namespace") == "AWS/SQS"
    }

    assert len(queues) == 4
    assert set(on_queues) == queues
    for alarm in on_queues.values():
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [{"Ref": ALARM_TOPIC}]


def test_every_function_alarms_on_errors_and_throttles(stack: dict[str, Any]) -> None:
    on_functions = {
        (watched(alarm)["FunctionName"], alarm["MetricName"])
        for alarm in alarms(stack).values()
        if alarm.get("Namespace") == "AWS/Lambda"
    }

    for handler in FUNCTIONS.values():
        for metric in ("Errors", "Throttles"):
            assert (f"ocg-shop-dev-{handler}", metric) in on_functions
    assert ("ocg-shop-dev-on_table_change", "IteratorAge") in on_functions
    assert ("ocg-shop-dev-compact_lake", "Duration") in on_functions


def test_a_compaction_run_nearing_its_timeout_is_reported_before_runs_fail(
    stack: dict[str, Any],
) -> None:
    (alarm,) = [
        a
        for a in alarms(stack).values()
        if a.get("MetricName") == "Duration"
        and watched(a)["FunctionName"] == "ocg-shop-dev-compact_lake"
    ]

    timeout_ms = compaction_timeout(SETTINGS) * 1000
    assert compaction_timeout(SETTINGS) == 840  # every 15 minutes, over a minute before the next
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 0.8 * timeout_ms < timeout_ms
    # Runs come every 15 minutes: the 5-minute periods between them have no data, which
    # is no alarm.
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_days_athena_scan_is_watched_against_the_stages_budget() -> None:
    budget = 5 * 1024**3
    (alarm,) = [
        a
        for a in alarms(template(StageOptions(daily_scanned_bytes_alarm=budget))).values()
        if "Metrics" in a
    ]

    total, *parts = alarm["Metrics"]
    assert alarm["Threshold"] == budget
    assert total["ReturnData"] is True and all(not p["ReturnData"] for p in parts)
    for part in parts:
        stat = part["MetricStat"]
        assert stat["Metric"]["MetricName"] == "ProcessedBytes"
        assert {"Name": "WorkGroup", "Value": {"Ref": "AthenaWorkGroup"}} in stat["Metric"][
            "Dimensions"
        ]
        assert stat["Period"] == 86_400 and stat["Stat"] == "Sum"
        assert f"FILL({part['Id']}, 0)" in total["Expression"]


def test_the_topic_mails_the_stages_address_only_when_it_has_one(stack: dict[str, Any]) -> None:
    mailed = template(StageOptions(alarm_email="ops@example.com"))["Resources"][ALARM_TOPIC]

    assert mailed["Properties"]["Subscription"] == [
        {"Protocol": "email", "Endpoint": "ops@example.com"}
    ]
    assert "Subscription" not in stack["Resources"][ALARM_TOPIC]["Properties"]
    assert stack["Resources"][ALARM_TOPIC]["Properties"]["TopicName"] == "ocg-shop-dev-alarms"


def test_the_apis_internal_errors_alarm_watches_what_the_api_emits(stack: dict[str, Any]) -> None:
    (alarm,) = [a for a in alarms(stack).values() if a.get("Namespace") == metrics.NAMESPACE]

    assert alarm["MetricName"] == metrics.GRAPHQL_INTERNAL_ERRORS
    assert set(watched(alarm)) == set(metrics.DIMENSIONS)
    assert watched(alarm) == {"Project": "shop", "Stage": "dev"}
