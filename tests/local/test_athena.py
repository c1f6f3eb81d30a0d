"""LocalAthena: real DuckDB over real Parquet files in the lake's key layout."""

from __future__ import annotations

import base64
import logging
import math
import re
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib import keys
from chalicelib.lake.columns import Column, ColumnType, TableSpec, lake_tables
from chalicelib.lake.layers import (
    GENERATION,
    REMOVAL,
    Layer,
    compacted_spec,
    merged_select,
    table_layers,
    tombstone_spec,
)
from chalicelib.lake.objects import DirectoryObjectStore
from chalicelib.lake.parquet import arrow_schema, encode_row
from chalicelib.local import athena
from chalicelib.local.athena import LocalAthena, athena_text, double_text
from chalicelib.schema import load_schema
from chalicelib.sql.analysis import read_through
from chalicelib.tasks.engine import (
    EngineError,
    InvalidPageToken,
    QueryState,
    UnknownExecution,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"
WORKGROUP = "ocg-shop"

EVERYTHING = TableSpec(
    "everything",
    (
        Column("id", ColumnType.STRING),
        Column("text", ColumnType.STRING),
        Column("count", ColumnType.BIGINT),
        Column("ratio", ColumnType.DOUBLE),
        Column("flag", ColumnType.BOOLEAN),
        Column("createdAt", ColumnType.TIMESTAMP),
        Column("words", ColumnType.STRING, is_list=True),
        Column("numbers", ColumnType.BIGINT, is_list=True),
        Column("ratios", ColumnType.DOUBLE, is_list=True),
        Column("flags", ColumnType.BOOLEAN, is_list=True),
        Column("moments", ColumnType.TIMESTAMP, is_list=True),
    ),
)


@cache
def lake_specs() -> tuple[TableSpec, ...]:
    """The schema's lake tables and ``everything``."""
    model = load_schema(ROOT / "schema.graphql", check_sql=True)
    return (*lake_tables(model), EVERYTHING)


@cache
def merged_tables() -> dict[str, str]:
    """Each table's merged read, as ``chalicelib.lake.layers.merged_tables`` has them."""
    return {spec.name.lower(): merged_select(spec) for spec in lake_specs()}


def through(sql: str) -> str:
    """``sql`` as a task trigger sends it: each lake table read through its layers."""
    return read_through(sql, merged_tables())


@pytest.fixture(scope="module")
def specs() -> tuple[TableSpec, ...]:
    return lake_specs()


@pytest.fixture(scope="module")
def layers(specs: tuple[TableSpec, ...]) -> tuple[Layer, ...]:
    """The engine's tables: every layer of every lake table, as Glue has them."""
    return tuple(layer for spec in specs for layer in table_layers(spec))


@pytest.fixture
def spec_of(specs: tuple[TableSpec, ...]) -> Callable[[str], TableSpec]:
    return {spec.name: spec for spec in specs}.__getitem__


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


class Lake:
    """Writes rows as the stream handler does: one file per row, keyed by ``createdAt``."""

    def __init__(self, root: Path, spec_of: Callable[[str], TableSpec]) -> None:
        self.store = DirectoryObjectStore(root)
        self.spec_of = spec_of

    def key(self, table: str, row: dict[str, Any]) -> str:
        object_id = row.get(keys.JOIN_ROW_RELATION_ID) or row["id"]
        return keys.lake_object_key(table, row["createdAt"], object_id)

    def put(self, table: str, **row: Any) -> Path:
        row.setdefault("updatedAt", row.get("createdAt"))
        self.store.put(self.key(table, row), encode_row(self.spec_of(table), row))
        return self.store.path(self.key(table, row))

    def remove(self, table: str, **row: Any) -> None:
        self.store.delete(self.key(table, row))

    def tombstone(self, table: str, removal: str = "1", **row: Any) -> Path:
        """The tombstone the stream handler writes when it removes the row's item."""
        spec = self.spec_of(table)
        key = keys.tombstone_key(self.key(table, row))
        values = {spec.key: row.get(keys.JOIN_ROW_RELATION_ID) or row["id"], REMOVAL: removal}
        self.store.put(key, encode_row(tombstone_spec(spec), values))
        return self.store.path(key)

    def compact(self, table: str, generation: int, *rows: dict[str, Any], part: int = 0) -> Path:
        """One file of a compaction run: ``rows`` of one partition (by their ``createdAt``),
        each stamped with ``generation``, written with pyarrow as compaction writes them."""
        spec = compacted_spec(self.spec_of(table))
        located = {keys.lake_partition(self.key(table, row)) for row in rows}
        assert len(located) == 1, f"rows of one partition, not {located}"
        [place] = located
        assert place is not None
        located_table, partition = place
        assert located_table == table
        stamps = {c.name for c in spec.columns if c.type is ColumnType.TIMESTAMP}

        def value(name: str, row: dict[str, Any]) -> Any:
            found = row.get(name, row.get("createdAt") if name == "updatedAt" else None)
            return datetime.fromisoformat(found) if name in stamps and found else found

        records = [
            {**{c.name: value(c.name, row) for c in spec.columns}, GENERATION: generation}
            for row in rows
        ]
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(records, schema=arrow_schema(spec)), sink)
        key = keys.compacted_object_key(table, partition, generation, part)
        self.store.put(key, sink.getvalue().to_pybytes())
        return self.store.path(key)


