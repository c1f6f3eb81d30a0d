"""The embedded moto DynamoDB at bounded cost, whatever the table holds (DESIGN §8).

moto 5.2.5 answers correctly but not cheaply, and at 100,000 items that decides whether
the local default is usable (FIELD-NOTES, "Measured on the built system"):

* ``TransactWriteItems`` deep-copies every table it names, stream shard included, to be
  able to roll back: a join INSERT cost seconds and hundreds of megabytes.
* every ``Query``, on the table or a GSI, collects and sorts all of the table's items,
  so one page of 20 cost O(N) and paging through a list O(N²).
* moto keeps every model object it ever creates in a class-level list
  (``BaseModel.__new__`` → ``instances_tracked``, for its dashboard), so the copies
  above, each query's result copies and every stream record were never freed; a
  ``GetItem`` of a missing key also left an empty partition behind.
* the stream shard kept every record forever, ~4 kB each.

:func:`install` changes the few moto internals responsible, once, when the emulator
starts (``start_embedded_aws``):

(a) ``DynamoDBBackend.transact_write_items`` remembers the items its operations touch
    (and where the stream shard ended) and, when it fails, puts those back and drops
    the stream records it appended. It never copies a table. DynamoDB requests are
    already answered one at a time (``chalicelib.local.aws``), so nothing else can
    have written those items meanwhile. Otherwise it is moto's code, cancellation
    reasons included.
(b) ``Table.query`` reads a page from per-partition sorted lists: one for each GSI
    partition, kept up to date on every write (``Table.put_item``, ``Table.delete_item``
    and ``DynamoDBBackend.update_item``, through which every other write goes:
    ``BatchWriteItem``, transactions, PartiQL, imports), and one per table partition,
    built the first time that partition is queried and kept up to date from then on.
    A page costs O(log N + Limit): the start is found by bisection (from
    ``ExclusiveStartKey`` and the sort-key condition), then items are visited in
    moto's own order with moto's own rules for ``Limit``, the 1 MB page, the key
    condition, ``ScannedCount`` and ``LastEvaluatedKey``; filters, projections and
    ``Select`` are then applied by moto's code as before. The lists are built on the
    first query of a table (O(N) once, ~1 s at 100,000 items); a table never queried
    costs nothing. Each item read is checked against its place in the list: a write
    that went around these hooks fails the query loudly instead of answering from a
    stale list.
(c) the DynamoDB and DynamoDB Streams model classes no longer record their instances,
    and ``Table.get_item``/``Table.delete_item`` leave no empty partition behind.
(d) stream records are stored pickled (~0.8 kB instead of ~4 kB), and the shard keeps
    DynamoDB's 24 hours of them, and at most ``StreamRetention.max_records`` (100,000:
    far more than the local event delivery, in the same process, falls behind). What
    every consumer has read is not known here (``chalicelib.local.events`` keeps its
    checkpoints to itself), so nothing is trimmed for having been read. Trimming
    moves the shard's ``StartingSequenceNumber`` (DynamoDB's stays) so that
    ``TRIM_HORIZON`` starts at the oldest record kept and sequence numbers go on
    increasing; a reader positioned before it (one that lagged by more than the
    bound) reads on from the oldest record kept, and the loss is logged (DynamoDB
    would answer ``TrimmedDataAccessException``).
(e) ``GetRecords`` answers with the same JSON, written by ``json.dumps`` (timestamps by
    moto's own timestamp serializer) instead of moto's generic response serializer,
    which walked the botocore model for every attribute of every image: ~0.5 ms a
    record, under the lock every DynamoDB request waits on, paid again for each record
    the local event delivery reads.
(f) moto looks up a request handler's action methods with ``inspect.getmembers`` on
    every request; the answer depends on the class only and is now remembered per
    class.

What stays moto's: queries on shapes the project's table does not have (local
secondary indexes, GSIs without a sort key or with multi-attribute keys, the legacy
``QueryFilter``, a malformed ``ExclusiveStartKey``) are answered by moto's own O(N)
code, as are ``Scan`` and PartiQL (O(N) by nature). Key attributes of a type a key
cannot have (anything but S, N, B) are not in the sorted lists: DynamoDB refuses such
writes, moto accepts them and then fails sorting them.

The patched internals were read in moto 5.2.5; :func:`install` checks the version and
the source of every function it replaces or relies on, and refuses to start
(:class:`UnsupportedMoto`) rather than fall back to O(N) behaviour silently.

Only the embedded local default imports this module (moto is no dependency of the
deployed functions).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.metadata
import inspect
import json
import logging
import pickle
import threading
import time
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from moto.core import responses as moto_responses
from moto.core.base_backend import InstanceTrackerMeta
from moto.core.common_models import BaseModel
from moto.core.model_instances import model_data, reset_model_data
from moto.core.serialize import TimestampSerializer
from moto.core.utils import method_names_from_class
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    ResourceNotFoundException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, StreamShard, Table
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodbstreams.models import ShardIterator
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from chalicelib.local.aws import EmbeddedAWSError

logger = logging.getLogger(__name__)

MOTO_VERSION = "5.2.5"
# The moto functions this module replaces, wraps or mirrors, with the SHA-256 of their
# source in MOTO_VERSION: if one differs, what was read here no longer holds.
VERIFIED_SOURCES = {
    "moto.dynamodb.models.dynamo_type.Item.__init__": (
        "d9c12b62cb921831aab9b2eb22ac24fbd600689064a0219ae3ffbe057ae4be74"
    ),
    "moto.core.common_models.BaseModel.__new__": (
        "08cf0ef20e88029a2eb91949492ce3281001a34b98143db186239962ad379eec"
    ),
    "moto.core.base_backend.InstanceTrackerMeta.__new__": (
        "bee162e12b56986ce029664fd87c4dc5ce76de919f732a86bc665911539d68ee"
    ),
    "moto.core.model_instances.reset_model_data": (
        "4a510e716295498976f53e61a8982c0f2834f352341149a3dbbb649292153ed1"
    ),
    "moto.dynamodb.models.dynamo_type.LimitedSizeDict.__setitem__": (
        "d979580fdbe14f79f3216564e1385c4b3485db82bc88193326c467a037331e81"
    ),
    "moto.dynamodb.models.dynamo_type.DynamoType.__hash__": (
        "4d37bb816dede3221cef85255e0338002372cbad3899909b4b2a7532f7197f05"
    ),
    "moto.dynamodb.models.dynamo_type.DynamoType.__eq__": (
        "48f12362c49f00c1138f550163b14b9c2f3bf0a50f0f907f426510a0417052c1"
    ),
    "moto.dynamodb.models.dynamo_type.DynamoType.cast_value": (
        "135da387dfcc7c1ca4930a6d64b5c474519422983cc2a4d03b37b716d090ae0c"
    ),
    "moto.dynamodb.models.dynamo_type.DynamoType.compare": (
        "5a77253bbdb399ee60bd2fc84aaf205a2e7ec3c71d32e9194d0ca6b4dd4da601"
    ),
    "moto.dynamodb.models.dynamo_type.Item.size": (
        "9bc6ada96d33365c0a0abcb4faf534e1bdc7bfe0af0ef0c1c6671eccd5b80f45"
    ),
    "moto.dynamodb.models.table.Table.query": (
        "002b4d00be6df07cf37f6cbe0132e5eb89455ae12a8e79b23db3fb492450f21e"
    ),
    "moto.dynamodb.models.table.Table.put_item": (
        "de23933013ef842639046c19bcf7e418bce0474d810f6719368be4cedce11d47"
    ),
    "moto.dynamodb.models.table.Table.delete_item": (
        "1594f7b07616c8cb8cdf0fbf58d6f54eeac83f25d7ac7b14e832a08e10efd8f9"
    ),
    "moto.dynamodb.models.table.Table.get_item": (
        "b08e98fe37b7e5836afe03b010d637ef50df5dea6cbecd9cf8816eef326a21cd"
    ),
    "moto.dynamodb.models.table.Table._item_comes_before_dct": (
        "6d70f41f7cb059f40e932e9c6c13cc57b6052c5d025c51235df414adf172bee1"
    ),
    "moto.dynamodb.models.table.Table.sorted_items": (
        "216dac1cd6b659d283e91006b809136623723efb90125b015e07052478724937"
    ),
    "moto.dynamodb.models.table.Table._generate_attr_to_sort_by": (
        "afef70e159fa8cb505cc030b323479b7ce105060c9eeecbce102247e41f302b2"
    ),
    "moto.dynamodb.models.table.Table._get_last_evaluated_key": (
        "2d0fae62fcd41aaebd8a04b503ebab88aa607883932c661dd4f98a2b4f29a9d3"
    ),
    "moto.dynamodb.models.table.StreamShard.__init__": (
        "5b521e4bd51c467eac3a15e4448e221f7221d55ca9f8dd2ae5f7ecf6641e75ed"
    ),
    "moto.dynamodb.models.table.StreamShard.add": (
        "357dc6da267e5dd7d46e18ee25d14b232a98679677906a2f02e4d454d1f11e03"
    ),
    "moto.dynamodb.models.table.StreamShard.get": (
        "fa7e9a0d7b438c2fbd4bcc8a04fecc79f70862760d1f176d3bc86775967e2d7e"
    ),
    "moto.dynamodb.models.DynamoDBBackend.query": (
        "b8f2b308cd13edb48bb59ab0321ec3f935605629acb1d1ed634ba9f2bbcb107e"
    ),
    "moto.dynamodb.models.DynamoDBBackend.update_item": (
        "218984588dd689a5de81678ce11e6a40d05c91e7b6c21b44c4ed4122fe74aa9f"
    ),
    "moto.dynamodb.models.DynamoDBBackend.delete_item": (
        "083a4bb1af18f6fd2feef40195a4c9c803da66cb2cacd14f87916c6e76930ea5"
    ),
    "moto.dynamodb.models.DynamoDBBackend.transact_write_items": (
        "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"
    ),
    "moto.dynamodbstreams.models.ShardIterator.__init__": (
        "5842e50a95242ef84673613918b71c4a2a9c149d4baa10904b0c84034c4c793e"
    ),
    "moto.dynamodbstreams.responses.DynamoDBStreamsHandler.get_records": (
        "eca5821a96bdd10d8ae32ccc432f7c7df424a484f388ab2a8ecb2e8c9a2026ce"
    ),
    "moto.core.serialize.TimestampSerializer._timestamp_unixtimestamp": (
        "9b00cea88c916ce0b09dc487c57c9b2a10df87fd1fdf5ca13b111c5682d90b82"
    ),
    "moto.core.utils.method_names_from_class": (
        "9dbac89d082b655fee902c450e69de9dbadf9699ad06411298494984b55138c3"
    ),
}


class UnsupportedMoto(EmbeddedAWSError):
    """The installed moto is not built the way this module was verified against."""


@dataclass(frozen=True)
class StreamRetention:
    """How long the emulated stream keeps records: DynamoDB's 24 hours, and at most
    ``max_records`` (what the process can hold; a consumer lagging further loses the
    oldest, and the loss is logged)."""

    max_age_seconds: float = 24 * 3600
    max_records: int = 100_000


STREAM_RETENTION = StreamRetention()
# The clock stream records are dated by (seconds); tests replace it.
clock: Callable[[], float] = time.time

# moto's limit on one item (LimitedSizeDict), in its own measure (Item.size()).
_MAX_ITEM_SIZE = 405_000
_KEY_TYPES = frozenset({"S", "N", "B"})
# The range part of every sorted key: (type, value) of the index's (or table's) sort key.
_RANGE = itemgetter(2, 3)
_RANGE_TYPE = itemgetter(2)

_install_lock = threading.Lock()
_installed = False
# Regions where moto's own code answers: the reference of the differential tests.
_reference_regions: set[tuple[str, str]] = set()

# A table item's key: (hash, range); range is None on a table without a sort key.
Ref = tuple[DynamoType, DynamoType | None]
SortKey = tuple[Any, ...]


# -- installation ---------------------------------------------------------------------


def install() -> None:
    """Make this process's moto DynamoDB bounded in cost (idempotent).

    Raises :class:`UnsupportedMoto` when moto is not the version, or its internals not
    the source, this was verified against.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        _check_moto()
        _stop_tracking_instances()
        for owner, name, replacement in _replacements():  # classes, and one module
            replacement.__wrapped__ = getattr(owner, name)  # type: ignore[attr-defined]
            setattr(owner, name, replacement)
        _installed = True


