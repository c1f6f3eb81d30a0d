"""``@auth`` in the resolvers: the schema's rules (chalicelib.auth.rules) applied to the
request's caller, and the refusals a client sees.

A caller held to their own items gets the store's ``owner`` conditions, so someone
else's item reads as missing, and their list comes from their own index partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError

from chalicelib.auth.identity import Identity
from chalicelib.auth.rules import Grant, grant, may_assign_owner, may_call
from chalicelib.graphql.context import RequestContext
from chalicelib.schema.model import AuthRules, Entity, JoinTable, Operation

FORBIDDEN = "FORBIDDEN"


def forbidden(message: str) -> GraphQLError:
    """A refusal of the schema's ``@auth`` rules: a client error, with a code to branch on."""
    return GraphQLError(message, extensions={"code": FORBIDDEN})


def caller_of(context: RequestContext, rules: AuthRules, field: str) -> Identity:
    """The caller, if a Query or Mutation field's rules let them call it."""
    if not may_call(rules, context.identity):
        raise forbidden(f"not authorized to call {field}: its @auth rules do not admit you")
    return context.identity


class EntityAccess:
    """One entity's rules applied to one request's caller."""

    def __init__(self, entity: Entity, context: RequestContext) -> None:
        self.entity = entity
        self.identity = context.identity
        self.store = context.store

    def owner(self, operation: Operation) -> str | None:
        """The owner the caller is held to for ``operation`` (None: every item); raises
        when the rules grant the caller nothing."""
        granted = grant(self.entity.auth, operation, self.identity)
        if granted is Grant.NONE:
            who = "you" if self.identity.signed_in else "callers who are not signed in"
            raise forbidden(
                f"not authorized to {operation.value} {self.entity.name}: no @auth rule of "
                f"{self.entity.name} grants it to {who}"
            )
        return self.identity.sub if granted is Grant.OWN else None

    def check_owner_input(self, operation: Operation, values: Mapping[str, Any]) -> None:
        """The owner field is the creator's: only a group its rules name may write it."""
        owner_field = self.entity.owner_field
        if owner_field in values and not may_assign_owner(
            self.entity.auth, operation, self.identity
        ):
            raise forbidden(
                f"{self.entity.name}.{owner_field} is set from the creator's token: only "
                "members of a group its @auth rules name may set or change it"
            )


def owned_references(
    context: RequestContext, join_table: JoinTable, entities: Mapping[str, Entity]
) -> list[tuple[str, Entity, str]]:
    """``(column, entity, owner)`` for each column of a join table whose items the caller
    may read only their own of: a deletion task deletes only rows referencing those.
    Raises when the caller may read none of a referenced type."""
    owned = []
    for column in join_table.columns:
        entity = entities[column.entity]
        owner = EntityAccess(entity, context).owner(Operation.READ)
        if owner is not None:
            owned.append((column.name, entity, owner))
    return owned