@pytest.fixture
def lake(lake_dir: Path, spec_of: Callable[[str], TableSpec]) -> Lake:
    return Lake(lake_dir, spec_of)


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def make_engine(
    lake_dir: Path, layers: tuple[Layer, ...], events: list[dict[str, Any]]
) -> Iterator[Callable[..., LocalAthena]]:
    engines: list[LocalAthena] = []

    def make(**options: Any) -> LocalAthena:
        options.setdefault("publish", events.append)
        engine = LocalAthena(
            lake_dir, layers, workgroup=WORKGROUP, region=REGION, account_id=ACCOUNT, **options
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., LocalAthena]) -> LocalAthena:
    return make_engine()


def run(engine: LocalAthena, sql: str, *, merged: bool = True) -> str:
    """Start ``sql`` read through the lake's layers (``merged``) or as it is, and wait."""
    execution_id = engine.start(through(sql) if merged else sql, str(uuid.uuid4()))
    engine.wait_until_idle()
    return execution_id


def rows(engine: LocalAthena, sql: str) -> list[tuple[str | None, ...]]:
    execution_id = run(engine, sql)
    execution = engine.execution(execution_id)
    assert execution.state is QueryState.SUCCEEDED, execution.reason
    return list(engine.results(execution_id).rows)


def failure(engine: LocalAthena, sql: str, *, merged: bool = True) -> str:
    execution = engine.execution(run(engine, sql, merged=merged))
    assert execution.state is QueryState.FAILED
    assert execution.reason is not None
    return execution.reason


def user(user_id: str, name: str, created_at: str, **more: Any) -> dict[str, Any]:
    """A user row, as the lake holds it in any layer."""
    return {"id": user_id, "name": name, "email": f"{user_id}@x.org", "createdAt": created_at,
            **more}  # fmt: skip


def shop(lake: Lake) -> None:
    """Three users, two in Paris, products of two brands, favorites."""
    lake.put("user", id="u1", name="Ada", email="ada@x.org", age=36, vip=True,
             createdAt="2026-01-01T10:00:00.000Z")  # fmt: skip
    lake.put("user", id="u2", name="Bob", email="bob@x.org", age=None, vip=False,
             createdAt="2025-12-31T12:00:00.000Z")  # fmt: skip
    lake.put("user", id="u3", name="Cy", email="cy@x.org", age=20,
             createdAt="2025-12-30T23:59:59.999Z")  # fmt: skip
    for user_id, city in (("u1", "Paris"), ("u2", "Paris"), ("u3", "Oslo")):
        lake.put("address", id=f"a-{user_id}", userId=user_id, city=city, country="X",
                 createdAt="2026-01-02T00:00:00.000Z")  # fmt: skip
    for product_id, brand, price in (("p1", "b1", 10.0), ("p2", "b1", 20.0), ("p3", "b2", 5.5)):
        lake.put("product", id=product_id, name=f"Product {product_id}", brandId=brand,
                 price=price, tags=["a", product_id],
                 createdAt="2026-01-03T00:00:00.000Z")  # fmt: skip
    favorites = [("u1", "p1"), ("u2", "p1"), ("u1", "p2"), ("u3", "p3")]
    for user_id, product_id in favorites:
        relation = keys.relation_id(
            "user_favorite_products", [("user", user_id), ("product", product_id)]
        )
        lake.put("user_favorite_products", relationId=relation, userId=user_id,
                 productId=product_id, s3Key=f"k/{relation}",
                 createdAt="2026-01-04T00:00:00.000Z")  # fmt: skip


# -- importing ---------------------------------------------------------------------


def test_importing_the_module_imports_neither_duckdb_nor_pyarrow_nor_sqlglot(
    tmp_path: Path,
) -> None:
    """And running queries never imports pandas (``pa.array`` would: half a second).

    The engine's tables are the layers (``chalicelib.lake.layers``, pure data and text,
    imported with the engine); the query reads ``everything`` through them, as a task's
    SQL does once its trigger rewrote it (``read_through`` imports sqlglot, after the check).
    """
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import chalicelib.local.athena as athena\n"
        "from chalicelib.lake.layers import merged_select, table_layers\n"
        "heavy = [m for m in ('duckdb', 'pyarrow', 'sqlglot', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from chalicelib.sql.analysis import read_through\n"
        "from tests.local.test_athena import EVERYTHING, Lake\n"
        f"lake = Lake(Path({str(tmp_path)!r}), lambda name: EVERYTHING)\n"
        "rows = [dict(id=f'r{n}', createdAt='2026-01-01T00:00:00.000Z') for n in range(4)]\n"
        "for row in rows:\n"
        "    lake.put('everything', **row, words=['a'], numbers=[1], text='x')\n"
        f"engine = athena.LocalAthena(Path({str(tmp_path)!r}), table_layers(EVERYTHING),\n"
        "    workgroup='w', region='r', account_id='1', publish=lambda event: None)\n"
        "merged = {'everything': merged_select(EVERYTHING)}\n"
        "sql = read_through('SELECT * FROM everything', merged)\n"
        "tokens = iter(range(100))\n"
        "def count():\n"
        "    execution_id = engine.start(sql, str(next(tokens)))\n"
        "    engine.wait_until_idle()\n"
        "    return len(engine.results(execution_id).rows)\n"
        "assert count() == 4\n"
        "lake.put('everything', **rows[0], text='changed')\n"
        "lake.remove('everything', **rows[1])\n"
        "assert count() == 3\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
        "engine.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# -- queries -----------------------------------------------------------------------


