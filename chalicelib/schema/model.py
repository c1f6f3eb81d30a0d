"""The compiled schema: what every other module knows about the user's types.

Built once by :func:`chalicelib.schema.load_schema` from the validated SDL. It is plain,
immutable data, so the store, the GraphQL layer, the lake and the catalogue all derive
their shapes from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from chalicelib import keys

# Fields the API manages on every entity.
ID_FIELD, CREATED_AT_FIELD, UPDATED_AT_FIELD = "id", keys.CREATED_AT, "updatedAt"
MANAGED_FIELDS = (ID_FIELD, CREATED_AT_FIELD, UPDATED_AT_FIELD)

# Scalars an entity field may use. The AWS ones are declared by the loader when the
# user's file does not declare them, so AppSync schemas load unchanged.
BUILTIN_SCALARS = ("ID", "String", "Int", "Float", "Boolean")
AWS_SCALARS = (
    "AWSDateTime",
    "AWSDate",
    "AWSTime",
    "AWSTimestamp",
    "AWSEmail",
    "AWSJSON",
    "AWSURL",
    "AWSPhone",
    "AWSIPAddress",
)


# Integers (Int, AWSTimestamp) are 64-bit wherever they are kept: the lake's bigint
# columns. The store refuses what the lake could not hold.
INTEGER_RANGE = range(-(2**63), 2**63)


class TypeKind(StrEnum):
    SCALAR = "scalar"
    ENUM = "enum"
    OBJECT = "object"


@dataclass(frozen=True)
class TypeRef:
    """A field or argument type: a named type, optionally a list, with null markers."""

    name: str
    kind: TypeKind
    non_null: bool = False
    is_list: bool = False
    item_non_null: bool = False

    def sdl(self) -> str:
        """The type as written in SDL, e.g. ``[String!]!``."""
        inner = self.name + ("!" if self.is_list and self.item_non_null else "")
        text = f"[{inner}]" if self.is_list else inner
        return text + ("!" if self.non_null else "")


class AuthStrategy(StrEnum):
    """Who an ``@auth`` rule admits (docs/auth.md): callers not signed in (an API key
    holder; locally, a request without a token), any signed-in user, the item's owner,
    members of named groups."""

    PUBLIC = "public"
    PRIVATE = "private"
    OWNER = "owner"
    GROUPS = "groups"


class Operation(StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    LIST = "list"


@dataclass(frozen=True)
class AuthRule:
    """One rule of ``@auth(rules: [...])``: ``allow`` admits whom, for ``operations``."""

    allow: AuthStrategy
    operations: frozenset[Operation] = frozenset(Operation)
    owner_field: str | None = None
    groups: frozenset[str] = frozenset()


# What ``@auth`` says of a type or field; None where it has no ``@auth``: every caller
# the stage lets in may do everything (the stage's sign-in is then the only gate).
AuthRules = tuple[AuthRule, ...] | None


@dataclass(frozen=True)
class Field:
    name: str
    type: TypeRef

    @property
    def managed(self) -> bool:
        return self.name in MANAGED_FIELDS


@dataclass(frozen=True)
class Entity:
    """An object type stored in DynamoDB and mirrored into the lake."""

    name: str
    fields: tuple[Field, ...]
    auth: AuthRules = None

    @property
    def owner_field(self) -> str | None:
        """The field its owner rule names: set from the creator's token, indexed so a
        user lists their own items (keys.owner_list_keys)."""
        return next((r.owner_field for r in self.auth or () if r.owner_field), None)

    @property
    def key(self) -> str:
        """The lower-cased name: the ``t`` of DESIGN.md (keys, lake folder, Glue table)."""
        return self.name.lower()

    @property
    def input_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.managed)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class Argument:
    name: str
    type: TypeRef
    has_default: bool = False
    default: Any = None


@dataclass(frozen=True)
class TaskResponse:
    """A ``@task_response`` type: the shape of a SQL task's rows."""

    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class QueryTask:
    """A ``Query`` field with ``@sql_query``: run asynchronously as an Athena query."""

    name: str
    arguments: tuple[Argument, ...]
    result: TypeRef
    sql: str
    auth: AuthRules = None


@dataclass(frozen=True)
class JoinColumn:
    """A typed column of a join table: ``userId:User`` references entity ``User``."""

    name: str
    entity: str

    @property
    def entity_key(self) -> str:
        return self.entity.lower()


# A join INSERT is one DynamoDB transaction, which takes at most 100 items: the row item,
# then per column a relation item and a check that the referenced entity exists.
TRANSACTION_ITEM_LIMIT = 100
MAX_JOIN_COLUMNS = (TRANSACTION_ITEM_LIMIT - 1) // 2


@dataclass(frozen=True)
class JoinTable:
    name: str
    columns: tuple[JoinColumn, ...]

    def column(self, name: str) -> JoinColumn | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class InsertMutation:
    """``INSERT INTO $join_table(t) (col:Type, ...) VALUES ($args.a, ...)``.

    ``values`` pairs each column with the argument that fills it.
    """

    name: str
    arguments: tuple[Argument, ...]
    table: str
    values: tuple[tuple[str, str], ...]
    auth: AuthRules = None


@dataclass(frozen=True)
class DeleteMutation:
    """``DELETE alias FROM $join_table(t) alias ...``: run as a deletion task."""

    name: str
    arguments: tuple[Argument, ...]
    table: str
    sql: str
    auth: AuthRules = None


@dataclass(frozen=True)
class SchemaModel:
    source: Path
    entities: tuple[Entity, ...]
    enums: dict[str, tuple[str, ...]]
    scalars: tuple[str, ...]
    task_responses: tuple[TaskResponse, ...]
    query_tasks: tuple[QueryTask, ...]
    insert_mutations: tuple[InsertMutation, ...]
    delete_mutations: tuple[DeleteMutation, ...]
    join_tables: tuple[JoinTable, ...]
    # What a schema author should know but may mean: printed at start, never refused.
    warnings: tuple[str, ...] = ()
