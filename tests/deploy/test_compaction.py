"""The lake's compaction as deployed: one run at a time, each over before the next is due
(``deploy.compaction``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.settings import Settings, load_settings
from deploy.compaction import (
    compaction_invoke_settings,
    compaction_problems,
    compaction_timeout,
)
from deploy.stage import read_config
from tests.conftest import ROOT

CONFIG = read_config(ROOT / ".chalice" / "config.json")


def settings(minutes: int) -> Settings:
    return load_settings(
        {
            "OCG_MODE": "aws",
            "AWS_REGION": "eu-west-1",
            "OCG_ACCOUNT_ID": "210987654321",
            "OCG_STAGE": "dev",
            "OCG_COMPACTION_MINUTES": str(minutes),
        }
    )


@pytest.mark.parametrize(
    ("minutes", "timeout", "event_age"),
    [(2, 60, 120), (15, 840, 900), (16, 900, 960), (60, 900, 3600), (1440, 900, 21_600)],
)
def test_a_run_ends_a_minute_before_the_next_is_due_and_is_not_retried(
    minutes: int, timeout: int, event_age: int
) -> None:
    assert compaction_timeout(settings(minutes)) == timeout
    assert compaction_invoke_settings(settings(minutes)) == {
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": event_age,
    }


def test_the_projects_stages_run_compaction_one_at_a_time() -> None:
    assert compaction_problems(CONFIG, "dev", settings(15)) == []


def with_compaction(**function: Any) -> dict[str, Any]:
    config = copy.deepcopy(CONFIG)
    config["lambda_functions"]["compact_lake"] = function
    return config


@pytest.mark.parametrize("reserved", [None, 0, 2])
def test_a_compaction_that_could_run_twice_or_never_is_refused(reserved: int | None) -> None:
    config = with_compaction(lambda_memory_size=2048, reserved_concurrency=reserved)

    (problem,) = compaction_problems(config, "dev", settings(15))

    shown = "none" if reserved is None else reserved
    assert problem.startswith(f"compact_lake has a reserved concurrency of {shown} in stage")
    assert "lambda_functions.compact_lake.reserved_concurrency" in problem


def test_a_stage_may_not_override_the_concurrency_either() -> None:
    config = copy.deepcopy(CONFIG)
    config["stages"]["dev"]["lambda_functions"] = {"compact_lake": {"reserved_concurrency": 5}}

    (problem,) = compaction_problems(config, "dev", settings(15))

    assert "reserved concurrency of 5" in problem


def test_an_interval_that_leaves_a_run_no_time_is_refused() -> None:
    (problem,) = compaction_problems(CONFIG, "dev", settings(1))

    assert problem.startswith("OCG_COMPACTION_MINUTES=1 leaves a run no time")