def test_the_usersbycity_query_joins_user_and_counts_over_the_window(
    engine: LocalAthena, lake: Lake
) -> None:
    shop(lake)
    sql = """
      SELECT u.id, u.name, u.email, COUNT(*) OVER () AS total
      FROM "user" u JOIN address a ON u.id = a.userId
      WHERE a.city = 'Paris'
      ORDER BY u.name
    """
    execution_id = run(engine, sql)
    page = engine.results(execution_id)
    assert page.columns == ("id", "name", "email", "total")
    assert page.rows == (("u1", "Ada", "ada@x.org", "2"), ("u2", "Bob", "bob@x.org", "2"))
    assert page.next_token is None
    # ``user`` unquoted, as Athena accepts it too.
    assert rows(engine, "SELECT count(*) AS n FROM user") == [("3",)]


def test_group_by_having_and_averages(engine: LocalAthena, lake: Lake) -> None:
    shop(lake)
    sql = """
      SELECT p.brandId, COUNT(*) AS favorites, AVG(p.price) AS averagePrice
      FROM product p JOIN user_favorite_products f ON p.id = f.productId
      WHERE p.name LIKE 'Product%' OR NULL IS NULL
      GROUP BY p.brandId
      HAVING COUNT(*) >= 2
      ORDER BY favorites DESC
    """
    execution_id = run(engine, sql)
    page = engine.results(execution_id)
    assert page.columns == ("brandid", "favorites", "averageprice")
    # p1 twice (10.0), p2 once (20.0): the average of 10, 10, 20.
    assert [row[:2] for row in page.rows] == [("b1", "3")]
    assert float(page.rows[0][2] or "") == pytest.approx(40 / 3)


def test_timestamps_compare_with_interval_arithmetic_in_utc(
    engine: LocalAthena, lake: Lake
) -> None:
    shop(lake)
    newer = """
      SELECT id FROM "user"
      WHERE createdAt > TIMESTAMP '2026-01-01 00:00:00' - INTERVAL '1' DAY ORDER BY id
    """
    assert rows(engine, newer) == [("u1",), ("u2",)]
    functions = """
      SELECT date_add('day', 1, createdAt) AS next_day,
             date_format(createdAt, '%Y-%m-%d %H:%i') AS minute,
             from_iso8601_timestamp('2026-01-01T10:00:00.123+02:00') AS parsed
      FROM "user" WHERE id = 'u3'
    """
    assert rows(engine, functions) == [
        ("2025-12-31 23:59:59.999", "2025-12-30 23:59", "2026-01-01 08:00:00.123")
    ]


def test_partition_columns_are_strings_from_the_key(engine: LocalAthena, lake: Lake) -> None:
    shop(lake)
    assert rows(engine, 'SELECT id, year, month, day FROM "user" ORDER BY id') == [
        ("u1", "2026", "01", "01"),
        ("u2", "2025", "12", "31"),
        ("u3", "2025", "12", "30"),
    ]
    assert rows(engine, "SELECT count(*) AS n FROM \"user\" WHERE year = '2025'") == [("2",)]


def test_tables_without_files_are_empty_and_typed(engine: LocalAthena) -> None:
    execution_id = run(engine, "SELECT * FROM brand")
    page = engine.results(execution_id)
    assert page.columns == ("id", "name", "createdat", "updatedat", "year", "month", "day")
    assert page.rows == ()
    assert rows(engine, "SELECT count(*) AS n, max(createdAt) AS latest FROM brand") == [
        ("0", None)
    ]
    # Typed: a timestamp comparison binds although no file tells DuckDB the type.
    assert rows(engine, "SELECT id FROM brand WHERE createdAt > TIMESTAMP '2026-01-01'") == []


def test_unnamed_result_columns_are_named_like_trino(engine: LocalAthena) -> None:
    execution_id = run(engine, "SELECT 1, 'a' AS a, count(*) FROM brand")
    assert engine.results(execution_id).columns == ("_col0", "a", "_col2")


# -- reading through the layers ----------------------------------------------------

DAY = "2026-01-01T{:02d}:00:00.000Z"  # one partition: year=2026/month=01/day=01


def test_a_live_file_overrides_the_compacted_row_of_its_key(
    engine: LocalAthena, lake: Lake
) -> None:
    lake.compact("user", 1, user("u1", "Ada", DAY.format(10), age=36),
                 user("u2", "Bob", DAY.format(11), age=40, vip=True))  # fmt: skip
    # u1 changed after the compaction: its live file is newer than its compacted row.
    lake.put("user", **user("u1", "Ada", DAY.format(10), age=37))
    lake.put("user", **user("u3", "Cy", "2026-02-01T00:00:00.000Z"))  # live only
    sql = 'SELECT id, name, age, vip, createdAt, year, month, day FROM "user" ORDER BY id'
    assert rows(engine, sql) == [
        ("u1", "Ada", "37", None, "2026-01-01 10:00:00.000", "2026", "01", "01"),
        ("u2", "Bob", "40", "true", "2026-01-01 11:00:00.000", "2026", "01", "01"),
        ("u3", "Cy", None, None, "2026-02-01 00:00:00.000", "2026", "02", "01"),
    ]
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("3",)]
    # The overridden row is loaded all the same: the merged read hides it.
    assert rows(engine, "SELECT id, age, _generation FROM user__compacted ORDER BY id") == [
        ("u1", "36", "1"),
        ("u2", "40", "1"),
    ]


