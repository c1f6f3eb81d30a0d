"""Compaction folds the lake's per-item files, and every query still answers exactly what
the table holds: after each run, in the middle of one, and while the stream writes."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from chalicelib import keys
from chalicelib.lake.compaction import compact_lake
from chalicelib.lake.layers import lake_layers, merged_tables
from chalicelib.lake.objects import DirectoryObjectStore, ObjectStore, S3ObjectStore, StoredObject
from chalicelib.lake.stream import process_stream_event
from chalicelib.local.athena import LocalAthena
from chalicelib.schema.model import SchemaModel
from chalicelib.sql.analysis import read_through
from tests.lake.support import BUCKET, batch, captured

DAYS = ("2026-11-23T10:00:00.000Z", "2026-11-24T10:00:00.000Z", "2026-12-01T10:00:00.000Z")
PRODUCTS = "SELECT id, name, price, year, month, day FROM product ORDER BY id"
RELATIONS = "SELECT relationId, userId, productId FROM user_favorite_products ORDER BY 1"
_sequence = itertools.count(1)


def product_change(event: str, product_id: str, created_at: str, name: str = "") -> dict[str, Any]:
    return _record(
        event,
        f"product#{product_id}",
        {
            "entityType": "product",
            "id": product_id,
            "name": name or f"Product {product_id}",
            "brandId": "brand-1",
            "price": Decimal(len(name)),
            "createdAt": created_at,
            "updatedAt": created_at,
        },
    )


def relation_change(event: str, user_id: str, product_id: str, created_at: str) -> dict[str, Any]:
    relation = keys.relation_id(
        "user_favorite_products", [("user", user_id), ("product", product_id)]
    )
    return _record(
        event,
        f"{keys.JOIN_ROW_PREFIX}#{relation}",
        {
            "entityType": keys.JOIN_ROW_ENTITY_TYPE,
            "relationId": relation,
            "tableName": "user_favorite_products",
            "userId": user_id,
            "productId": product_id,
            "createdAt": created_at,
        },
    )


def _record(event: str, key: str, item: dict[str, Any]) -> dict[str, Any]:
    serialize = TypeSerializer().serialize
    image = {name: serialize(value) for name, value in {"PK": key, "SK": key, **item}.items()}
    record = captured("stream_insert_user")
    record["eventName"] = event
    record["dynamodb"] = {
        "ApproximateCreationDateTime": 1795461734.0,
        "Keys": {"PK": {"S": key}, "SK": {"S": key}},
        "OldImage" if event == "REMOVE" else "NewImage": image,
        "SequenceNumber": f"{next(_sequence):028d}",
        "SizeBytes": 200,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    return record


class Lake:
    """The stream handler and compaction over one store, and the SQL engine reading it
    as a task does (through ``read_through``)."""

    def __init__(self, model: SchemaModel, store: DirectoryObjectStore, sqs: Any, queue: str):
        self.model, self.store, self.sqs, self.queue = model, store, sqs, queue
        self.engine = LocalAthena(
            store.root,
            lake_layers(model),
            workgroup="primary",
            region="us-east-1",
            account_id="123456789012",
            publish=lambda event: None,
            run=lambda job: job(),
        )
        self.merged = merged_tables(model)
        self._tokens = itertools.count()

    def apply(self, *records: dict[str, Any], store: ObjectStore | None = None) -> None:
        response = process_stream_event(
            batch(*records),
            model=self.model,
            object_store=store or self.store,
            sqs_client=self.sqs,
            cascade_queue_url=self.queue,
        )
        assert response == {"batchItemFailures": []}

    def rows(self, sql: str) -> list[tuple[str | None, ...]]:
        execution = self.engine.start(read_through(sql, self.merged), str(next(self._tokens)))
        state = self.engine.execution(execution)
        assert state.state.value == "SUCCEEDED", state.reason
        return list(self.engine.results(execution).rows)

    def objects(self, prefix: str) -> list[str]:
        return [found.key for found in self.store.list(prefix)]


@pytest.fixture
def lake(model: SchemaModel, tmp_path: Path, sqs: Any, cascade_queue: str) -> Iterator[Lake]:
    built = Lake(model, DirectoryObjectStore(tmp_path / "lake"), sqs, cascade_queue)
    yield built
    built.engine.close()


def expected_products(products: dict[str, tuple[str, str]]) -> list[tuple[str | None, ...]]:
    return [
        (pid, name or f"Product {pid}", f"{float(len(name))}", *_partition(created))
        for pid, (name, created) in sorted(products.items())
    ]


def _partition(created_at: str) -> tuple[str, str, str]:
    return created_at[0:4], created_at[5:7], created_at[8:10]


# -- a run --------------------------------------------------------------------------


def test_a_run_folds_each_changed_partition_into_one_file_and_removes_what_it_folded(
    lake: Lake,
) -> None:
    lake.apply(*(product_change("INSERT", f"p{n}", DAYS[n % 2], f"n{n}") for n in range(6)))
    before = lake.rows(PRODUCTS)

    report = compact_lake(lake.model, lake.store)

    assert (report.partitions, report.live_folded, report.rows, report.files_written) == (
        2,
        6,
        6,
        2,
    )
    assert lake.objects("tables/") == []
    compacted = lake.objects("compacted/product/")
    assert len(compacted) == 2 and all(keys.compacted_generation(k) for k in compacted)
    assert lake.rows(PRODUCTS) == before


def test_a_run_with_nothing_changed_reads_and_writes_nothing(lake: Lake) -> None:
    lake.apply(product_change("INSERT", "p1", DAYS[0]))
    compact_lake(lake.model, lake.store)
    files = lake.objects("compacted/")

    again = compact_lake(lake.model, lake.store)

    assert (again.partitions, again.files_written, again.files_deleted) == (0, 0, 0)
    assert lake.objects("compacted/") == files


def test_changes_after_a_run_show_at_once_and_the_next_run_folds_them(lake: Lake) -> None:
    lake.apply(*(product_change("INSERT", f"p{n}", DAYS[0], f"n{n}") for n in range(3)))
    compact_lake(lake.model, lake.store)

    lake.apply(
        product_change("MODIFY", "p0", DAYS[0], "renamed"),
        product_change("REMOVE", "p1", DAYS[0]),
        product_change("INSERT", "p9", DAYS[2], "new"),
    )
    products = {"p0": ("renamed", DAYS[0]), "p2": ("n2", DAYS[0]), "p9": ("new", DAYS[2])}
    assert lake.rows(PRODUCTS) == expected_products(products)
    assert lake.rows("SELECT count(*) FROM product") == [("3",)]

    report = compact_lake(lake.model, lake.store)

    assert (report.partitions, report.live_folded, report.tombstones_folded) == (2, 2, 1)
    assert lake.objects("tables/") == lake.objects("deleted/") == []
    assert lake.rows(PRODUCTS) == expected_products(products)


def test_a_relation_removed_and_added_again_in_one_day_is_there_once(lake: Lake) -> None:
    lake.apply(relation_change("INSERT", "u1", "p1", DAYS[0]))
    compact_lake(lake.model, lake.store)
    lake.apply(
        relation_change("REMOVE", "u1", "p1", DAYS[0]),
        relation_change("INSERT", "u1", "p1", DAYS[0]),
    )
    assert [row[1:] for row in lake.rows(RELATIONS)] == [("u1", "p1")]
    compact_lake(lake.model, lake.store)
    lake.apply(relation_change("REMOVE", "u1", "p1", DAYS[0]))
    assert lake.rows(RELATIONS) == []
    compact_lake(lake.model, lake.store)
    assert lake.rows(RELATIONS) == []


# -- the race -----------------------------------------------------------------------


class InterleavingStore:
    """Runs ``meanwhile`` once, right after compaction read a live file (the one named
    ``item`` if given): the stream handler writing while a compaction of the same
    partition is in flight."""

    def __init__(
        self, inner: DirectoryObjectStore, meanwhile: Callable[[], None], item: str = ""
    ) -> None:
        self.inner, self._meanwhile, self._item = inner, meanwhile, item

    def put(self, key: str, body: bytes) -> None:
        self.inner.put(key, body)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        return self.inner.list(prefix)

    def get(self, key: str) -> tuple[bytes, str] | None:
        found = self.inner.get(key)
        if (
            key.startswith("tables/")
            and key.endswith(f"/{self._item}.parquet")
            and self._meanwhile is not None
        ):
            meanwhile, self._meanwhile = self._meanwhile, None  # type: ignore[assignment]
            meanwhile()
        return found

    def delete_if_unchanged(self, objects: Iterable[StoredObject]) -> set[str]:
        return self.inner.delete_if_unchanged(objects)


@pytest.mark.parametrize("change", ["MODIFY", "REMOVE"])
def test_a_change_delivered_while_its_partition_is_compacted_is_never_lost(
    lake: Lake, change: str
) -> None:
    lake.apply(product_change("INSERT", "p1", DAYS[0], "first"))
    racing = InterleavingStore(
        lake.store, lambda: lake.apply(product_change(change, "p1", DAYS[0], "second")), "p1"
    )

    report = compact_lake(lake.model, racing)

    assert report.kept == 1  # the file changed (or went) after it was read: not compaction's
    truth = {"p1": ("second", DAYS[0])} if change == "MODIFY" else {}
    assert lake.rows(PRODUCTS) == expected_products(truth)
    compact_lake(lake.model, lake.store)
    assert lake.rows(PRODUCTS) == expected_products(truth)
    assert lake.objects("tables/") == lake.objects("deleted/") == []


def test_the_conditional_delete_on_s3_keeps_an_object_written_again(s3: Any) -> None:
    store = S3ObjectStore(s3, BUCKET)
    for name in ("a", "b"):
        store.put(f"tables/t/year=2026/month=01/day=01/{name}.parquet", b"one")
    first, second = store.list("tables/")
    store.put(first.key, b"two")

    assert store.delete_if_unchanged([first, second]) == {second.key}
    assert store.get(first.key) == (b"two", next(iter(store.list(first.key))).etag)
    assert store.get(second.key) is None
    assert store.delete_if_unchanged(store.list(first.key)) == {first.key}
    assert store.delete_if_unchanged([first]) == set()  # gone


# -- stopped anywhere ---------------------------------------------------------------


class Crash(Exception):
    pass


class CrashingStore(InterleavingStore):
    """Stops the run (as a crash would) before its ``writes``-th change to the lake."""

    def __init__(self, inner: DirectoryObjectStore, writes: int) -> None:
        super().__init__(inner, lambda: None)
        self.left = writes

    def _step(self) -> None:
        if self.left == 0:
            raise Crash
        self.left -= 1

    def put(self, key: str, body: bytes) -> None:
        self._step()
        super().put(key, body)

    def delete(self, key: str) -> None:
        self._step()
        super().delete(key)

    def delete_if_unchanged(self, objects: Iterable[StoredObject]) -> set[str]:
        self._step()
        return super().delete_if_unchanged(objects)


def test_a_run_stopped_at_any_step_loses_nothing_and_the_next_one_finishes(
    model: SchemaModel, tmp_path: Path, sqs: Any, cascade_queue: str
) -> None:
    for writes in itertools.count():
        lake = Lake(model, DirectoryObjectStore(tmp_path / f"lake{writes}"), sqs, cascade_queue)
        lake.apply(*(product_change("INSERT", f"p{n}", DAYS[n % 2], f"n{n}") for n in range(4)))
        compact_lake(model, lake.store)
        lake.apply(
            product_change("MODIFY", "p0", DAYS[0], "renamed"),
            product_change("REMOVE", "p1", DAYS[1]),
            product_change("INSERT", "p5", DAYS[1], "new"),
        )
        truth = lake.rows(PRODUCTS)
        try:
            compact_lake(model, CrashingStore(lake.store, writes))
        except Crash:
            pass
        else:
            lake.engine.close()
            break  # the run had fewer changes to make: every stopping point was tried
        assert lake.rows(PRODUCTS) == truth, f"stopped before write {writes}"
        compact_lake(model, lake.store)
        assert lake.rows(PRODUCTS) == truth
        assert lake.objects("tables/") == lake.objects("deleted/") == []
        lake.engine.close()
    # Two partitions, each: a file written, the old generation deleted, what it folded
    # deleted (one batch; a batch stopped halfway is the same as the stops around it).
    assert writes == 6


# -- the property ---------------------------------------------------------------------


def test_queries_answer_what_the_table_holds_whatever_the_interleaving(
    model: SchemaModel, tmp_path: Path, sqs: Any, cascade_queue: str
) -> None:
    """Creates, updates, deletes, relations added and removed, batches delivered again
    (as Lambda retries them), compaction runs, stopped runs and runs racing a write, in
    any order: after every step the SQL answers equal the table's truth."""
    directories = itertools.count()

    class Interleavings(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            root = tmp_path / f"lake{next(directories)}"
            self.lake = Lake(model, DirectoryObjectStore(root), sqs, cascade_queue)
            self.products: dict[str, tuple[str, str]] = {}
            self.relations: dict[tuple[str, str], str] = {}
            self.delivered: list[dict[str, Any]] = []

        def teardown(self) -> None:
            self.lake.engine.close()

        def _deliver(self, record: dict[str, Any]) -> None:
            self.lake.apply(record)
            self.delivered.append(record)

        @rule(pid=st.sampled_from(["p1", "p2", "p3", "p4"]), day=st.sampled_from(DAYS))
        def create(self, pid: str, day: str) -> None:
            if pid not in self.products:
                self.products[pid] = (f"{pid}@{day[:10]}", day)
                self._deliver(product_change("INSERT", pid, day, self.products[pid][0]))

        @rule(
            pid=st.sampled_from(["p1", "p2", "p3", "p4"]),
            name=st.text("abc", min_size=1, max_size=4),
        )
        def update(self, pid: str, name: str) -> None:
            if pid in self.products:
                self.products[pid] = (name, self.products[pid][1])
                self._deliver(product_change("MODIFY", pid, self.products[pid][1], name))

        @rule(pid=st.sampled_from(["p1", "p2", "p3", "p4"]))
        def delete(self, pid: str) -> None:
            if pid in self.products:
                _, day = self.products.pop(pid)
                self._deliver(product_change("REMOVE", pid, day))

        @rule(
            user=st.sampled_from(["u1", "u2"]),
            pid=st.sampled_from(["p1", "p2"]),
            day=st.sampled_from(DAYS[:2]),
        )
        def relate(self, user: str, pid: str, day: str) -> None:
            if (user, pid) not in self.relations:
                self.relations[(user, pid)] = day
                self._deliver(relation_change("INSERT", user, pid, day))

        @rule(user=st.sampled_from(["u1", "u2"]), pid=st.sampled_from(["p1", "p2"]))
        def unrelate(self, user: str, pid: str) -> None:
            if (user, pid) in self.relations:
                day = self.relations.pop((user, pid))
                self._deliver(relation_change("REMOVE", user, pid, day))

        @rule(back=st.integers(1, 6))
        def redeliver(self, back: int) -> None:
            """Lambda retries from a record on: every later one comes again, in order."""
            if self.delivered:
                self.lake.apply(*self.delivered[-back:])

        @rule()
        def compact(self) -> None:
            compact_lake(model, self.lake.store)

        @rule(writes=st.integers(0, 8))
        def compact_stopped(self, writes: int) -> None:
            with contextlib.suppress(Crash):
                compact_lake(model, CrashingStore(self.lake.store, writes))

        @rule(
            pid=st.sampled_from(["p1", "p2", "p3", "p4"]),
            name=st.text("xyz", min_size=1, max_size=3),
        )
        def compact_racing_an_update(self, pid: str, name: str) -> None:
            def meanwhile() -> None:
                if pid in self.products:
                    self.update(pid, name)

            compact_lake(model, InterleavingStore(self.lake.store, meanwhile, pid))

        @invariant()
        def answers_equal_the_table(self) -> None:
            assert self.lake.rows(PRODUCTS) == expected_products(self.products)
            relations = [(u, p) for (u, p) in sorted(self.relations)]
            assert sorted(row[1:] for row in self.lake.rows(RELATIONS)) == relations
            assert self.lake.rows("SELECT count(*) FROM product") == [(str(len(self.products)),)]

    run_state_machine_as_test(
        Interleavings,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def test_make_compact_folds_the_local_lake(lake: Lake, tmp_path: Path) -> None:
    """``make compact`` (``python -m chalicelib.lake.compaction``) on ``OCG_LOCAL_DIR``."""
    local_dir = tmp_path / "local"
    store = DirectoryObjectStore(local_dir / "lake")
    lake.apply(*(product_change("INSERT", f"p{n}", DAYS[n % 2]) for n in range(3)), store=store)
    environment = {**os.environ, "OCG_MODE": "local", "OCG_LOCAL_DIR": str(local_dir)}
    environment.pop("OCG_SCHEMA_FILE", None)

    ran = subprocess.run(
        [sys.executable, "-m", "chalicelib.lake.compaction"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert (report["partitions"], report["liveFolded"], report["tables"]) == (2, 3, {"product": 2})
    assert [found.key for found in store.list("tables/")] == []
    assert len(list(store.list("compacted/product/"))) == 2
