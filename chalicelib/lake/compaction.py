"""Compaction: fold each partition's live files and tombstones into a few large files.

The stream handler keeps one file per item (``chalicelib.lake.layers``): exact, cheap to
write, and ruinous to read once there are millions. A run folds, for every partition
that has live files or tombstones, the partition's newest compacted rows, its
tombstones and its live files into a new generation of compacted files, then removes
what it folded. In this order, each step safe to stop after:

1. list the table's live files and tombstones (what changed since the last run: a
   folded file is removed, so the listing is the work, nothing else is scanned);
2. per partition, read the newest compacted generation and each live file (with the
   version it had when read);
3. write the new generation, stamped on every row, under a new name (a reader sees the
   old generation or the new one, never half of one: only a partition's newest counts);
4. delete the older generations;
5. delete each live file and tombstone that is still the version read (a conditional
   delete); one written again since is newer than what was folded and stays, and a live
   file wins over compacted rows, so nothing the stream wrote meanwhile is lost.

A run stopped anywhere leaves every row readable exactly once: the merged read takes
only the newest generation, and a live file or tombstone not yet deleted says again
what the new generation says already. The next run finishes the work. Two runs must not
fold one partition at once (each would keep only what it read): the scheduled function
runs one at a time (reserved concurrency 1), and locally a lock file does it.

pyarrow is imported by the first run, not with this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import keys
from chalicelib.lake.columns import TableSpec, epoch_millis, lake_tables
from chalicelib.lake.layers import GENERATION, Layer, LayerKind, compacted_spec
from chalicelib.lake.objects import DirectoryObjectStore, ObjectStore, StoredObject
from chalicelib.schema.model import SchemaModel

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

# Rows per compacted file: Athena reads large files best (AWS suggests ~128 MB); a day of
# a table beyond this many rows is split into several files of one generation.
ROWS_PER_FILE = 1_000_000
# Live files are read concurrently: S3 GETs are I/O bound.
DEFAULT_READERS = 32


@dataclass
class CompactionReport:
    partitions: int = 0
    live_folded: int = 0
    tombstones_folded: int = 0
    # Live files and tombstones written again or deleted by the stream after the run read
    # them: not the run's to delete.
    kept: int = 0
    rows: int = 0
    files_written: int = 0
    files_deleted: int = 0
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)  # partitions folded, by table


def compact_lake(
    model: SchemaModel,
    store: ObjectStore,
    *,
    clock: Callable[[], datetime] = keys.utc_now,
    readers: int = DEFAULT_READERS,
) -> CompactionReport:
    """Fold every changed partition of every lake table of ``model``."""
    started = time.perf_counter()
    report = CompactionReport()
    for table in lake_tables(model):
        changed = _changed_partitions(store, table)
        for partition in sorted(changed):
            live, tombstones = changed[partition]
            _fold(store, table, partition, live, tombstones, clock, readers, report)
        if changed:
            report.tables[table.name] = len(changed)
    report.seconds = time.perf_counter() - started
    logger.info(
        "compaction folded %d live file(s) and %d tombstone(s) of %d partition(s) into %d "
        "file(s) of %d row(s); %d written again meanwhile, kept",
        report.live_folded,
        report.tombstones_folded,
        report.partitions,
        report.files_written,
        report.rows,
        report.kept,
        extra={
            "partitions": report.partitions,
            "liveFolded": report.live_folded,
            "tombstonesFolded": report.tombstones_folded,
            "kept": report.kept,
            "rows": report.rows,
            "filesWritten": report.files_written,
            "seconds": round(report.seconds, 3),
        },
    )
    return report


_Changes = dict[str, tuple[list[StoredObject], list[StoredObject]]]


def _changed_partitions(store: ObjectStore, table: TableSpec) -> _Changes:
    """Partition -> (its live files, its tombstones)."""
    changed: _Changes = {}
    for kind, index in ((LayerKind.LIVE, 0), (LayerKind.DELETED, 1)):
        for found in store.list(Layer(table, kind).prefix):
            located = keys.lake_partition(found.key)
            if located is not None and located[0] == table.name:
                changed.setdefault(located[1], ([], []))[index].append(found)
    return changed


def _fold(
    store: ObjectStore,
    table: TableSpec,
    partition: str,
    live: Sequence[StoredObject],
    tombstones: Sequence[StoredObject],
    clock: Callable[[], datetime],
    readers: int,
    report: CompactionReport,
) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    compacted_prefix = f"{Layer(table, LayerKind.COMPACTED).prefix}{partition}/"
    generations: dict[int, list[str]] = {}
    for found in store.list(compacted_prefix):
        generation = keys.compacted_generation(found.key)
        if generation is not None:
            generations.setdefault(generation, []).append(found.key)
    newest = max(generations, default=None)

    spec = compacted_spec(table)
    parts: list[pa.Table] = []
    if newest is not None:
        parts += [_read(body, spec) for body in _bodies(store, sorted(generations[newest]))]
    replaced = {_stem(found.key) for found in live} | {_stem(found.key) for found in tombstones}
    if parts and replaced:
        kept = pa.concat_tables(parts)
        mask = pc.invert(pc.is_in(kept[table.key], pa.array(sorted(replaced), pa.string())))
        parts = [kept.filter(mask)]
    read_live = _read_all(store, [found.key for found in live], spec, readers)
    parts += [rows for rows, _ in read_live.values()]
    rows = pa.concat_tables(parts) if parts else None

    generation = max(epoch_millis(clock()), (newest or 0) + 1)
    written = 0
    if rows is not None and rows.num_rows:
        stamped = rows.set_column(
            rows.schema.get_field_index(GENERATION),
            GENERATION,
            pa.array([generation] * rows.num_rows, pa.int64()),
        )
        for part, start in enumerate(range(0, stamped.num_rows, ROWS_PER_FILE)):
            key = keys.compacted_object_key(table.name, partition, generation, part)
            store.put(key, _encode(stamped.slice(start, ROWS_PER_FILE)))
            written += 1
    deleted = 0
    for old in sorted(generations):
        for key in generations[old]:
            store.delete(key)
            deleted += 1
    folded = [StoredObject(key, etag) for key, (_, etag) in read_live.items()]
    folded += tombstones
    gone = len(store.delete_if_unchanged(folded))
    deleted += gone
    kept_back = len(folded) - gone
    report.partitions += 1
    report.live_folded += len(read_live)
    report.tombstones_folded += len(tombstones)
    report.kept += kept_back
    report.rows += 0 if rows is None else rows.num_rows
    report.files_written += written
    report.files_deleted += deleted


def _stem(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".parquet")


def _bodies(store: ObjectStore, object_keys: Iterable[str]) -> Iterable[bytes]:
    for key in object_keys:
        found = store.get(key)
        if found is None:
            raise RuntimeError(f"compacted file {key} vanished while compaction read it")
        yield found[0]


def _read_all(
    store: ObjectStore, object_keys: Sequence[str], spec: TableSpec, readers: int
) -> dict[str, tuple[pa.Table, str]]:
    """The rows of the live files still there, with the version read. GETs run
    concurrently when there are many (S3 answers each in tens of milliseconds); decoding
    runs here: pyarrow holds the interpreter's lock for most of a one-row file, and
    threads decoding side by side were measured slower than one."""
    if len(object_keys) < 2 or readers < 2:
        found = {key: store.get(key) for key in object_keys}
    else:
        with ThreadPoolExecutor(max_workers=min(readers, len(object_keys))) as pool:
            found = dict(zip(object_keys, pool.map(store.get, object_keys), strict=True))
    return {
        key: (_read(value[0], spec), value[1]) for key, value in found.items() if value is not None
    }


def _read(body: bytes, spec: TableSpec) -> pa.Table:
    """A file's rows in ``spec``'s columns, matched by name: a column the file lacks
    (written before the field existed) is null, one the spec lacks is dropped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from chalicelib.lake.parquet import arrow_schema

    schema = arrow_schema(spec)
    # ParquetFile reads a one-row file in a third of read_table's time (no dataset).
    read = pq.ParquetFile(pa.BufferReader(body)).read()
    if read.schema.equals(schema):
        return read
    # A live file as the stream handler writes it today: only the generation is missing.
    if read.schema.equals(schema.remove(schema.get_field_index(GENERATION))):
        return read.append_column(schema.field(GENERATION), pa.nulls(read.num_rows, pa.int64()))
    columns = []
    for target in schema:
        index = read.schema.get_field_index(target.name)
        if index < 0:
            columns.append(pa.nulls(read.num_rows, target.type))
        else:
            columns.append(read.column(index).cast(target.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _encode(rows: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(rows, sink, compression="snappy", store_schema=False)
    return sink.getvalue()


def report_fields(report: CompactionReport) -> Mapping[str, Any]:
    """What the handler answers (and the command prints)."""
    return {
        "partitions": report.partitions,
        "liveFolded": report.live_folded,
        "tombstonesFolded": report.tombstones_folded,
        "kept": report.kept,
        "rows": report.rows,
        "filesWritten": report.files_written,
        "filesDeleted": report.files_deleted,
        "seconds": round(report.seconds, 3),
        "tables": dict(report.tables),
    }


@contextlib.contextmanager
def exclusive_compaction(lake_dir: Path) -> Iterator[None]:
    """One compaction at a time over a local lake, across processes (the schedule of
    ``make run`` and ``make compact``): ``<lake_dir>/.compaction.lock``."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    with (lake_dir / ".compaction.lock").open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> int:
    """``make compact``: compact the local lake (``.local/lake``) now, with ``make run``
    serving or not. A deployed stage's is ``python -m deploy compact --stage <stage>``."""
    from chalicelib.schema import load_schema
    from chalicelib.settings import load_settings

    settings = load_settings()
    if not settings.is_local:
        print("on AWS: python -m deploy compact --stage <stage>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = load_schema(settings.schema_file, check_sql=False)
    with exclusive_compaction(settings.local_lake_dir):
        report = compact_lake(model, DirectoryObjectStore(settings.local_lake_dir), readers=1)
    print(json.dumps(report_fields(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