def test_a_tombstone_hides_the_compacted_row_but_not_a_live_file(
    engine: LocalAthena, lake: Lake
) -> None:
    ada, bob, cy = (user(f"u{n}", name, DAY.format(10 + n))
                    for n, name in ((1, "Ada"), (2, "Bob"), (3, "Cy")))  # fmt: skip
    lake.compact("user", 1, ada, bob, cy)
    lake.tombstone("user", **bob)  # removed since the compaction
    # Removed, then added again (a relation can be): the live file is the item now.
    lake.tombstone("user", **cy)
    lake.put("user", **{**cy, "name": "Cy again"})
    lake.tombstone("user", **user("u9", "Nobody", DAY.format(19)))  # nothing to hide
    assert rows(engine, 'SELECT id, name FROM "user" ORDER BY id') == [
        ("u1", "Ada"),
        ("u3", "Cy again"),
    ]
    assert rows(engine, "SELECT count(*) FROM user__deleted") == [("3",)]


def test_only_the_newest_generation_of_a_partition_counts(engine: LocalAthena, lake: Lake) -> None:
    # A run that wrote generation 2 and stopped before deleting generation 1: u3, gone
    # from generation 2 (its tombstone was folded), is left only in the older file.
    leftover = lake.compact(
        "user", 1, user("u1", "Ada", DAY.format(10)), user("u2", "Bob", DAY.format(11)),
        user("u3", "Cy", DAY.format(12)),
    )  # fmt: skip
    lake.compact("user", 2, user("u1", "Ann", DAY.format(10)), part=0)
    lake.compact("user", 2, user("u2", "Bob", DAY.format(11)), part=1)
    # Another partition's newest generation is its own: generation 1 counts there.
    lake.compact("user", 1, user("u4", "Dee", "2025-12-31T00:00:00.000Z"))
    sql = 'SELECT id, name FROM "user" ORDER BY id'
    expected = [("u1", "Ann"), ("u2", "Bob"), ("u4", "Dee")]
    assert rows(engine, sql) == expected
    assert rows(engine, "SELECT count(*) FROM user__compacted") == [("6",)]
    leftover.unlink()  # what the next run would delete: nothing changes
    assert rows(engine, sql) == expected


def test_partition_columns_filter_every_layer(engine: LocalAthena, lake: Lake) -> None:
    lake.compact("user", 1, user("u1", "Ada", DAY.format(10)), user("u9", "Gone", DAY.format(9)))
    lake.compact("user", 1, user("u2", "Bob", "2025-12-31T12:00:00.000Z"))
    lake.tombstone("user", **user("u9", "Gone", DAY.format(9)))
    lake.put("user", **user("u3", "Cy", "2025-12-30T23:59:59.999Z"))
    lake.put("user", **user("u5", "Eve", "2026-03-01T00:00:00.000Z"))
    assert rows(engine, "SELECT id FROM \"user\" WHERE year = '2026' ORDER BY id") == [
        ("u1",),
        ("u5",),
    ]
    assert rows(engine, "SELECT id FROM \"user\" WHERE year = '2025' AND day = '31'") == [("u2",)]
    by_year = 'SELECT year, count(*) FROM "user" GROUP BY year ORDER BY year'
    assert rows(engine, by_year) == [("2025", "2"), ("2026", "2")]


# -- Athena's text -----------------------------------------------------------------


def test_every_lake_type_reads_back_as_athena_text(engine: LocalAthena, lake: Lake) -> None:
    lake.put(
        "everything",
        id="full",
        text="Zoë 👩‍💻 東京",
        count=-9007199254740993,
        ratio=0.1,
        flag=True,
        createdAt="2026-11-23T19:22:14.123+01:00",
        words=["a", "b, c"],
        numbers=[7, -3],
        ratios=[1.5, 1e10],
        flags=[True, False],
        moments=["2026-01-01T00:00:00.000Z"],
    )
    lake.put("everything", id="empty", createdAt="2026-11-23T00:00:00.000Z", words=[])
    columns = "id, text, count, ratio, flag, createdAt, words, numbers, ratios, flags, moments"
    assert rows(engine, f"SELECT {columns} FROM everything ORDER BY id") == [
        ("empty", None, None, None, None, "2026-11-23 00:00:00.000", "[]", None, None, None,
         None),
        ("full", "Zoë 👩‍💻 東京", "-9007199254740993", "0.1", "true", "2026-11-23 18:22:14.123",
         "[a, b, c]", "[7, -3]", "[1.5, 1.0E10]", "[true, false]",
         "[2026-01-01 00:00:00.000]"),
    ]  # fmt: skip


