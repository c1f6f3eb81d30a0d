"""What the subscription tests share: the app's hub, its sockets replaced by a recorder."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chalicelib.subscriptions import SubscriptionHub, SubscriptionRegistry
from tests.conftest import LoadedApp
from tests.subscriptions.recorder import Client, Recorder


@pytest.fixture
def hub_of() -> Callable[[LoadedApp], tuple[Callable[[str], Client], Recorder]]:
    def install(app: LoadedApp) -> tuple[Callable[[str], Client], Recorder]:
        services = app.services
        recorder = Recorder()
        hub = SubscriptionHub(
            services,
            lambda: services.graphql_endpoint,
            SubscriptionRegistry(services.client("dynamodb"), services.settings.table_name),
            recorder,
            services.authenticate,
            services.model,
        )
        services.subscriptions = hub
        return (lambda connection_id: Client(hub, recorder, connection_id)), recorder

    return install
