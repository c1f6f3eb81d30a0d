"""Resolvers of the join-table INSERT mutations (DESIGN §2, §3).

``addFavorite(userId, productId)`` with ``INSERT INTO $join_table(t) (userId:User,
productId:Product) VALUES ($args.userId, $args.productId)`` is no SQL run anywhere: it
writes the join row into the single table (:func:`chalicelib.relations.create_relation`)
and the stream handler mirrors it into the lake. It answers ``true`` whenever the
relation exists afterwards, new or not, so a client may safely repeat it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from chalicelib.graphql.access import EntityAccess, caller_of
from chalicelib.graphql.context import RequestContext
from chalicelib.relations import create_relation
from chalicelib.relations.creation import MissingEntities
from chalicelib.schema.model import (
    Entity,
    InsertMutation,
    JoinColumn,
    JoinTable,
    Operation,
    SchemaModel,
)
from chalicelib.store import StoreError

Resolver = Callable[..., Any]
Info = GraphQLResolveInfo[Any]


def insert_mutation_resolver(model: SchemaModel, insert: InsertMutation) -> Resolver:
    """The resolver of one INSERT mutation field; it returns True or raises a client error.

    Errors start with the field's name (``addFavorite: User 'u1' does not exist``), so a
    client sending several mutations in one request knows which one was refused.
    """
    join_table = next(t for t in model.join_tables if t.name == insert.table)
    entities = {e.name: e for e in model.entities}

    def resolve(_: Any, info: Info, **arguments: Any) -> bool:
        context: RequestContext = info.context
        caller_of(context, insert.auth, insert.name)
        references: dict[str, str] = {}
        for column, argument in insert.values:
            value = arguments.get(argument)
            if not isinstance(value, str) or not value:
                # The schema makes these ID! or String!; an empty string still names nothing.
                raise GraphQLError(f"{insert.name}: {argument} must be a non-empty id")
            references[column] = value
            _check_readable(context, entities[_column(join_table, column).entity], value, insert)
        try:
            create_relation(
                context.client("dynamodb"), context.settings.table_name, join_table, references
            )
        except StoreError as error:
            raise GraphQLError(f"{insert.name}: {error}") from None
        return True

    return resolve


def _column(join_table: JoinTable, name: str) -> JoinColumn:
    column = join_table.column(name)
    assert column is not None, f"{join_table.name} has no column {name}"
    return column


def _check_readable(
    context: RequestContext, entity: Entity, entity_id: str, insert: InsertMutation
) -> None:
    """A caller relates only items they may read: someone else's owned item is as
    missing to them as in :func:`create_relation`'s own check."""
    owner = EntityAccess(entity, context).owner(Operation.READ)
    if owner is not None and context.store.read(entity, entity_id, owner=owner) is None:
        raise GraphQLError(f"{insert.name}: {MissingEntities(((entity.name, entity_id),))}")
