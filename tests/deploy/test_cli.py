"""``python -m deploy``: the stage's settings as Chalice gives them, the template printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.settings import SettingsError
from deploy.__main__ import main
from deploy.stage import stage_settings


def test_the_template_of_a_stage_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    assert main(["resources", "--stage", "dev", "--bytes-scanned-cutoff", "1073741824"]) == 0

    template = json.loads(capsys.readouterr().out)
    assert template["Resources"]["Table"]["Properties"]["TableName"] == "OCG-shop"
    workgroup = template["Resources"]["AthenaWorkGroup"]["Properties"]
    assert workgroup["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == 1073741824


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
