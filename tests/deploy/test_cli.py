"""``python -m deploy``: the stage's settings as Chalice gives them, the template printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.settings import SettingsError
from deploy.__main__ import main
from deploy.package import copy_project
from deploy.stage import stage_settings
from tests.conftest import ROOT

ACCOUNT = "210987654321"  # a caller's account (moto's default is the example one)


def test_the_template_of_a_stage_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("OCG_ACCOUNT_ID", ACCOUNT)

    assert main(["resources", "--stage", "dev"]) == 0

    resources = json.loads(capsys.readouterr().out)["Resources"]
    assert resources["Table"]["Properties"]["TableName"] == "OCG-shop"
    workgroup = resources["AthenaWorkGroup"]["Properties"]
    assert workgroup["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    # Path b's stack: the roles and the alarms are in it.
    assert resources["APIHandlerRole"]["Type"] == "AWS::IAM::Role"
    assert resources["AlarmTopic"]["Properties"]["TopicName"] == "ocg-shop-dev-alarms"


@pytest.mark.parametrize(
    ("stage", "message"),
    [("local", "nothing to deploy"), ("prod", "has no stage 'prod' (stages: local, dev)")],
)
def test_a_stage_without_aws_resources_is_refused(
    stage: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resources", "--stage", stage]) == 2

    assert message in capsys.readouterr().err


def test_the_stage_overrides_the_global_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "environment_variables": {"OCG_PROJECT": "shop", "OCG_MODE": "aws"},
                "stages": {
                    "prod": {
                        "environment_variables": {
                            "OCG_PROJECT": "store",
                            "OCG_ACCOUNT_ID": "210987654321",
                        }
                    }
                },
            }
        )
    )

    settings = stage_settings("prod", config)

    assert (settings.project, settings.account_id) == ("store", "210987654321")
    assert settings.lake_bucket == "ocg-store-210987654321"
    with pytest.raises(SettingsError, match="no stage 'dev'"):
        stage_settings("dev", config)


def python(
    arguments: list[str], cwd: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


PREPARE_AND_FINISH = """
from moto import mock_aws
import tests.deploy.cloudformation_world
from deploy.__main__ import main
from deploy.package import copy_project
with mock_aws():
    print("prepare", main(["prepare", "--stage", "dev", "--pyarrow-layer", "%s"]))
    print("finish", main(["finish", "--stage", "dev"]))
"""


def test_prepare_then_finish_before_chalice_deploy_on_a_copy_of_the_project(
    tmp_path: Path,
) -> None:
    """The commands as a user runs them, in a project of their own (so the config they
    rewrite is the copy's)."""
    copy_project(tmp_path)
    layer = "arn:aws:lambda:eu-west-1:111111111111:layer:pyarrow:1"
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MOTO_ACCOUNT_ID": ACCOUNT,
    }

    result = python(["-c", PREPARE_AND_FINISH % layer], tmp_path, environment)

    assert result.returncode == 0, result.stderr
    assert f"stack ocg-shop-dev is ready in account {ACCOUNT}" in result.stdout
    assert "prepare 0" in result.stdout and "finish 2" in result.stdout
    assert "run chalice deploy --stage dev first" in result.stderr
    stage = json.loads((tmp_path / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert stage["lambda_functions"]["on_table_change"]["layers"] == [layer]
    assert stage["environment_variables"]["OCG_TABLE_STREAM_ARN"].startswith(
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/OCG-shop/stream/"
    )
    untouched = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert "lambda_functions" not in untouched


def test_python_dash_m_deploy_runs_the_command_and_reports_its_status() -> None:
    environment = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1", "OCG_ACCOUNT_ID": ACCOUNT}

    printed = python(["-m", "deploy", "resources", "--stage", "dev"], ROOT, environment)
    refused = python(["-m", "deploy", "resources", "--stage", "local"], ROOT, environment)

    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["Resources"]["Table"]["Type"] == "AWS::DynamoDB::Table"
    assert refused.returncode == 2
    assert "nothing to deploy" in refused.stderr


def test_prepare_refuses_the_example_account(tmp_path: Path) -> None:
    """moto's account is the documentation's example: deployed as is, bucket names would
    collide and the functions would send to another account's queues."""
    copy_project(tmp_path)
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    environment.pop("MOTO_ACCOUNT_ID", None)

    result = python(
        ["-c", PREPARE_AND_FINISH % "arn:aws:lambda:eu-west-1:1:layer:x:1"], tmp_path, environment
    )

    assert "prepare 2" in result.stdout
    assert "the caller's account is 123456789012, the documentation's example" in result.stderr
    stage = json.loads((tmp_path / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert "OCG_ACCOUNT_ID" not in stage["environment_variables"]  # nothing written
