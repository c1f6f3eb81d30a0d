"""What the subscription tests share: the app's hub, its sockets replaced by a recorder."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LoadedApp
from tests.subscriptions.recorder import Client, Recorder, hub_over


@pytest.fixture
def hub_of() -> Callable[[LoadedApp], tuple[Callable[[str], Client], Recorder]]:
    def install(app: LoadedApp) -> tuple[Callable[[str], Client], Recorder]:
        recorder = Recorder()
        hub = hub_over(app.services, recorder)
        app.services.subscriptions = hub
        return (lambda connection_id: Client(hub, recorder, connection_id)), recorder

    return install
