"""The lake at 100,000 entities: cold queries before and after compaction, and compaction.

A lake of the example schema (``schema.graphql``) is written straight into a temporary
directory in the lake's own format: N users (``tables/user/``) and N join rows of
``user_favorite_products`` (one per user, to 100 products), one Parquet file each, as
the stream handler writes them (``encode_row``, keyed by ``lake_object_key``), dated
over 10 days, so each table has 10 partitions. Set-up, not what is measured: it runs
on a process pool and its time is printed apart.

Measured, each through the local engine from a cold start (a new ``LocalAthena`` per
query, so nothing is loaded: DuckDB is connected and every file of every layer the
query reads is loaded by the query itself; the files are in the OS page cache, as
they are right after being written), the task SQL read through the lake's three
layers (``read_through(sql, merged_tables(model))``):

    count(*) over user; a GROUP BY of user over its partitions; a join of user and
    user_favorite_products on the user's id.

First over the per-item files (nothing compacted: one run each), then
``compact_lake`` over the whole lake (timed), then again over the compacted files
(the median of ``--runs``). The answers must be the same before and after, or the
benchmark fails.

Targets: after compaction each cold query at most 0.5 s and at least 50x faster than
over the per-item files in the same run; compaction of the lake at most 60 s; after
compaction at most 2 objects per table per touched partition (compacted files and
tombstones), plus the live files left.

    python -m bench.lake_scale [--users 100000] [--runs 3] [--readers 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from multiprocessing import Pool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._local import ROOT

if TYPE_CHECKING:
    from chalicelib.lake.columns import TableSpec

SCHEMA = ROOT / "schema.graphql"
USERS = 100_000
PRODUCTS = 100
DAYS = 10
JOIN_TABLE = "user_favorite_products"
TARGET_QUERY_S = 0.5
TARGET_SPEEDUP = 50.0
TARGET_ITEMS = 100_000
TARGET_COMPACTION_S = 60.0
TARGET_OBJECTS_PER_PARTITION = 2
QUERIES = (
    ("count(*)", 'SELECT count(*) FROM "user"'),
    (
        "GROUP BY year, month, day",
        'SELECT year, month, day, count(*) FROM "user" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3',
    ),
    (
        "join user x favorites",
        f'SELECT count(*) FROM "user" u JOIN {JOIN_TABLE} f ON f.userId = u.id',
    ),
)
# Items written per task of the set-up pool.
CHUNK = 2_000


# -- set-up: the lake, written directly --------------------------------------------


def _user_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


def _product_id(number: int) -> str:
    return f"10000000-0000-4000-8000-{number:012d}"


def _created_at(number: int) -> str:
    """Spread over DAYS days (partitions), a different second within the day each."""
    seconds = number // DAYS % 86_400
    return (
        f"2026-01-{1 + number % DAYS:02d}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
        f"{seconds % 60:02d}.{number % 1000:03d}Z"
    )


@cache
def _specs() -> tuple[TableSpec, TableSpec]:
    """The lake tables of users and of their favourite products, once per process."""
    from chalicelib.lake.columns import lake_tables
    from chalicelib.schema import load_schema

    tables = {t.name: t for t in lake_tables(load_schema(SCHEMA, check_sql=False))}
    return tables["user"], tables[JOIN_TABLE]


def _write_chunk(task: tuple[str, int, int]) -> int:
    """Write users ``start..stop`` and their join rows; the number of files written."""
    from chalicelib import keys
    from chalicelib.lake.parquet import encode_row

    lake_dir, start, stop = task
    user_spec, join_spec = _specs()
    root = Path(lake_dir)
    written = 0
    for number in range(start, stop):
        user_id, created = _user_id(number), _created_at(number)
        user = {
            "id": user_id,
            "name": f"User {number}",
            "email": f"u{number}@example.com",
            "age": 18 + number % 60,
            "vip": number % 7 == 0,
            "createdAt": created,
            "updatedAt": created,
        }
        product_id = _product_id(number % PRODUCTS)
        relation = keys.relation_id(JOIN_TABLE, [("user", user_id), ("product", product_id)])
        join_key = keys.lake_object_key(JOIN_TABLE, created, relation)
        join_row = {
            keys.JOIN_ROW_RELATION_ID: relation,
            "userId": user_id,
            "productId": product_id,
            keys.LAKE_S3_KEY: join_key,
            keys.CREATED_AT: created,
        }
        for key, body in (
            (keys.lake_object_key("user", created, user_id), encode_row(user_spec, user)),
            (join_key, encode_row(join_spec, join_row)),
        ):
            root.joinpath(*key.split("/")).write_bytes(body)
            written += 1
    return written


def _write_lake(lake_dir: Path, users: int) -> tuple[float, int]:
    """The lake of ``users`` users and join rows; seconds taken and files written."""
    from chalicelib import keys

    started = time.perf_counter()
    for table in ("user", JOIN_TABLE):
        for day in range(min(DAYS, users)):
            key = keys.lake_object_key(table, _created_at(day), "x")
            lake_dir.joinpath(*key.split("/")[:-1]).mkdir(parents=True, exist_ok=True)
    tasks = [(str(lake_dir), start, min(start + CHUNK, users)) for start in range(0, users, CHUNK)]
    with Pool(os.cpu_count() or 1) as pool:
        files = sum(pool.imap_unordered(_write_chunk, tasks))
    return time.perf_counter() - started, files


# -- measurements ------------------------------------------------------------------


@dataclass
class Timing:
    seconds: float
    read_s: float  # the engine bringing its tables up to date: loading the files
    execute_s: float  # DuckDB running the query
    rows: tuple[tuple[str | None, ...], ...]


def _engine(lake_dir: Path, model: Any) -> Any:
    from chalicelib.lake.layers import lake_layers
    from chalicelib.local.athena import LocalAthena

    return LocalAthena(
        lake_dir,
        lake_layers(model),
        workgroup="primary",
        region="us-east-1",
        account_id="123456789012",
        publish=lambda event: None,
    )


def _cold_query(lake_dir: Path, model: Any, sql: str) -> Timing:
    """``sql`` on a new engine: wall clock from the start to the finished execution."""
    from chalicelib.tasks.engine import QueryState

    engine = _engine(lake_dir, model)
    try:
        started = time.perf_counter()
        execution_id = engine.start(sql, "cold")
        engine.wait_until_idle(timeout=3600)
        execution = engine.execution(execution_id)
        seconds = time.perf_counter() - started
        if execution.state is not QueryState.SUCCEEDED:
            raise RuntimeError(f"query {execution.state.value}: {execution.reason}\n{sql}")
        read_s, execute_s = engine.timings(execution_id)
        rows = engine.results(execution_id).rows
    finally:
        engine.close()
    return Timing(seconds, read_s, execute_s, rows)


def _read_through(model: Any) -> list[str]:
    """Each query as the engine gets it: reading every lake table through its layers."""
    from chalicelib.lake.layers import merged_tables
    from chalicelib.sql.analysis import read_through

    through = merged_tables(model)
    return [read_through(sql, through) for _, sql in QUERIES]


def _warm_up(model: Any, sql: str) -> None:
    """One query on an empty lake, so duckdb and sqlglot are imported before timing."""
    with tempfile.TemporaryDirectory() as empty:
        _cold_query(Path(empty) / "lake", model, sql)


def _measure_all(lake_dir: Path, model: Any, queries: Sequence[str], runs: int) -> list[Timing]:
    """Each query's median cold run (with the rows and split of the middle one)."""
    measured = []
    for sql in queries:
        timings = [_cold_query(lake_dir, model, sql) for _ in range(runs)]
        middle = sorted(timings, key=lambda timing: timing.seconds)[len(timings) // 2]
        middle.seconds = statistics.median(timing.seconds for timing in timings)
        measured.append(middle)
    return measured


def _objects(lake_dir: Path, model: Any) -> dict[str, dict[str, Counter[str]]]:
    """Table -> layer -> partition -> objects there, listed from the directory."""
    from chalicelib import keys
    from chalicelib.lake.columns import lake_tables
    from chalicelib.lake.layers import LayerKind, table_layers
    from chalicelib.lake.objects import DirectoryObjectStore

    store = DirectoryObjectStore(lake_dir)
    found: dict[str, dict[str, Counter[str]]] = {}
    for table in lake_tables(model):
        layers = found.setdefault(table.name, {kind.value: Counter() for kind in LayerKind})
        for layer in table_layers(table):
            for stored in store.list(layer.prefix):
                located = keys.lake_partition(stored.key)
                if located is not None and located[0] == table.name:
                    layers[layer.kind.value][located[1]] += 1
    return found


# -- the table -----------------------------------------------------------------------


def _verdict(passed: bool) -> str:
    return "ok" if passed else "MISSED"


def _print_report(
    users: int,
    runs: int,
    before: Sequence[Timing],
    after: Sequence[Timing],
    compaction: Any,
    objects: dict[str, dict[str, Counter[str]]],
) -> None:
    print(f"\nlake: {users:,} users + {users:,} join rows, {DAYS} day partitions per table")
    print(f"cold queries through the local engine (compacted: median of {runs})")
    print(f"{'query':28}{'per-item (s)':>14}{'compacted (s)':>15}{'speed-up':>11}   target")
    for (label, _), item, compacted in zip(QUERIES, before, after, strict=True):
        speedup = item.seconds / compacted.seconds
        passed = compacted.seconds <= TARGET_QUERY_S and speedup >= TARGET_SPEEDUP
        print(
            f"{label:28}{item.seconds:>14.3f}{compacted.seconds:>15.3f}{speedup:>10.1f}x   "
            f"<= {TARGET_QUERY_S} s, >= {TARGET_SPEEDUP:.0f}x  {_verdict(passed)}"
        )
    print("\nwhere a cold query's time goes: loading files / running the query (s)")
    for (label, _), item, compacted in zip(QUERIES, before, after, strict=True):
        print(
            f"{label:28}{item.read_s:>8.3f} / {item.execute_s:<8.3f}"
            f"{compacted.read_s:>8.3f} / {compacted.execute_s:.3f}"
        )

    items = compaction.live_folded + compaction.tombstones_folded
    # The target is for 100,000 items; the lake holds twice that (users and join rows).
    per_target = compaction.seconds * TARGET_ITEMS / max(items, 1)
    print(
        f"\ncompaction: {compaction.seconds:.2f} s for {items:,} items "
        f"({compaction.rows:,} rows, {compaction.partitions} partitions, "
        f"{compaction.files_written} files written, {compaction.files_deleted:,} deleted): "
        f"{per_target:.1f} s per {TARGET_ITEMS:,} items; target <= {TARGET_COMPACTION_S:.0f} s  "
        f"{_verdict(per_target <= TARGET_COMPACTION_S)}"
    )
    print(
        f"{'objects after compaction':28}{'partitions':>11}{'compacted':>11}{'tombstones':>12}"
        f"{'max/partition':>15}{'live left':>11}   target"
    )
    for table, layers in objects.items():
        touched = compaction.tables.get(table, 0)
        if not touched and not any(layers.values()):
            continue
        folded = layers["compacted"] + layers["deleted"]
        most = max(folded.values(), default=0)
        live = sum(layers["live"].values())
        print(
            f"{table:28}{touched:>11}{sum(layers['compacted'].values()):>11}"
            f"{sum(layers['deleted'].values()):>12}{most:>15}{live:>11}   "
            f"<= {TARGET_OBJECTS_PER_PARTITION} per partition + live  "
            f"{_verdict(most <= TARGET_OBJECTS_PER_PARTITION)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=USERS, help="users, and join rows")
    parser.add_argument(
        "--runs", type=int, default=3, help="cold runs per query once compacted (median)"
    )
    parser.add_argument(
        "--readers", type=int, default=1, help="compaction's readers (make compact uses 1)"
    )
    arguments = parser.parse_args()
    from chalicelib.lake.compaction import compact_lake
    from chalicelib.lake.objects import DirectoryObjectStore
    from chalicelib.schema import load_schema

    model = load_schema(SCHEMA, check_sql=False)
    with tempfile.TemporaryDirectory(prefix="ocg-bench-lake-") as scratch:
        lake_dir = Path(scratch) / "lake"
        print(f"writing {arguments.users:,} users and join rows…", flush=True)
        setup_s, files = _write_lake(lake_dir, arguments.users)
        print(f"set-up: {files:,} files written in {setup_s:.1f} s", flush=True)
        queries = _read_through(model)
        _warm_up(model, queries[0])

        print("cold queries over the per-item files…", flush=True)
        before = _measure_all(lake_dir, model, queries, 1)
        print("compacting…", flush=True)
        report = compact_lake(model, DirectoryObjectStore(lake_dir), readers=arguments.readers)
        objects = _objects(lake_dir, model)
        print("cold queries over the compacted files…", flush=True)
        after = _measure_all(lake_dir, model, queries, arguments.runs)

        _print_report(arguments.users, arguments.runs, before, after, report, objects)
        expected = (
            (str(arguments.users),),
            None,
            (str(arguments.users),),
        )
        same = all(b.rows == a.rows for b, a in zip(before, after, strict=True))
        right = all(
            want is None or b.rows == (want,) for want, b in zip(expected, before, strict=True)
        )
        groups = sum(int(row[-1] or 0) for row in before[1].rows)
        right = right and groups == arguments.users
        if same and right:
            print("\nanswers: the same before and after compaction, and as written")
            return 0
        print("\nanswers DIFFER:")
        for (label, _), b, a in zip(QUERIES, before, after, strict=True):
            print(f"  {label}: per-item {b.rows[:12]} / compacted {a.rows[:12]}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
