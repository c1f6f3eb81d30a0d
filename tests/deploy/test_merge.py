"""Path (a): ``chalice package --merge-template`` makes one stack that cfn-lint accepts
(the SAM transform included), with every event source wired to its resource."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest

from tests.conftest import ROOT

ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package")
    merge = subprocess.run(
        [sys.executable, "-m", "deploy", "merge-template", "--stage", "dev"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (out / "merge.json").write_text(merge.stdout)
    chalice = Path(sys.executable).with_name("chalice")
    result = subprocess.run(
        [
            str(chalice),
            "--project-dir",
            str(ROOT),
            "package",
            "--stage",
            "dev",
            "--merge-template",
            str(out / "merge.json"),
            str(out / "out"),
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    template: dict[str, Any] = json.loads((out / "out" / "sam.json").read_text())
    return template


def events(template: dict[str, Any], function: str) -> dict[str, Any]:
    (event,) = template["Resources"][function]["Properties"]["Events"].values()
    properties: dict[str, Any] = event["Properties"]
    return properties


def test_the_packaged_stack_passes_cfn_lint_with_the_sam_transform(
    packaged: dict[str, Any],
) -> None:
    matches = cfnlint.api.lint(json.dumps(packaged), regions=["us-east-1"])

    assert [str(match) for match in matches] == []


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


FUNCTIONS = ("APIHandler", "OnTableChange", "OnCascadeMessage", "OnDeletionMessage")


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
    assert len(roles) == len({*FUNCTIONS, "OnAthenaStateChange"})
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

    assert "dynamodb:TransactWriteItems" in api and "athena:StartQueryExecution" in api
    assert "s3:PutObject" in stream and "dynamodb:PutItem" not in stream
    assert not any(action.startswith("athena:") for action in cascade)
    assert "athena:StartQueryExecution" not in tracker
    lake_writers = [f for f in FUNCTIONS if "s3:DeleteObject" in allowed(packaged, f)]
    assert lake_writers == ["OnTableChange"]  # the stream handler is the lake's only writer