def test_computed_values_read_as_athena_text(engine: LocalAthena) -> None:
    sql = """
      SELECT 1.0E10 AS big, 1.5e-5 AS small, CAST(12.50 AS DECIMAL(5, 2)) AS price,
             DATE '2026-01-02' AS day, NULL AS nothing, false AS no, ARRAY[1, NULL] AS list,
             MAP(ARRAY['a'], ARRAY[1]) AS map, 0.1 + 0.2 AS sum, CAST(2 AS DOUBLE) AS two
             -- decimal literals add exactly, in Trino as in DuckDB
    """
    assert rows(engine, sql) == [
        ("1.0E10", "1.5E-5", "12.50", "2026-01-02", None, "false", "[1, null]", "{a=1}",
         "0.3", "2.0"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (-2.5, "-2.5"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (-1.2345e-7, "-1.2345E-7"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
    ],
)
def test_doubles_are_written_like_java(value: float, text: str) -> None:
    assert double_text(value) == text
    assert math.isnan(float(text)) if math.isnan(value) else float(text) == value


def test_python_values_are_written_as_athena_text() -> None:
    paris = timezone(timedelta(hours=1))
    assert athena_text(None) is None
    assert athena_text(True) == "true"
    assert athena_text(12) == "12"
    assert athena_text(Decimal("1E+2")) == "100"
    assert athena_text(datetime(2026, 1, 1, 1, 2, 3, 456789, tzinfo=paris)) == (
        "2026-01-01 00:02:03.456"
    )
    assert athena_text(datetime(999, 1, 1)) == "0999-01-01 00:00:00.000"
    assert athena_text([None, [1.0, "x"], {"k": None}]) == "[null, [1.0, x], {k=null}]"
    assert athena_text(timedelta(days=1, seconds=3661, milliseconds=5)) == "1 01:01:01.005"
    assert athena_text(b"\x00\xff") == "00 ff"


# -- paging ------------------------------------------------------------------------


def test_results_page_with_issued_tokens(engine: LocalAthena) -> None:
    execution_id = run(engine, "SELECT n FROM UNNEST(sequence(1, 25)) AS t(n) ORDER BY n")
    seen: list[str | None] = []
    token: str | None = None
    pages = 0
    while True:
        page = engine.results(execution_id, next_token=token, max_rows=10)
        seen.extend(row[0] for row in page.rows)
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert pages == 3
    assert seen == [str(n) for n in range(1, 26)]
    # A token can be used again: it is the same page.
    first = engine.results(execution_id, max_rows=10)
    assert first.next_token is not None
    again = engine.results(execution_id, next_token=first.next_token, max_rows=10)
    assert again == engine.results(execution_id, next_token=first.next_token, max_rows=10)
    assert again.rows[0] == ("11",)


def test_page_size_is_capped_at_athenas_limit(engine: LocalAthena) -> None:
    execution_id = run(engine, "SELECT n FROM UNNEST(sequence(1, 1500)) AS t(n) ORDER BY n")
    page = engine.results(execution_id, max_rows=5000)
    assert len(page.rows) == 1000
    rest = engine.results(execution_id, next_token=page.next_token)
    assert len(rest.rows) == 500
    assert rest.next_token is None
    with pytest.raises(EngineError, match="max_rows"):
        engine.results(execution_id, max_rows=0)


def test_tokens_not_issued_for_the_execution_are_refused(engine: LocalAthena) -> None:
    first = run(engine, "SELECT n FROM UNNEST(sequence(1, 5)) AS t(n)")
    second = run(engine, "SELECT n FROM UNNEST(sequence(1, 5)) AS t(n) ORDER BY n")
    token = engine.results(first, max_rows=2).next_token
    assert token is not None
    with pytest.raises(InvalidPageToken):
        engine.results(second, next_token=token)
    offset, signature = base64.urlsafe_b64decode(token).decode().split(":")
    tampered = base64.urlsafe_b64encode(f"{int(offset) + 1}:{signature}".encode()).decode()
    for bad in ("", "garbage", "éé", tampered, token[:-2], base64.b64encode(b"\xff").decode()):
        with pytest.raises(InvalidPageToken):
            engine.results(first, next_token=bad)


# -- executions and events ---------------------------------------------------------


def test_a_request_token_starts_one_execution(
    engine: LocalAthena, events: list[dict[str, Any]]
) -> None:
    sql = through('SELECT count(*) FROM "user"')
    first = engine.start(sql, "token-1")
    assert engine.start(sql, "token-1") == first
    engine.wait_until_idle()
    assert engine.start(sql, "token-1") == first
    assert [event["detail"]["queryExecutionId"] for event in events] == [first, first]
    with pytest.raises(EngineError, match="already used"):
        engine.start(through('SELECT count(*) FROM "address"'), "token-1")
    assert engine.start(sql, "token-2") != first


def test_a_successful_query_announces_running_then_succeeded(
    engine: LocalAthena, events: list[dict[str, Any]]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    execution_id = run(engine, "SELECT 1 AS one")
    after = datetime.now(UTC)
    execution = engine.execution(execution_id)
    assert execution.state is QueryState.SUCCEEDED
    assert execution.reason is None
    assert execution.submitted is not None and execution.completed is not None
    assert before <= execution.submitted <= execution.completed <= after
    assert execution.submitted.tzinfo is UTC
    assert uuid.UUID(execution_id).version == 4
    assert [e["detail"]["currentState"] for e in events] == ["RUNNING", "SUCCEEDED"]
    for event, previous, sequence in zip(events, ("QUEUED", "RUNNING"), ("2", "3"), strict=True):
        assert set(event) == {
            "version", "id", "detail-type", "source", "account", "time", "region", "resources",
            "detail",
        }  # fmt: skip
        assert event["version"] == "0"
        assert uuid.UUID(event["id"])
        assert event["detail-type"] == "Athena Query State Change"
        assert event["source"] == "aws.athena"
        assert event["account"] == ACCOUNT
        assert event["region"] == REGION
        assert event["resources"] == []
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
        moment = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before <= moment <= after
        assert event["detail"] == {
            "currentState": event["detail"]["currentState"],
            "previousState": previous,
            "queryExecutionId": execution_id,
            "sequenceNumber": sequence,
            "statementType": "DML",
            "versionId": "0",
            "workgroupName": WORKGROUP,
        }
    assert events[0]["id"] != events[1]["id"]


def test_a_failing_query_carries_duckdbs_reason_and_athenas_error(
    engine: LocalAthena, events: list[dict[str, Any]]
) -> None:
    execution_id = run(engine, 'SELECT nope FROM "user"')
    execution = engine.execution(execution_id)
    assert execution.state is QueryState.FAILED
    assert execution.reason is not None and execution.reason.startswith("Binder Error")
    assert "nope" in execution.reason
    assert execution.completed is not None
    assert [e["detail"]["currentState"] for e in events] == ["RUNNING", "FAILED"]
    assert events[1]["detail"]["previousState"] == "RUNNING"
    assert events[1]["detail"]["athenaError"] == {
        "errorCategory": 2,
        "errorType": 1301,
        "errorMessage": execution.reason,
        "retryable": False,
    }
    with pytest.raises(EngineError, match="did not finish successfully"):
        engine.results(execution_id)
    assert engine.timings(execution_id) is not None


# The engine refuses these itself, so they are sent as they are: ``read_through`` cannot
# parse the first two, and it would make the DROP's table a subquery (no trigger sends
# anything but a query: the schema's SQL is checked when it is loaded).
@pytest.mark.parametrize(
    ("sql", "reason", "merged"),
    [
        ("SELEC 1", r"^SYNTAX_ERROR: line 1:\d+: ", False),
        ("SELECT 1; SELECT 2", r"^Only one sql statement is allowed", False),
        ('DROP TABLE "user"', r"^NOT_SUPPORTED: .*DROP", False),
        ('DROP TABLE "user__live"', r"^NOT_SUPPORTED: .*DROP", False),
        ("SELECT * FROM no_such_table", r"^Catalog Error: .*no_such_table", True),
    ],
)
def test_refused_queries_fail_with_a_reason(
    engine: LocalAthena, sql: str, reason: str, merged: bool
) -> None:
    assert re.search(reason, failure(engine, sql, merged=merged))
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("0",)]  # the lake is intact


def test_running_is_observable_with_an_injected_runner(
    make_engine: Callable[..., LocalAthena],
) -> None:
    jobs: list[Callable[[], None]] = []
    states: list[tuple[str, QueryState]] = []
    engine: LocalAthena

    def publish(event: dict[str, Any]) -> None:
        detail = event["detail"]
        states.append((detail["currentState"], engine.execution(detail["queryExecutionId"]).state))

    engine = make_engine(run=jobs.append, publish=publish)
    execution_id = engine.start(through("SELECT 1"), "t")
    assert engine.execution(execution_id).state is QueryState.QUEUED
    assert engine.timings(execution_id) is None
    with pytest.raises(EngineError, match="not yet finished"):
        engine.results(execution_id)
    with pytest.raises(TimeoutError):
        engine.wait_until_idle(timeout=0.01)
    assert len(jobs) == 1
    jobs.pop()()
    assert states == [
        ("RUNNING", QueryState.RUNNING),
        ("SUCCEEDED", QueryState.SUCCEEDED),
    ]
    engine.wait_until_idle(timeout=0.01)
    assert engine.results(execution_id).rows == (("1",),)


def test_unknown_executions(engine: LocalAthena) -> None:
    for call in (engine.execution, engine.results, engine.timings):
        with pytest.raises(UnknownExecution):
            call("no-such-id")


def test_a_failing_publish_is_logged_and_the_engine_goes_on(
    make_engine: Callable[..., LocalAthena], caplog: pytest.LogCaptureFixture
) -> None:
    def publish(event: dict[str, Any]) -> None:
        raise RuntimeError("event bus down")

    engine = make_engine(publish=publish)
    with caplog.at_level(logging.ERROR, logger=athena.__name__):
        assert rows(engine, "SELECT 1") == [("1",)]
        assert rows(engine, "SELECT 2") == [("2",)]
    assert "event bus down" in caplog.text


def test_closing_refuses_new_queries_and_fails_late_jobs(
    make_engine: Callable[..., LocalAthena],
) -> None:
    jobs: list[Callable[[], None]] = []
    engine = make_engine(run=jobs.append)
    execution_id = engine.start(through("SELECT 1"), "t")
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.start(through("SELECT 1"), "u")
    jobs.pop()()
    execution = engine.execution(execution_id)
    assert execution.state is QueryState.FAILED
    assert "closed" in (execution.reason or "")


def test_duckdb_never_installs_extensions(engine: LocalAthena) -> None:
    assert rows(
        engine,
        "SELECT current_setting('autoinstall_known_extensions') AS install, "
        "current_setting('autoload_known_extensions') AS load, "
        "current_setting('TimeZone') AS zone",
    ) == [("false", "false", "UTC")]
    # httpfs is not built in: the query fails at once instead of downloading it.
    assert "httpfs" in failure(engine, "SELECT * FROM read_parquet('s3://bucket/x.parquet')")


# -- keeping up with the lake ------------------------------------------------------


def test_files_added_changed_and_removed_between_queries(engine: LocalAthena, lake: Lake) -> None:
    shop(lake)
    sql = 'SELECT id, name, age FROM "user" ORDER BY id'
    assert rows(engine, sql) == [("u1", "Ada", "36"), ("u2", "Bob", None), ("u3", "Cy", "20")]
    # Same size and, likely, the same mtime tick: the rename gives a new inode.
    lake.put("user", id="u1", name="Ada", email="ada@x.org", age=37, vip=True,
             createdAt="2026-01-01T10:00:00.000Z")  # fmt: skip
    lake.remove("user", id="u2", createdAt="2025-12-31T12:00:00.000Z")
    lake.put("user", id="u4", name="Dee", email="dee@x.org", createdAt="2026-02-01T00:00:00.000Z")
    assert rows(engine, sql) == [("u1", "Ada", "37"), ("u3", "Cy", "20"), ("u4", "Dee", None)]
    assert rows(engine, "SELECT count(*) FROM address") == [("3",)]  # untouched table
    lake.remove("user", id="u1", createdAt="2026-01-01T10:00:00.000Z")
    lake.remove("user", id="u3", createdAt="2025-12-30T23:59:59.999Z")
    lake.remove("user", id="u4", createdAt="2026-02-01T00:00:00.000Z")
    assert rows(engine, sql) == []


def test_only_changed_files_are_read_again(engine: LocalAthena, lake: Lake) -> None:
    shop(lake)
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("3",)]
    read_before = engine.files_read

    assert rows(engine, 'SELECT count(*) FROM "user"') == [("3",)]
    assert engine.files_read == read_before
    lake.put("user", id="u5", name="Eve", email="e@x.org", createdAt="2026-03-01T00:00:00.000Z")
    execution_id = run(engine, 'SELECT count(*) FROM "user"')
    assert engine.results(execution_id).rows == (("4",),)
    assert engine.files_read == read_before + 1
    timings = engine.timings(execution_id)
    assert timings is not None and all(seconds >= 0 for seconds in timings)


def test_the_files_of_every_layer_a_query_reads_are_read_once(
    engine: LocalAthena, lake: Lake
) -> None:
    """A query on "user" reads "user" through its three layers: their files all count."""
    shop(lake)  # three live files of "user"
    lake.compact("user", 1, user("u7", "Gus", DAY.format(7)), user("u8", "Hal", DAY.format(8)))
    lake.tombstone("user", **user("u8", "Hal", DAY.format(8)))
    assert rows(engine, 'SELECT id FROM "user" ORDER BY id') == [
        ("u1",), ("u2",), ("u3",), ("u7",),
    ]  # fmt: skip
    assert engine.files_read == 3 + 1 + 1  # live, compacted, tombstone

    assert rows(engine, 'SELECT count(*) FROM "user"') == [("4",)]
    assert engine.files_read == 5
    lake.tombstone("user", **user("u7", "Gus", DAY.format(7)))
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("3",)]
    assert engine.files_read == 6


