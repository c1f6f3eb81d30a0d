"""The embedded local default (DESIGN §8): AWS emulated in-process, events delivered locally.

Only this package may import moto. ``app.py`` reaches it through
``chalicelib.services`` when ``OCG_MODE=local``; tests use it directly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalice.app import Chalice

from chalicelib.local.aws import (
    EmbeddedAWS,
    EmbeddedAWSError,
    start_embedded_aws,
    stop_embedded_aws,
)
from chalicelib.local.events import EventPatternError, LocalEventRuntime
from chalicelib.local.schedules import LocalSchedules
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.local.websockets import LocalWebSockets

__all__ = [
    "EmbeddedAWS",
    "EmbeddedAWSError",
    "EventPatternError",
    "LocalEventRuntime",
    "LocalRuntime",
    "LocalSchedules",
    "start_embedded_aws",
    "start_local_runtime",
    "stop_embedded_aws",
]


@dataclass(frozen=True)
class LocalRuntime:
    """The emulated AWS, the delivery of its events to one app's handlers, and the
    app's schedules."""

    aws: EmbeddedAWS
    events: LocalEventRuntime
    schedules: LocalSchedules
    # API Gateway's WebSocket API, when the app has WebSocket handlers.
    websockets: LocalWebSockets | None = None

    def stop(self) -> None:
        """Stop serving sockets, delivering events and firing schedules; the emulated AWS
        lives as long as the process."""
        if self.websockets is not None:
            self.websockets.stop()
        self.schedules.stop()
        self.events.stop()


def start_local_runtime(
    app: Chalice, settings: Settings, *, poll_interval: float = 0.1
) -> LocalRuntime:
    """Start the embedded AWS (if not yet running) and deliver its events to ``app``.

    Call it once per app: two runtimes would each deliver every stream record.
    """
    aws = start_embedded_aws(settings)
    events = LocalEventRuntime(app, aws, settings, poll_interval=poll_interval)
    events.start()
    schedules = LocalSchedules(app, settings, interval=settings.local_compaction_seconds)
    schedules.start()
    return LocalRuntime(aws, events, schedules, _serve_websockets(app, settings))


def _serve_websockets(app: Chalice, settings: Settings) -> LocalWebSockets | None:
    """API Gateway's WebSocket API for the app's ``on_ws_*`` handlers, on its own port
    (Chalice's local server has none); its address is printed, as chalice local prints
    its own."""
    if not app.websocket_handlers:
        return None
    from chalicelib.local.websockets import LocalWebSockets

    websockets = LocalWebSockets(app, port=settings.local_ws_port, stage=settings.stage)
    websockets.start()
    print(f"Serving WebSocket subscriptions on {websockets.url}", file=sys.stderr, flush=True)
    return websockets
