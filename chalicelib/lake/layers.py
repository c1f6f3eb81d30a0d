"""The lake's layers, and the one SQL that reads a lake table through them (docs/lake.md).

A lake table ``t`` is stored in three layers, each a Glue table of its own:

- ``t__live`` (``tables/t/``): one file per item, written by the stream handler as each
  change arrives; what changed since the last compaction.
- ``t__compacted`` (``compacted/t/``): per partition, the files compaction folded the
  live files into, every row stamped with the run's ``_generation``; only the newest
  generation of a partition counts (an older one is a run's leftover).
- ``t__deleted`` (``deleted/t/``): one tombstone per removed item (its key and the
  sequence number of the removal), which hides the item's compacted row until
  compaction has folded the removal in.

A query reads ``t`` as :func:`merged_select`: every live row, and every compacted row of
its partition's newest generation that neither a live file nor a tombstone overrides.
A live file always wins, so the stream handler never needs to know about compaction,
and compaction may only remove a live file or a tombstone that is still the one it read.
The same SQL runs on Athena and, transpiled, on DuckDB.

Pure data and text: no pyarrow, no sqlglot.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chalicelib import keys
from chalicelib.lake.columns import Column, ColumnType, TableSpec, lake_tables
from chalicelib.schema.model import SchemaModel

GENERATION = "_generation"
# A tombstone's stream record: two removals of one key (a relation added again and
# removed again) leave different tombstones, so compaction's conditional delete of the
# first cannot take the second.
REMOVAL = "_removal"
_NEWEST = "_newest"
# Between a lake table's name and its layer's. Two tables' layers never share a name:
# no layer suffix ends with ``__`` and another suffix.
SEPARATOR = "__"


class LayerKind(Enum):
    """A layer; the value is its Glue table's suffix."""

    LIVE = "live"
    COMPACTED = "compacted"
    DELETED = "deleted"


_PREFIXES = {
    LayerKind.LIVE: keys.LAKE_PREFIX,
    LayerKind.COMPACTED: keys.COMPACTED_PREFIX,
    LayerKind.DELETED: keys.DELETED_PREFIX,
}


@dataclass(frozen=True)
class Layer:
    """One layer of one lake table: a Glue table over one prefix of the lake."""

    table: TableSpec
    kind: LayerKind

    @property
    def name(self) -> str:
        return layer_name(self.table.name, self.kind)

    @property
    def prefix(self) -> str:
        """``<layer>/<t>/``, the objects of this layer."""
        return keys.lake_table_prefix(self.table.name, _PREFIXES[self.kind])

    @property
    def spec(self) -> TableSpec:
        """The layer's file columns, under the layer's name."""
        if self.kind is LayerKind.COMPACTED:
            columns = (*self.table.columns, Column(GENERATION, ColumnType.BIGINT))
        elif self.kind is LayerKind.DELETED:
            columns = (
                Column(self.table.key, ColumnType.STRING),
                Column(REMOVAL, ColumnType.STRING),
            )
        else:
            columns = self.table.columns
        return TableSpec(self.name, columns, self.table.key)


def layer_name(table: str, kind: LayerKind) -> str:
    return f"{table}{SEPARATOR}{kind.value}"


def table_layers(table: TableSpec) -> tuple[Layer, ...]:
    return tuple(Layer(table, kind) for kind in LayerKind)


def lake_layers(model: SchemaModel) -> tuple[Layer, ...]:
    """Every layer of every lake table of the schema."""
    return tuple(layer for table in lake_tables(model) for layer in table_layers(table))


def tombstone_spec(table: TableSpec) -> TableSpec:
    return Layer(table, LayerKind.DELETED).spec


def compacted_spec(table: TableSpec) -> TableSpec:
    return Layer(table, LayerKind.COMPACTED).spec


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def merged_select(table: TableSpec) -> str:
    """The Trino query that reads ``table`` as it stands: its columns and the partition
    columns, one row per item, whatever compaction has or has not folded yet."""
    live, compacted, deleted = (_quote(layer_name(table.name, kind)) for kind in LayerKind)
    partitions = keys.PARTITION_KEYS
    visible = [*(_quote(c.name) for c in table.columns), *partitions]
    key = _quote(table.key)

    def overrides(layer: str, alias: str) -> str:
        same = " AND ".join(f"{alias}.{name} = c.{name}" for name in (key, *partitions))
        return f"NOT EXISTS (SELECT 1 FROM {layer} AS {alias} WHERE {same})"

    # Quoted: a name that starts with an underscore is an identifier only when quoted in
    # some of Athena's grammars.
    generation, newest_column = _quote(GENERATION), _quote(_NEWEST)
    newest = (
        f"SELECT *, max({generation}) OVER (PARTITION BY {', '.join(partitions)}) "
        f"AS {newest_column} FROM {compacted}"
    )
    return (
        f"SELECT {', '.join(visible)} FROM {live} "
        f"UNION ALL "
        f"SELECT {', '.join(f'c.{name}' for name in visible)} FROM ({newest}) AS c "
        f"WHERE c.{generation} = c.{newest_column} "
        f"AND {overrides(live, 'l')} AND {overrides(deleted, 'd')}"
    )


def merged_tables(model: SchemaModel) -> dict[str, str]:
    """Each lake table's lower-cased name -> :func:`merged_select` of it: what the task
    SQL reads in place of the table (``chalicelib.sql.analysis.read_through``)."""
    return {table.name.lower(): merged_select(table) for table in lake_tables(model)}
