"""Fixtures of the deployment tests: an AWS account on moto and a stage's config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from deploy.stage import read_config
from tests.conftest import ROOT
from tests.deploy import cloudformation_world  # noqa: F401  registers the types moto skips
from tests.deploy.path_b_world import ACCOUNT, REGION, STAGE, WebSocketStages


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # moto does not match DynamoDB Streams' account-based endpoint (FIELD-NOTES, moto).
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A copy of the project's config, its account id not yet the caller's."""
    config = read_config(ROOT / ".chalice" / "config.json")
    config["stages"][STAGE]["environment_variables"]["OCG_ACCOUNT_ID"] = "111111111111"
    path = tmp_path / ".chalice" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(autouse=True)
def websocket_stages(monkeypatch: pytest.MonkeyPatch) -> WebSocketStages:
    """What ``finish`` sets on the WebSocket API's stage (moto has no UpdateStage)."""
    return WebSocketStages(monkeypatch)