def test_a_file_removed_while_the_lake_is_read_counts_as_removed(
    engine: LocalAthena, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(lake)
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("3",)]
    # u1 changes, then both u1 and the new u6 vanish after listing, before reading.
    lake.put("user", id="u1", name="Ann", email="ada@x.org", createdAt="2026-01-01T10:00:00.000Z")
    lake.put("user", id="u6", name="Fay", email="f@x.org", createdAt="2026-03-01T00:00:00.000Z")
    original = athena._list_table
    live = lake.store.path(keys.lake_table_prefix("user").rstrip("/"))

    def listing_then_removing(table_dir: Path) -> dict[str, Any]:
        listed = original(table_dir)
        # The query lists all three layers of "user"; the files vanish after the listing
        # of the live layer, the one that holds them.
        if Path(table_dir) == live:
            lake.remove("user", id="u1", createdAt="2026-01-01T10:00:00.000Z")
            lake.remove("user", id="u6", createdAt="2026-03-01T00:00:00.000Z")
        return listed

    monkeypatch.setattr(athena, "_list_table", listing_then_removing)
    assert rows(engine, 'SELECT id FROM "user" ORDER BY id') == [("u2",), ("u3",)]
    monkeypatch.setattr(athena, "_list_table", original)
    lake.put("user", id="u6", name="Fay", email="f@x.org", createdAt="2026-03-01T00:00:00.000Z")
    assert rows(engine, 'SELECT id FROM "user" ORDER BY id') == [("u2",), ("u3",), ("u6",)]


