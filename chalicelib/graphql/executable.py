"""The executable GraphQL schema: the public SDL bound to resolvers.

Resolvers reach AWS only through the request's context (``graphql.context``), so the same
schema serves Lambda, ``chalice local`` and the tests with whatever clients were
injected at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, make_executable_schema
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema

from chalicelib.graphql.access import EntityAccess
from chalicelib.graphql.context import RequestContext
from chalicelib.graphql.joins import insert_mutation_resolver
from chalicelib.graphql.scalars import aws_scalars
from chalicelib.graphql.tasks import deletion_task_resolvers, query_task_resolvers
from chalicelib.lake.layers import merged_tables
from chalicelib.schema import naming
from chalicelib.schema.model import Entity, Operation, SchemaModel
from chalicelib.schema.sdl import public_sdl
from chalicelib.store import Order, StoreError

logger = logging.getLogger(__name__)

Resolver = Callable[..., Any]
Info = GraphQLResolveInfo[Any]


def _context(info: Info) -> RequestContext:
    context: RequestContext = info.context
    return context


def _crud_resolvers(entity: Entity) -> tuple[dict[str, Resolver], dict[str, Resolver]]:
    """Query and Mutation resolvers of one entity, keyed by their public field names,
    each held to the entity's ``@auth`` rules (chalicelib.auth.rules)."""

    def read(_: Any, info: Info, id: str) -> dict[str, Any] | None:
        access = EntityAccess(entity, _context(info))
        return access.store.read(entity, id, owner=access.owner(Operation.READ))

    def list_items(
        _: Any,
        info: Info,
        limit: int | None = None,
        order: Order | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        access = EntityAccess(entity, _context(info))
        # An explicit null means "not given": the defaults of the SDL apply.
        items, token = access.store.list(
            entity,
            limit=naming.DEFAULT_LIST_LIMIT if limit is None else limit,
            next_token=nextToken,
            order=order or "DESC",
            owner=access.owner(Operation.LIST),
        )
        return {"items": items, "nextToken": token}

    def create(_: Any, info: Info, input: Mapping[str, Any]) -> dict[str, Any]:
        access = EntityAccess(entity, _context(info))
        access.owner(Operation.CREATE)
        access.check_owner_input(Operation.CREATE, input)
        values = dict(input)
        if entity.owner_field is not None and entity.owner_field not in values:
            values[entity.owner_field] = access.identity.sub
        return access.store.create(entity, values)

    def update(_: Any, info: Info, id: str, input: Mapping[str, Any]) -> dict[str, Any]:
        access = EntityAccess(entity, _context(info))
        owner = access.owner(Operation.UPDATE)
        access.check_owner_input(Operation.UPDATE, input)
        return access.store.update(entity, id, input, owner=owner)

    def delete(_: Any, info: Info, id: str) -> dict[str, Any]:
        access = EntityAccess(entity, _context(info))
        deleted = access.store.delete(entity, id, owner=access.owner(Operation.DELETE))
        return {"id": id, "deleted": deleted}

    queries: dict[str, Resolver] = {
        naming.read_field(entity.name): read,
        naming.list_field(entity.name): list_items,
    }
    mutations: dict[str, Resolver] = {
        naming.create_field(entity.name): create,
        naming.update_field(entity.name): update,
        naming.delete_field(entity.name): delete,
    }
    return queries, mutations


def _sql_resolvers(
    model: SchemaModel,
) -> tuple[dict[str, Resolver], dict[str, Resolver], dict[str, Resolver]]:
    """The fields of ``@sql_query``: query tasks, deletion tasks and join INSERTs; a
    task's subscription answers what its ``taskResult…`` answers."""
    queries: dict[str, Resolver] = {}
    mutations: dict[str, Resolver] = {}
    subscriptions: dict[str, Resolver] = {}
    lake = merged_tables(model)
    for task in model.query_tasks:
        trigger, result = query_task_resolvers(model, task, lake)
        queries[naming.task_result_field(task.name)] = result
        mutations[naming.trigger_task_field(task.name)] = trigger
        subscriptions[naming.on_task_result_field(task.name)] = result
    for deletion in model.delete_mutations:
        trigger, result = deletion_task_resolvers(model, deletion, lake)
        queries[naming.task_result_field(deletion.name)] = result
        mutations[naming.trigger_task_field(deletion.name)] = trigger
        subscriptions[naming.on_task_result_field(deletion.name)] = result
    for insert in model.insert_mutations:
        mutations[insert.name] = insert_mutation_resolver(model, insert)
    return queries, mutations, subscriptions


def _changed_item(root: Any, info: Info, **filters: Any) -> Any:
    """An entity subscription's value: the changed item the event runs it with
    (chalicelib.subscriptions), already filtered and allowed."""
    return root


def build_executable_schema(model: SchemaModel) -> GraphQLSchema:
    query, mutation, subscription = QueryType(), MutationType(), ObjectType("Subscription")
    Resolvers = dict[str, Resolver]
    resolver_sets: list[tuple[Resolvers, Resolvers, Resolvers]] = [
        (*_crud_resolvers(entity), {}) for entity in model.entities
    ]
    resolver_sets.append(_sql_resolvers(model))
    for entity in model.entities:
        for field in (naming.on_create_field, naming.on_update_field, naming.on_delete_field):
            subscription.set_field(field(entity.name), _changed_item)
    for queries, mutations, subscriptions in resolver_sets:
        for name, resolver in queries.items():
            query.set_field(name, resolver)
        for name, resolver in mutations.items():
            mutation.set_field(name, resolver)
        for name, resolver in subscriptions.items():
            subscription.set_field(name, resolver)
    return make_executable_schema(
        public_sdl(model),
        query,
        mutation,
        subscription,
        *aws_scalars(model.scalars),
        convert_names_case=False,
    )


def is_internal(error: GraphQLError) -> bool:
    """A fault of ours rather than of the request: an unexpected exception in a resolver.

    Syntax, validation and input coercion errors have no path; store errors and GraphQL
    errors explain bad input. Anything else (an AWS error, a bug) is no help to a client.
    """
    original = error.original_error
    return (
        error.path is not None
        and original is not None
        and not isinstance(original, (StoreError, GraphQLError))
    )


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    formatted = dict(error.formatted)
    if is_internal(error):
        formatted["message"] = "Internal server error; the request was not completed"
    return formatted


class ErrorTally:
    """The ``error_formatter`` of one request: :func:`format_error`, counting how many
    errors were internal and how many were the client's."""

    def __init__(self) -> None:
        self.internal = 0
        self.client = 0

    def format(self, error: GraphQLError, debug: bool = False) -> dict[str, Any]:
        if is_internal(error):
            self.internal += 1
        else:
            self.client += 1
        return format_error(error, debug)


class InternalErrorLog(logging.LoggerAdapter[logging.Logger]):
    """Ariadne logs every GraphQL error with a traceback; only our own faults deserve one,
    so a client's bad input does not bury them."""

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, GraphQLError) and not is_internal(msg):
            return
        super().error(msg, *args, **kwargs)


error_log = InternalErrorLog(logger)
