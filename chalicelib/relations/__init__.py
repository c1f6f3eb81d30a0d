"""Join relations in the single table (DESIGN §3, §7): their creation and their removal.

A join row is one row item plus one relation item per referenced entity. It is created
in one transaction that also checks every referenced entity, so no relation ever points
at an entity that was not there when it was written, and the row item's own condition
makes a repeated INSERT a no-op (see :func:`create_relation`). The row item
holds the referenced ids, so the keys of its relation items are derived from it with a
consistent read; GSI1, which may lag behind recent writes, is only the fallback for a
row item already gone. Removal works in batches (BatchGetItem for the row items,
BatchWriteItem for the deletes): the other relation items, then the row items (the
stream handler then removes their Parquet files), and the relation items under the
removed entity's partition last: those are how a redelivered message finds the
relations again, so a failure half-way through is finished by the retry.
"""

from chalicelib.relations.creation import (
    InvalidReference,
    MissingEntities,
    RelationConflict,
    create_relation,
)
from chalicelib.relations.removal import (
    delete_entity_relations,
    delete_relation,
    delete_relations,
    process_cascade_event,
)

__all__ = [
    "InvalidReference",
    "MissingEntities",
    "RelationConflict",
    "create_relation",
    "delete_entity_relations",
    "delete_relation",
    "delete_relations",
    "process_cascade_event",
]