def test_files_of_another_layout_are_read_by_column_name(
    engine: LocalAthena, lake: Lake, lake_dir: Path
) -> None:
    """An older schema's file (fewer columns, other order, an extra one, two rows)."""
    shop(lake)
    old = pa.table(
        {
            "extra": ["ignored", "ignored"],
            "NAME": ["Old", "Older"],
            "id": ["o1", "o2"],
            "age": pa.array([1, 2], pa.int32()),
        }
    )
    path = lake_dir / "tables/user/year=2020/month=01/day=01/old.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(old, path)
    assert rows(engine, "SELECT id, name, age, email, year FROM \"user\" WHERE year = '2020'") == [
        ("o1", "Old", "1", None, "2020"),
        ("o2", "Older", "2", None, "2020"),
    ]
    # A file that is not Parquet at all fails the query, as on Athena, until it is gone.
    junk = path.with_name("junk.parquet")
    junk.write_bytes(b"PAR1 not really PAR1")
    assert failure(engine, 'SELECT count(*) FROM "user"').startswith("HIVE_BAD_DATA")
    junk.unlink()
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("5",)]


def test_files_outside_the_layout_are_ignored(engine: LocalAthena, lake: Lake) -> None:
    shop(lake)
    table = lake.store.root / "tables" / "user"
    (table / "stray.parquet").write_bytes(b"not in a partition")
    day = next(table.glob("year=*/month=*/day=*"))
    (day / ".u9.parquet.abc.tmp").write_bytes(b"half written")
    (day / "notes.txt").write_text("not parquet")
    (table / "year=2026" / "readme.parquet").write_bytes(b"not a day")
    assert rows(engine, 'SELECT count(*) FROM "user"') == [("3",)]


