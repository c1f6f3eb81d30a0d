"""What a request's resolvers may use: the one context type of the GraphQL layer.

``Services`` is one. Each member is created on first use there, so a request that only
reads entities never builds the task engine. Resolvers reach AWS only through it, so
the same schema serves Lambda, ``chalice local`` and the tests with whatever clients
were injected at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chalicelib.settings import Settings
    from chalicelib.store import EntityStore
    from chalicelib.tasks.service import TaskService


class RequestContext(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> EntityStore: ...

    @property
    def tasks(self) -> TaskService: ...

    def client(self, service_name: str) -> Any:
        """A boto3 client; join-table INSERTs write several items in one transaction,
        which the entity store does not."""
