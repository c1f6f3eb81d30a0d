"""The lake's compaction function as deployed: one run at a time, each over before the next.

``compact_lake`` (``chalicelib.lake.compaction``) runs on an EventBridge schedule, every
``OCG_COMPACTION_MINUTES`` (15). Two runs folding one partition at once would each keep
only what they read, so the function has a reserved concurrency of 1
(``lambda_functions.compact_lake.reserved_concurrency`` in ``.chalice/config.json``,
which both paths give Chalice); :func:`compaction_problems` refuses a stage where it is
anything else.

Its timeout ends a run a minute before the next one is due (at most Lambda's 900 s), so
a scheduled run never finds the previous one still going: with a concurrency of 1 it
would be throttled, and the function's ``Throttles`` alarm would fire for nothing. For
the same reason a failed run is not retried by Lambda (its retries would run into the
schedule): the next scheduled run folds what this one left, and the ``Errors`` alarm
says it failed. An event that waited a whole interval (a throttled one) is dropped: the
next scheduled run already does its work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice.config import Config

from chalicelib.settings import Settings

COMPACTION_HANDLER = "compact_lake"
RESERVED_CONCURRENCY = 1
LAMBDA_MAX_TIMEOUT_SECONDS = 900
# A scheduled rule fires within about a minute of its time: a run ends this much before
# the next is due.
SCHEDULE_MARGIN_SECONDS = 60
# Lambda's bounds on how long an asynchronous event may wait for its invocation.
_EVENT_AGE_BOUNDS = (60, 6 * 3600)
# A run that takes more of its timeout than this is reported before runs start failing.
DURATION_ALARM_SHARE = 0.8


def compaction_timeout(settings: Settings) -> int:
    """The function's timeout: it ends before the next scheduled run is due."""
    interval = settings.compaction_minutes * 60
    return min(LAMBDA_MAX_TIMEOUT_SECONDS, interval - SCHEDULE_MARGIN_SECONDS)


def compaction_invoke_settings(settings: Settings) -> dict[str, Any]:
    """The asynchronous-invocation settings of the function that EventBridge invokes on
    its schedule: no retries (the schedule is the retry), and an event is dropped once
    the next one is due."""
    low, high = _EVENT_AGE_BOUNDS
    return {
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": max(low, min(high, settings.compaction_minutes * 60)),
    }


def compaction_problems(config: Mapping[str, Any], stage: str, settings: Settings) -> list[str]:
    """What keeps the stage's compaction from running one at a time, each run within its
    interval; empty when nothing does."""
    problems = []
    chalice = Config(
        chalice_stage=stage, function_name=COMPACTION_HANDLER, config_from_disk=dict(config)
    )
    reserved = chalice.reserved_concurrency
    if reserved != RESERVED_CONCURRENCY:
        problems.append(
            f"{COMPACTION_HANDLER} has a reserved concurrency of "
            f"{'none' if reserved is None else reserved} in stage {stage!r} of "
            f".chalice/config.json: it must be {RESERVED_CONCURRENCY} "
            f"(lambda_functions.{COMPACTION_HANDLER}.reserved_concurrency), since two "
            "compaction runs at once would lose each other's work"
        )
    if compaction_timeout(settings) < SCHEDULE_MARGIN_SECONDS:
        problems.append(
            f"OCG_COMPACTION_MINUTES={settings.compaction_minutes} leaves a run no time: a "
            f"run must end {SCHEDULE_MARGIN_SECONDS} s before the next is due, so the "
            "interval must be at least 2 minutes"
        )
    return problems
