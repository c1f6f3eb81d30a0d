"""GraphQL subscriptions over WebSocket (docs/subscriptions.md): who listens to what, in
the single table, and the ``graphql-transport-ws`` protocol that feeds them."""

from chalicelib.subscriptions.hub import (
    PROTOCOL,
    Connections,
    ManagementConnections,
    SubscriptionHub,
)
from chalicelib.subscriptions.registry import Subscription, SubscriptionRegistry

__all__ = [
    "PROTOCOL",
    "Connections",
    "ManagementConnections",
    "Subscription",
    "SubscriptionHub",
    "SubscriptionRegistry",
]