@contextmanager
def reference_region(account_id: str, region_name: str) -> Iterator[None]:
    """While it lasts, moto's own code answers DynamoDB requests in this region: the
    reference that tests compare the bounded implementation against."""
    key = (account_id, region_name)
    _reference_regions.add(key)
    try:
        yield
    finally:
        _reference_regions.discard(key)


def _replacements() -> list[tuple[object, str, Callable[..., Any]]]:
    return [
        (Item, "__init__", _item_init),
        (Table, "query", _query),
        (Table, "put_item", _put_item),
        (Table, "delete_item", _delete_item),
        (Table, "get_item", _get_item),
        (DynamoDBBackend, "update_item", _update_item),
        (DynamoDBBackend, "transact_write_items", _transact_write_items),
        (StreamShard, "add", _stream_add),
        (StreamShard, "get", _stream_get),
        (DynamoDBStreamsHandler, "get_records", _get_records),
        (moto_responses, "method_names_from_class", _method_names_from_class),
    ]


def _verified_functions() -> dict[str, Callable[..., Any]]:
    """Everything whose behaviour this module replaces or relies on."""
    return {
        "moto.core.common_models.BaseModel.__new__": BaseModel.__new__,
        "moto.core.base_backend.InstanceTrackerMeta.__new__": InstanceTrackerMeta.__new__,
        "moto.core.model_instances.reset_model_data": reset_model_data,
        "moto.dynamodb.models.dynamo_type.LimitedSizeDict.__setitem__": (
            LimitedSizeDict.__setitem__
        ),
        "moto.dynamodb.models.dynamo_type.DynamoType.__hash__": DynamoType.__hash__,
        "moto.dynamodb.models.dynamo_type.DynamoType.__eq__": DynamoType.__eq__,
        "moto.dynamodb.models.dynamo_type.DynamoType.cast_value": DynamoType.cast_value.fget,  # type: ignore[attr-defined]
        "moto.dynamodb.models.dynamo_type.DynamoType.compare": DynamoType.compare,
        "moto.dynamodb.models.dynamo_type.Item.size": Item.size,
        "moto.dynamodb.models.dynamo_type.Item.__init__": Item.__init__,
        "moto.dynamodb.models.table.Table.query": Table.query,
        "moto.dynamodb.models.table.Table.put_item": Table.put_item,
        "moto.dynamodb.models.table.Table.delete_item": Table.delete_item,
        "moto.dynamodb.models.table.Table.get_item": Table.get_item,
        "moto.dynamodb.models.table.Table._item_comes_before_dct": Table._item_comes_before_dct,
        "moto.dynamodb.models.table.Table.sorted_items": Table.sorted_items,
        "moto.dynamodb.models.table.Table._generate_attr_to_sort_by": (
            Table._generate_attr_to_sort_by
        ),
        "moto.dynamodb.models.table.Table._get_last_evaluated_key": Table._get_last_evaluated_key,
        "moto.dynamodb.models.table.StreamShard.__init__": StreamShard.__init__,
        "moto.dynamodb.models.table.StreamShard.add": StreamShard.add,
        "moto.dynamodb.models.table.StreamShard.get": StreamShard.get,
        "moto.dynamodb.models.DynamoDBBackend.query": DynamoDBBackend.query,
        "moto.dynamodb.models.DynamoDBBackend.update_item": DynamoDBBackend.update_item,
        "moto.dynamodb.models.DynamoDBBackend.delete_item": DynamoDBBackend.delete_item,
        "moto.dynamodb.models.DynamoDBBackend.transact_write_items": (
            DynamoDBBackend.transact_write_items
        ),
        "moto.dynamodbstreams.models.ShardIterator.__init__": ShardIterator.__init__,
        "moto.dynamodbstreams.responses.DynamoDBStreamsHandler.get_records": (
            DynamoDBStreamsHandler.get_records
        ),
        "moto.core.serialize.TimestampSerializer._timestamp_unixtimestamp": (
            TimestampSerializer._timestamp_unixtimestamp
        ),
        "moto.core.utils.method_names_from_class": method_names_from_class,
    }


