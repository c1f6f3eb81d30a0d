"""A stage's deployment options, from ``.chalice/config.json``: defaults a small team can
afford, and a clear refusal of a typo or a value AWS would refuse."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.settings import SettingsError
from deploy.options import StageOptions, stage_options


def config(stage: dict[str, Any]) -> dict[str, Any]:
    return {"stages": {"dev": stage}}


def test_an_empty_stage_gets_the_defaults() -> None:
    options = stage_options(config({}), "dev")

    assert options == StageOptions()
    assert options.bytes_scanned_cutoff == 10 * 1024**3
    assert options.log_retention_in_days == 30
    assert (options.api_rate_limit, options.api_burst_limit) == (50, 100)
    assert options.api_daily_quota == 10_000
    assert options.alarm_email is None


def test_chalices_log_retention_and_our_options_are_read_from_the_stage() -> None:
    options = stage_options(
        config({"log_retention_in_days": 7, "ocg": {"alarm_email": "ops@example.com"}}), "dev"
    )

    assert options.log_retention_in_days == 7
    assert options.alarm_email == "ops@example.com"


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"ocg": {"alarm_mail": "x@y"}}, "unknown option(s) alarm_mail"),
        ({"log_retention_in_days": 10}, "log_retention_in_days=10 is not a retention"),
        ({"ocg": {"api_daily_quota": 0}}, "api_daily_quota=0 must be a positive integer"),
        ({"ocg": {"bytes_scanned_cutoff": 1024}}, "below Athena's minimum of 10 MiB"),
        ({"ocg": {"queue_max_concurrency": 1}}, "queue_max_concurrency=1 must be from 2 to 1000"),
        ({"ocg": {"alarm_email": "ops"}}, "alarm_email='ops' must be an e-mail address"),
        ({"ocg": []}, "stages.dev.ocg must be an object"),
    ],
)
def test_a_bad_option_is_refused_with_its_place(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=r"stages\.dev") as refused:
        stage_options(config(stage), "dev")

    assert message in str(refused.value)
