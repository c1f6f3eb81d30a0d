"""Local schedules: ``@app.schedule`` handlers fire as EventBridge's scheduled rules would
fire them, with its event shape, on their own thread, until stopped."""

from __future__ import annotations

import time
from typing import Any

import pytest
from chalice.app import Chalice, CloudWatchEvent, Rate

from chalicelib.local import LocalSchedules
from chalicelib.settings import load_settings


def scheduled_app(runs: list[tuple[CloudWatchEvent, Any]], fail_first: int = 0) -> Chalice:
    app = Chalice(app_name="ocg")
    failures = iter(range(fail_first))

    @app.schedule(Rate(15, unit=Rate.MINUTES))
    def compact_lake(event: CloudWatchEvent) -> dict[str, int]:
        if next(failures, None) is not None:
            raise RuntimeError("a failing run")
        runs.append((event, event.context))
        return {"runs": len(runs)}

    return app


def test_a_scheduled_handler_gets_eventbridges_scheduled_event() -> None:
    runs: list[tuple[CloudWatchEvent, Any]] = []
    settings = load_settings()
    schedules = LocalSchedules(scheduled_app(runs), settings, interval=3600)

    assert schedules.fire("compact_lake") == {"runs": 1}

    event, context = runs[0]
    assert (event.detail_type, event.source, event.detail) == ("Scheduled Event", "aws.events", {})
    assert event.account == settings.account_id and event.region == settings.region
    assert event.resources == [
        f"arn:aws:events:{settings.region}:{settings.account_id}:rule/ocg-{settings.stage}-compact_lake"
    ]
    assert context.function_name == f"ocg-{settings.stage}-compact_lake"


def test_runs_come_every_interval_and_a_failing_one_does_not_stop_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[tuple[CloudWatchEvent, Any]] = []
    schedules = LocalSchedules(scheduled_app(runs, fail_first=1), load_settings(), interval=0.02)
    schedules.start()
    try:
        for _ in range(500):
            if len(runs) >= 3:
                break
            time.sleep(0.01)
    finally:
        schedules.stop()
    assert len(runs) >= 3
    assert "scheduled handler compact_lake failed" in caplog.text
    stopped_at = len(runs)
    time.sleep(0.1)
    assert len(runs) == stopped_at
