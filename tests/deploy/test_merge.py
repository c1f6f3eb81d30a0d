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