def _source_digest(function: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def _check_moto() -> None:
    version = importlib.metadata.version("moto")
    problems = [] if version == MOTO_VERSION else [f"moto is {version}, not {MOTO_VERSION}"]
    for name, function in _verified_functions().items():
        try:
            digest = _source_digest(function)
        except (OSError, TypeError) as error:
            problems.append(f"{name}: source unreadable ({error})")
            continue
        if VERIFIED_SOURCES.get(name) != digest:
            problems.append(f"{name} differs from moto {MOTO_VERSION}'s")
    if problems:
        raise UnsupportedMoto(
            "the embedded DynamoDB cannot be made bounded in cost: "
            + "; ".join(problems)
            + ". chalicelib/local/dynamodb.py was verified against moto "
            f"{MOTO_VERSION} only: read those functions again, update the module and "
            "VERIFIED_SOURCES, or install moto "
            f"{MOTO_VERSION} (requirements-dev.txt)"
        )


class _Untracked(list[Any]):
    """Stands in for a model class's ``instances_tracked``: keeps nothing."""

    def append(self, instance: Any, /) -> None:
        return None


_UNTRACKED = _Untracked()


def _stop_tracking_instances() -> None:
    """moto's registry of every model instance (for its dashboard) keeps each item,
    item copy, stream record and shard iterator alive forever: DynamoDB's classes leave
    it. Removed from ``model_data`` too, so that ``reset_model_data`` (on every moto
    reset) does not give them a new list."""
    for service in ("dynamodb", "dynamodbstreams"):
        models = model_data.get(service, {})
        for name, model in list(models.items()):
            model.instances_tracked = _UNTRACKED  # type: ignore[attr-defined]
            del models[name]


def _bounded(account_id: str, region_name: str) -> bool:
    return not _reference_regions or (account_id, region_name) not in _reference_regions


def _original(replacement: Callable[..., Any]) -> Callable[..., Any]:
    wrapped: Callable[..., Any] = replacement.__wrapped__  # type: ignore[attr-defined]
    return wrapped


# -- sorted partitions ----------------------------------------------------------------


class _Partition:
    """One partition's items in an index's order: sort keys and, aligned, item keys."""

    __slots__ = ("keys", "refs")

    def __init__(self) -> None:
        self.keys: list[SortKey] = []
        self.refs: list[Ref] = []

    def add(self, key: SortKey, ref: Ref) -> None:
        position = bisect_left(self.keys, key)
        self.keys.insert(position, key)
        self.refs.insert(position, ref)

    def remove(self, key: SortKey) -> None:
        position = bisect_left(self.keys, key)
        if position < len(self.keys) and self.keys[position] == key:
            del self.keys[position]
            del self.refs[position]

    def __contains__(self, key: SortKey) -> bool:
        position = bisect_left(self.keys, key)
        return position < len(self.keys) and self.keys[position] == key


def _key_of(values: dict[str, DynamoType], names: tuple[str, ...]) -> SortKey | None:
    """``(type, value, type, value, ...)`` of the named attributes, ordered as moto orders
    them (by value; the type first keeps mixed types comparable); None when one is
    missing or of a type no key attribute can have."""
    parts: list[Any] = []
    for name in names:
        value = values.get(name)
        if value is None or value.type not in _KEY_TYPES:
            return None
        parts += (value.type, value.cast_value)
    return tuple(parts)


def _sort_key_of_ref(ref: Ref) -> SortKey:
    hash_key, range_key = ref
    if range_key is None:
        return (hash_key.type, hash_key.cast_value)
    return (hash_key.type, hash_key.cast_value, range_key.type, range_key.cast_value)


class _Gsi:
    """A GSI with one partition and one sort key attribute, as moto orders it: by its
    sort key, then the table's hash and range keys (``_generate_attr_to_sort_by``)."""

    def __init__(self, name: str, hash_attr: str, range_attr: str, table: Table) -> None:
        self.name = name
        self.hash_attr = hash_attr
        self.range_attr = range_attr
        self.sort_attrs = tuple(
            attr
            for attr in (hash_attr, range_attr, table.hash_key_attr, table.range_key_attr)
            if attr is not None
        )
        self.partitions: dict[SortKey, _Partition] = {}
        # Where each item is: its partition key and sort key.
        self.where: dict[Ref, tuple[SortKey, SortKey]] = {}

    def entry(self, item: Item | None) -> tuple[SortKey, SortKey] | None:
        if item is None:
            return None
        partition = _key_of(item.attrs, (self.hash_attr,))
        key = _key_of(item.attrs, self.sort_attrs)
        return None if partition is None or key is None else (partition, key)

    def update(self, ref: Ref, item: Item | None) -> None:
        old = self.where.get(ref)
        new = self.entry(item)
        if old == new:
            return
        if old is not None:
            partition = self.partitions[old[0]]
            partition.remove(old[1])
            if not partition.keys:
                del self.partitions[old[0]]
            del self.where[ref]
        if new is not None:
            self.partitions.setdefault(new[0], _Partition()).add(new[1], ref)
            self.where[ref] = new

    def build(self, items: list[tuple[Ref, Item]]) -> None:
        grouped: dict[SortKey, list[tuple[SortKey, Ref]]] = {}
        for ref, item in items:
            entry = self.entry(item)
            if entry is not None:
                grouped.setdefault(entry[0], []).append((entry[1], ref))
                self.where[ref] = entry
        for partition_key, entries in grouped.items():
            entries.sort(key=itemgetter(0))
            partition = self.partitions[partition_key] = _Partition()
            partition.keys = [key for key, _ in entries]
            partition.refs = [ref for _, ref in entries]


def _gsi_shapes(table: Table) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return tuple(
        (index.name, tuple((key["AttributeName"], key["KeyType"]) for key in index.schema))
        for index in table.global_indexes
    )


class _TableIndex:
    """The sorted partitions of one table; valid while the table keeps the same ``items``
    dictionary and GSIs (a restore replaces the one, ``UpdateTable`` the other)."""

    def __init__(self, table: Table) -> None:
        self.items = table.items
        self.shapes = _gsi_shapes(table)
        self.gsis: dict[str, _Gsi] = {}
        for name, schema in self.shapes:
            hashes = [attr for attr, kind in schema if kind == "HASH"]
            ranges = [attr for attr, kind in schema if kind == "RANGE"]
            if len(hashes) == 1 and len(ranges) == 1:
                self.gsis[name] = _Gsi(name, hashes[0], ranges[0], table)
        # Table partitions, by hash key: built when first queried.
        self.base: dict[DynamoType, _Partition] = {}
        if self.gsis:
            stored = list(_stored_items(table))
            for gsi in self.gsis.values():
                gsi.build(stored)

    def valid_for(self, table: Table) -> bool:
        return self.items is table.items and self.shapes == _gsi_shapes(table)

    def base_partition(self, table: Table, hash_key: DynamoType) -> _Partition:
        partition = self.base.get(hash_key)
        if partition is not None:
            return partition
        partition = _Partition()
        entries = sorted(
            ((_sort_key_of_ref(ref), ref) for ref, _ in _partition_items(table, hash_key)),
            key=itemgetter(0),
        )
        partition.keys = [key for key, _ in entries]
        partition.refs = [ref for _, ref in entries]
        if partition.keys:
            # An empty one is not kept: querying absent partitions must leave nothing.
            self.base[hash_key] = partition
        return partition

    def update(self, table: Table, ref: Ref) -> None:
        item = _stored(table, ref)
        for gsi in self.gsis.values():
            gsi.update(ref, item)
        partition = self.base.get(ref[0])
        if partition is not None:
            key = _sort_key_of_ref(ref)
            if item is None:
                partition.remove(key)
                if not partition.keys:
                    del self.base[ref[0]]
            elif key not in partition:
                partition.add(key, ref)


_indexes: weakref.WeakKeyDictionary[Table, _TableIndex] = weakref.WeakKeyDictionary()


def _index(table: Table) -> _TableIndex:
    index = _indexes.get(table)
    if index is None or not index.valid_for(table):
        index = _indexes[table] = _TableIndex(table)
    return index


def _items(table: Table) -> dict[DynamoType, Any]:
    """The table's items: by hash key, an item, or (with a sort key) items by range key."""
    items: dict[DynamoType, Any] = table.items
    return items


def _stored(table: Table, ref: Ref) -> Item | None:
    hash_key, range_key = ref
    stored: Any = _items(table).get(hash_key)
    if table.range_key_attr is None or stored is None:
        return cast("Item | None", stored)
    return None if range_key is None else cast("Item | None", stored.get(range_key))


def _partition_items(table: Table, hash_key: DynamoType) -> list[tuple[Ref, Item]]:
    stored = _items(table).get(hash_key)
    if stored is None:
        return []
    if table.range_key_attr is None:
        return [((stored.hash_key, None), stored)]
    return [((item.hash_key, item.range_key), item) for item in stored.values()]


def _stored_items(table: Table) -> Iterator[tuple[Ref, Item]]:
    if table.range_key_attr is None:
        for item in _items(table).values():
            yield (item.hash_key, None), item
        return
    for partition in _items(table).values():
        for item in partition.values():
            yield (item.hash_key, item.range_key), item


def _reindex(table: Table, ref: Ref) -> None:
    """Bring the sorted partitions up to date with the item stored under ``ref``."""
    index = _indexes.get(table)
    if index is None:
        return
    if not index.valid_for(table):
        del _indexes[table]  # rebuilt by the next query
        return
    if table.range_key_attr is not None and ref[1] is None:
        return  # not a key of this table: nothing was written
    index.update(table, ref)


def _ref_of(table: Table, values: dict[str, Any]) -> Ref | None:
    """The item key named in a request's ``Item`` or ``Key`` (wire format), if any."""
    try:
        hash_key = DynamoType(values[table.hash_key_attr])
        range_attr = table.range_key_attr
        range_key = None if range_attr is None else DynamoType(values[range_attr])
    except (KeyError, TypeError, IndexError, AttributeError):
        return None
    return hash_key, range_key


# -- writes ---------------------------------------------------------------------------


def _item_init(
    self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
) -> None:
    """moto's, with the item's size checked once: moto's LimitedSizeDict adds up the
    whole item again for every attribute it sets, O(attributes²), which was most of the
    cost of a write and of loading a snapshot. The same limit, on the same sum."""
    self.hash_key = hash_key
    self.range_key = range_key
    converted = {key: DynamoType(value) for key, value in attrs.items()}
    size = sum(bytesize(key) + value.size() for key, value in converted.items())
    if size > _MAX_ITEM_SIZE:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict(converted)  # dict.update: no per-attribute check


def _put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    try:
        item: Item = _original(_put_item)(self, item_attrs, *args, **kwargs)
    finally:
        if self in _indexes:
            ref = _ref_of(self, item_attrs)
            if ref is not None:
                _reindex(self, ref)
    return item


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    """moto's, without ``self.items[hash_key]`` creating the partitions it looks in."""
    if not _bounded(self.account_id, self.region_name):
        result: Item | None = _original(_delete_item)(self, hash_key, range_key)
        return result
    items = _items(self)
    if range_key is not None:
        partition = items.get(hash_key)
        if partition is None or range_key not in partition:
            return None
        item: Item = partition.pop(range_key)
        if not partition:
            del items[hash_key]
    else:
        if hash_key not in items:
            return None
        item = items.pop(hash_key)
    if self.stream_shard is not None:
        self.stream_shard.add(item, None)
    _reindex(self, (hash_key, range_key))
    return item


def _get_item(
    self: Table,
    hash_key: DynamoType,
    range_key: DynamoType | None = None,
    projection_expression: list[list[str]] | None = None,
) -> Item | None:
    """moto's, without ``self.items[hash_key]`` creating the partitions it looks in."""
    if not _bounded(self.account_id, self.region_name):
        found: Item | None = _original(_get_item)(self, hash_key, range_key, projection_expression)
        return found
    if self.has_range_key and range_key is None:
        raise MockValidationException(
            "Table has a range key, but no range key was passed into get_item"
        )
    result: Item | None = _stored(self, (hash_key, range_key))
    if projection_expression and result:
        result = result.project(projection_expression)
    return result


def _update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    """moto's; it changes the stored item in place, so the indexes follow afterwards."""
    try:
        item: Item = _original(_update_item)(self, table_name, key, *args, **kwargs)
    finally:
        try:
            table: Table | None = self.get_table(table_name)
        except ResourceNotFoundException:
            table = None
        if table is not None and table in _indexes:
            ref = _ref_of(table, key)
            if ref is not None:
                _reindex(table, ref)
    return item


class _Undo:
    """What a transaction changed, to put back if it fails: the items it touched and
    where each stream shard ended before it."""

    def __init__(self, backend: DynamoDBBackend) -> None:
        self._backend = backend
        self._items: list[tuple[Table, Ref, Item | None]] = []
        self._shards: dict[int, tuple[StreamShard, int]] = {}

    def remember(self, table: Table, key: dict[str, Any], current: Item | None) -> None:
        hash_key, range_key = self._backend.get_keys_value(table, key)
        # A copy: Update changes the stored item in place. One item, not a table.
        self._items.append((table, (hash_key, range_key), copy.deepcopy(current)))
        shard = table.stream_shard
        if shard is not None and id(shard) not in self._shards:
            self._shards[id(shard)] = (shard, shard.starting_sequence_number + len(shard.items))

    def rollback(self) -> None:
        for table, ref, before in reversed(self._items):
            hash_key, range_key = ref
            items = _items(table)
            if table.range_key_attr is None:
                if before is None:
                    items.pop(hash_key, None)
                else:
                    items[hash_key] = before
            elif before is None:
                partition = items.get(hash_key)
                if partition is not None:
                    partition.pop(range_key, None)
                    if not partition:
                        del items[hash_key]
            else:
                items.setdefault(hash_key, {})[range_key] = before
            _reindex(table, ref)
        for shard, end in self._shards.values():
            del shard.items[max(end - shard.starting_sequence_number, 0) :]


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's, rolling back the touched items instead of restoring table copies."""
    if not _bounded(self.account_id, self.region_name):
        _original(_transact_write_items)(self, transact_items)
        return
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _Undo(self)
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    # Unlike moto, every way out but success rolls back: moto keeps what operations before
    # a malformed one (two actions in one item) wrote.
    try:
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get(
                    "ReturnValuesOnConditionCheckFailure"
                )
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                check_unicity(table_name, key)
                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition_op = get_filter_expression(
                        condition_expression,
                        expression_attribute_names,
                        expression_attribute_values,
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type != "ConditionCheck":
                    undo.remember(self.get_table(table_name), key, current)
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as error:
                errors.append(("ConditionalCheckFailed", str(error.message), original_item))  # type: ignore[arg-type]
            except Exception as error:
                errors.append((type(error).__name__, str(error), original_item))  # type: ignore[arg-type]
    except BaseException:
        undo.rollback()
        raise
    if any(code is not None for code, _, _ in errors):
        undo.rollback()
        raise TransactionCanceledException(errors)


# -- queries --------------------------------------------------------------------------


@dataclass
class _Page:
    """Where a query's page is read: positions in one sorted partition."""

    partition: _Partition
    start: int
    step: int
    # Positions whose sort key the key condition can match: [low, high).
    low: int
    high: int
    range_attr: str | None
    comparison: str | None
    values: list[DynamoType]
    # The GSI read, whose sort keys are checked against the items as they are read.
    gsi: _Gsi | None


def _query(
    self: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    """moto's query, reading one page from a sorted partition instead of sorting all
    items; shapes the sorted partitions do not cover are left to moto's own code."""
    page = None
    if _bounded(self.account_id, self.region_name) and not filter_kwargs:
        page = _plan(
            self,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            index_name,
            consistent_read,
            hash_key_conditions,
            range_key_conditions,
        )
    if page is None:
        answer: tuple[list[Item], int, dict[str, Any] | None] = _original(_query)(
            self,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions,
            range_key_conditions,
            **filter_kwargs,
        )
        return answer
    found, last_evaluated_key = _read(self, page, limit, index_name)
    # From here on, moto's own code (Table.query after its loop).
    results = copy.deepcopy(found)
    if index_name:
        index = self.get_index(index_name)
        results = [index.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, len(found), last_evaluated_key


def _plan(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    forward: bool,
    index_name: str | None,
    consistent_read: bool,
    hash_key_conditions: list[tuple[str, DynamoType]] | None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None,
) -> _Page | None:
    """Where to read the page, or None for a query the sorted partitions do not serve
    (moto then answers, or raises its error)."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        return None
    if range_key_conditions and len(range_key_conditions) > 1:
        return None
    if index_name:
        if consistent_read:
            return None
        gsi = _index(table).gsis.get(index_name) if _has_gsi(table, index_name) else None
        if gsi is None or not hash_key_conditions or len(hash_key_conditions) != 1:
            return None
        attr, value = hash_key_conditions[0]
        partition_key = _key_of({attr: value}, (attr,)) if attr == gsi.hash_attr else None
        if partition_key is None:
            return None
        # An absent partition is read as an empty one, and not kept.
        partition = gsi.partitions.get(partition_key) or _Partition()
        range_attr: str | None = gsi.range_attr
        sort_attrs = gsi.sort_attrs
    else:
        if hash_key is None or (range_comparison and table.range_key_attr is None):
            return None
        gsi = None
        partition = _index(table).base_partition(table, hash_key)
        range_attr = table.range_key_attr
        sort_attrs = tuple(a for a in (table.hash_key_attr, table.range_key_attr) if a)
    if range_key_conditions and range_key_conditions[-1][0] != range_attr:
        return None
    bounds = _bounds(partition, range_comparison, range_objs)
    if bounds is None:
        return None
    low, high = bounds
    if exclusive_start_key is None:
        after, before = 0, len(partition.keys) - 1
    else:
        try:
            start = {name: DynamoType(exclusive_start_key[name]) for name in sort_attrs}
        except (KeyError, TypeError, IndexError, AttributeError):
            return None
        start_key = _key_of(start, sort_attrs)
        if start_key is None:
            return None
        # moto skips the items that come before the start key, or are it.
        after = bisect_right(partition.keys, start_key)
        before = bisect_left(partition.keys, start_key) - 1
    if forward:
        first, step = max(after, low), 1
    else:
        first, step = min(before, high - 1), -1
    return _Page(
        partition,
        first,
        step,
        low,
        high,
        range_attr if range_comparison else None,
        range_comparison,
        range_objs,
        gsi,
    )


def _has_gsi(table: Table, index_name: str) -> bool:
    return any(index.name == index_name for index in table.global_indexes)


def _bounds(
    partition: _Partition, comparison: str | None, objects: list[DynamoType]
) -> tuple[int, int] | None:
    """The positions whose sort key can satisfy the key condition, or None for a
    condition this does not know (moto then answers)."""
    keys = partition.keys
    size = len(keys)
    if comparison is None:
        return 0, size
    values = [_key_of({"v": value}, ("v",)) for value in objects]
    if any(value is None for value in values):
        return None
    bound = [(value[0], value[1]) for value in values if value is not None]
    expected = 2 if comparison == "BETWEEN" else 1
    if len(bound) != expected:
        return None
    if comparison == "=":
        return (
            bisect_left(keys, bound[0], key=_RANGE),
            bisect_right(keys, bound[0], key=_RANGE),
        )
    if comparison == "<":
        return 0, bisect_left(keys, bound[0], key=_RANGE)
    if comparison == "<=":
        return 0, bisect_right(keys, bound[0], key=_RANGE)
    if comparison == ">":
        return bisect_right(keys, bound[0], key=_RANGE), size
    if comparison == ">=":
        return bisect_left(keys, bound[0], key=_RANGE), size
    if comparison == "BETWEEN":
        low = bisect_left(keys, bound[0], key=_RANGE)
        return low, max(low, bisect_right(keys, bound[1], key=_RANGE))
    if comparison == "BEGINS_WITH":
        kind, prefix = bound[0]
        if not isinstance(prefix, str | bytes):
            return None
        low = bisect_left(keys, bound[0], key=_RANGE)
        successor = _successor(prefix)
        if successor is None:
            high = bisect_right(keys, kind, key=_RANGE_TYPE)
        else:
            high = bisect_left(keys, (kind, successor), key=_RANGE)
        return low, max(low, high)
    return None


def _successor(prefix: str | bytes) -> str | bytes | None:
    """The least value above every value that starts with ``prefix``; None if none is."""
    if isinstance(prefix, str):
        text = prefix.rstrip(chr(0x10FFFF))
        return text[:-1] + chr(ord(text[-1]) + 1) if text else None
    data = prefix.rstrip(b"\xff")
    return data[:-1] + bytes([data[-1] + 1]) if data else None


def _read(
    table: Table, page: _Page, limit: int | None, index_name: str | None
) -> tuple[list[Item], dict[str, Any] | None]:
    """moto's loop over the sorted candidates, from ``page.start`` on.

    moto visits every item of the partition after the start key, appending those the
    key condition matches; before appending it stops, with a LastEvaluatedKey, when the
    page has ``limit`` items or the next item would take it over 1 MB. Positions before
    ``low`` (in reading order) cannot matter: nothing is appended yet, and no item
    (at most 405,000 bytes) fills 1 MB alone. Past ``high`` nothing matches, so only
    the 1 MB rule can still end the page, which no item can trigger while the page
    holds at most 1 MB minus the largest item: reading stops there.
    """
    partition = page.partition
    found: list[Item] = []
    size = 0
    last_evaluated_key = None
    position = page.start
    while 0 <= position < len(partition.refs):
        item = _stored(table, partition.refs[position])
        if item is None or (
            page.gsi is not None
            and _key_of(item.attrs, page.gsi.sort_attrs) != partition.keys[position]
        ):
            # Never an answer from a stale list: a write went around the hooks.
            del _indexes[table]
            raise RuntimeError(
                f"the sorted partitions of table {table.name} no longer match its items "
                "(a write went around chalicelib.local.dynamodb); they are rebuilt on the "
                "next query"
            )
        item_size = item.size()
        if len(found) == limit or size + item_size > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(found[-1], index_name)
            break
        if page.low <= position < page.high:
            if page.range_attr is None or item.attrs[page.range_attr].compare(
                page.comparison, page.values
            ):
                found.append(item)
                size += item_size
        elif size + _MAX_ITEM_SIZE <= RESULT_SIZE_LIMIT:
            break
        position += page.step
    return found, last_evaluated_key


# -- the stream -----------------------------------------------------------------------


class _PackedRecord:
    """A stream record as moto's shard holds it, pickled: a fifth of the memory."""

    __slots__ = ("_data", "created")

    def __init__(self, record: dict[str, Any], created: float) -> None:
        self._data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self.created = created

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = pickle.loads(self._data)
        return record


def _stream_add(self: StreamShard, old: Item | None, new: Item | None) -> None:
    """moto's; then the record is packed and the shard trimmed to its retention."""
    _original(_stream_add)(self, old, new)
    items: list[Any] = self.items
    if not _bounded(self.table.account_id, self.table.region_name) or not items:
        return
    now = clock()
    if not isinstance(items[-1], _PackedRecord):
        items[-1] = _PackedRecord(items[-1].to_json(), now)
    retention = STREAM_RETENTION
    expired = 0
    cutoff = now - retention.max_age_seconds
    while expired < len(items) and getattr(items[expired], "created", now) < cutoff:
        expired += 1
    excess = len(items) - retention.max_records
    if excess > 0:
        # In chunks, so that the list is not shifted on every write.
        expired = max(expired, excess + retention.max_records // 8)
    if expired:
        del items[:expired]
        self.starting_sequence_number += expired


def _stream_get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
    """moto's, continuing from the oldest record kept when ``start`` was trimmed."""
    if not _bounded(self.table.account_id, self.table.region_name):
        records: list[dict[str, Any]] = _original(_stream_get)(self, start, quantity)
        return records
    offset = start - self.starting_sequence_number
    if offset < 0:
        logger.warning(
            "stream of table %s: records %d..%d were trimmed before they were read "
            "(the reader lagged by more than the stream's retention); reading on from %d",
            self.table.name,
            start,
            self.starting_sequence_number - 1,
            self.starting_sequence_number,
        )
        offset = 0
    return [record.to_json() for record in self.items[offset : offset + quantity]]


def _get_records(self: DynamoDBStreamsHandler) -> Any:
    """moto's ``GetRecords``, its answer written as JSON directly (see (e))."""
    if not _bounded(self.current_account, self.region):
        return _original(_get_records)(self)
    arn = self._get_param("ShardIterator")
    limit = self._get_param("Limit")
    if limit is None:
        limit = 1000
    result = self.backend.get_records(arn, limit)
    return json.dumps(result, default=_wire_value)


def _wire_value(value: object) -> int | float | str:
    """A record's value that JSON has no type for, as the JSON protocol writes it: a
    binary attribute base64-encoded, a timestamp in epoch seconds."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return TimestampSerializer._timestamp_unixtimestamp(value)
    raise TypeError(f"{type(value).__name__} in a stream record")


_method_names: dict[object, list[str]] = {}


def _method_names_from_class(clazz: object) -> list[str]:
    """moto's, remembered per class (see (f))."""
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = _original(_method_names_from_class)(clazz)
    return names