def test_preloading_reads_every_table_before_the_first_query(
    engine: LocalAthena, lake: Lake
) -> None:
    shop(lake)
    engine.preload()
    engine.wait_until_idle()
    read = engine.files_read
    assert read > 0

    assert rows(engine, "SELECT count(*) FROM user_favorite_products") == [("4",)]
    assert engine.files_read == read


# -- following the lake --------------------------------------------------------------


def test_the_engine_follows_the_lake_as_it_is_written(
    engine: LocalAthena, lake_dir: Path, spec_of: Callable[[str], TableSpec]
) -> None:
    """Wired to the object store, changes are loaded ahead of the query that needs them."""
    followed = Lake(lake_dir, spec_of)
    followed.store = DirectoryObjectStore(lake_dir, on_change=engine.lake_changed)
    shop(followed)
    engine.wait_until_idle()
    loaded = engine.files_read
    assert loaded == len(list(lake_dir.rglob("*.parquet")))

    execution_id = run(engine, 'SELECT count(*) FROM "user"')
    assert engine.results(execution_id).rows == (("3",),)
    assert engine.files_read == loaded  # the query found everything loaded

    followed.remove("user", id="u2", createdAt="2025-12-31T12:00:00.000Z")
    engine.wait_until_idle()
    assert rows(engine, 'SELECT id FROM "user" ORDER BY id') == [("u1",), ("u3",)]


def test_following_reads_only_the_files_named_not_the_table(
    engine: LocalAthena, lake: Lake, lake_dir: Path, spec_of: Callable[[str], TableSpec]
) -> None:
    """A bulk load writes thousands of files: following it must cost each file once, not
    a listing of the table per write."""
    followed = Lake(lake_dir, spec_of)
    followed.store = DirectoryObjectStore(lake_dir, on_change=engine.lake_changed)
    lake.put("user", id="u1", name="Ada", email="a@x.org", createdAt="2026-01-01T10:00:00.000Z")
    followed.put("user", id="u2", name="Bob", email="b@x.org", createdAt="2026-01-01T11:00:00.000Z")
    engine.wait_until_idle()
    assert engine.files_read == 1  # u2 only: nobody named u1

    assert rows(engine, 'SELECT id FROM "user" ORDER BY id') == [("u1",), ("u2",)]
    # The query's own refresh lists the table's layers (u1; the other two are empty).
    assert engine.files_read == 2


def test_the_engine_follows_every_layer(
    engine: LocalAthena, lake_dir: Path, spec_of: Callable[[str], TableSpec]
) -> None:
    """Compaction's files and the stream handler's tombstones are followed like live files."""
    followed = Lake(lake_dir, spec_of)
    followed.store = DirectoryObjectStore(lake_dir, on_change=engine.lake_changed)
    followed.compact(
        "user", 1, user("u1", "Ada", DAY.format(10)), user("u2", "Bob", DAY.format(11))
    )
    followed.tombstone("user", **user("u2", "Bob", DAY.format(11)))
    followed.put("user", **user("u3", "Cy", DAY.format(12)))
    engine.wait_until_idle()
    assert engine.files_read == 3  # one file of each layer, loaded ahead of any query

    assert rows(engine, 'SELECT id FROM "user" ORDER BY id') == [("u1",), ("u3",)]
    assert engine.files_read == 3


def test_changes_outside_the_lake_or_its_tables_are_ignored(engine: LocalAthena) -> None:
    engine.lake_changed("results/abc.csv")
    engine.lake_changed("tables/not_a_table/year=2026/month=01/day=01/x.parquet")
    engine.lake_changed("compacted/not_a_table/year=2026/month=01/day=01/1-0.parquet")
    engine.lake_changed("deleted/not_a_table/year=2026/month=01/day=01/x.parquet")
    engine.lake_changed("tables/user__live/year=2026/month=01/day=01/x.parquet")
    engine.wait_until_idle()

    assert engine.files_read == 0


def test_an_idle_worker_keeps_no_finished_job_alive() -> None:
    """A job holds the engine, and the engine the services of the app that made it: a
    worker waiting for its next job with the last one in hand kept whole apps alive."""
    worker = athena._Worker()
    ran = threading.Event()

    class Job:
        def __call__(self) -> None:
            ran.set()

    job = Job()
    finished = weakref.ref(job)
    worker.submit(job)
    del job
    try:
        assert ran.wait(10)
        deadline = time.monotonic() + 10
        while finished() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert finished() is None
    finally:
        worker.stop(10)
