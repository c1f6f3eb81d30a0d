"""Start-up: settings, the compiled schema, and the AWS clients of the world we run in.

This is the one place that knows whether the app runs on AWS or on the embedded local
default; handlers and resolvers receive what they need from :class:`Services` and
never ask. Clients and the executable schema are created on first use, so a cold
start pays only for what its function touches.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.schema import load_schema
from chalicelib.settings import Settings, load_settings
from chalicelib.store import EntityStore

if TYPE_CHECKING:
    from chalice import Chalice
    from graphql import GraphQLSchema

    from chalicelib.local import LocalRuntime
    from chalicelib.schema.model import SchemaModel

ClientFactory = Callable[[str], Any]


class Services:
    def __init__(self, settings: Settings, model: SchemaModel, client: ClientFactory) -> None:
        self.settings = settings
        self.model = model
        self.client = cache(client)
        self.local_runtime: LocalRuntime | None = None

    @cached_property
    def store(self) -> EntityStore:
        return EntityStore(
            self.client("dynamodb"), self.settings.table_name, self.settings.list_token_secret
        )

    @cached_property
    def graphql_schema(self) -> GraphQLSchema:
        from chalicelib.graphql import build_executable_schema

        return build_executable_schema(self.model)

    def deliver_local_events(self, app: Chalice) -> None:
        """On the embedded default, feed streams, queues and events to ``app``'s handlers.

        On AWS, Lambda's event-source mappings do that, so this does nothing.
        """
        if self.settings.is_local and self.local_runtime is None:
            from chalicelib.local import start_local_runtime

            self.local_runtime = start_local_runtime(app, self.settings)


def _sql_checked_here(settings: Settings) -> bool:
    """Whether loading the schema also parses its SQL (sqlglot costs ~75 ms to import).

    Everywhere a schema is written, tried or shipped — tests, local mode and the chalice
    CLI's ``local``/``package``/``deploy`` — the SQL is parsed and checked. A deployed
    function runs a package built from an already-checked schema, so its cold start
    skips the parse.
    """
    return settings.is_local or "chalice.cli" in sys.modules


def _aws_clients(settings: Settings) -> ClientFactory:
    import boto3

    session = boto3.session.Session(region_name=settings.region)
    return session.client


def boot() -> Services:
    """Everything ``app.py`` needs; a bad setting or schema fails here, at import."""
    settings = load_settings()
    model = load_schema(settings.schema_file, check_sql=_sql_checked_here(settings))
    if settings.is_local:
        from chalicelib.local import start_embedded_aws

        return Services(settings, model, start_embedded_aws(settings).client)
    return Services(settings, model, _aws_clients(settings))
