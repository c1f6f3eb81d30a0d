"""Local schedules: what EventBridge's scheduled rules do on AWS.

Every ``@app.schedule`` handler of ``app.py`` is called, as Lambda would call it, with
a "Scheduled Event" (EventBridge's shape) and a Lambda context, every
``OCG_LOCAL_COMPACTION_SECONDS`` (the only schedule is the lake's compaction; a rate in
minutes would make ``make run`` wait a quarter of an hour to show it). Each runs on its
own thread, beside stream and queue delivery, as a scheduled Lambda runs beside the
others; a failing run is logged and the next one comes on time, as on AWS.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from chalice.app import Chalice, ScheduledEventConfig
from chalice.local import LambdaContext

from chalicelib.keys import utc_now
from chalicelib.local.events import LAMBDA_MEMORY_MB, LAMBDA_TIMEOUT_MS
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)


class LocalSchedules:
    """Fires ``app``'s scheduled handlers every ``interval`` seconds until stopped."""

    def __init__(self, app: Chalice, settings: Settings, *, interval: float) -> None:
        self._app = app
        self._settings = settings
        self.interval = interval
        self._sources = [s for s in app.event_sources if isinstance(s, ScheduledEventConfig)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for source in self._sources:
            thread = threading.Thread(
                target=self._every, args=(source,), name=f"ocg-schedule-{source.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop firing; waits for a run in progress to end."""
        self._stop.set()
        threads, self._threads = self._threads, []
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    def fire(self, name: str) -> Any:
        """Run one scheduled handler now, in this thread; its answer."""
        source = next(s for s in self._sources if s.name == name)
        return self._invoke(source)

    def _every(self, source: ScheduledEventConfig) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._invoke(source)
            except Exception:
                logger.exception(
                    "scheduled handler %s failed; it runs again in %s s", source.name, self.interval
                )

    def _invoke(self, source: ScheduledEventConfig) -> Any:
        s = self._settings
        function_name = f"{self._app.app_name}-{s.stage}-{source.name}"
        context = LambdaContext(function_name, LAMBDA_MEMORY_MB, LAMBDA_TIMEOUT_MS)
        context.invoked_function_arn = (
            f"arn:aws:lambda:{s.region}:{s.account_id}:function:{function_name}"
        )
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": s.account_id,
            "time": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": s.region,
            "resources": [f"arn:aws:events:{s.region}:{s.account_id}:rule/{function_name}"],
            "detail": {},
        }
        return self._app.handler_map[source.name](event, context)
