"""What a request's resolvers may use: the one context type of the GraphQL layer.

:class:`CallerContext` is the one every request gets: the process's ``Services`` (each
member created on first use there, so a request that only reads entities never builds
the task engine) and who is calling. Resolvers reach AWS only through it, so the same
schema serves Lambda, ``chalice local`` and the tests with whatever clients were
injected at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.auth.identity import PUBLIC, Identity

if TYPE_CHECKING:
    from chalicelib.settings import Settings
    from chalicelib.store import EntityStore
    from chalicelib.tasks.service import TaskService


class ServiceContext(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> EntityStore: ...

    @property
    def tasks(self) -> TaskService: ...

    def client(self, service_name: str) -> Any:
        """A boto3 client; join-table INSERTs write several items in one transaction,
        which the entity store does not."""


class RequestContext(ServiceContext, Protocol):
    @property
    def identity(self) -> Identity:
        """Who is calling, as the request's token says (PUBLIC without one)."""


@dataclass(frozen=True)
class CallerContext:
    """The services of the process, with the caller of one request."""

    services: ServiceContext
    identity: Identity = PUBLIC

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> EntityStore:
        return self.services.store

    @property
    def tasks(self) -> TaskService:
        return self.services.tasks

    def client(self, service_name: str) -> Any:
        return self.services.client(service_name)
