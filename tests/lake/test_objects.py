from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from chalicelib.lake.objects import DirectoryObjectStore, ObjectStore, S3ObjectStore
from tests.lake.support import BUCKET, files_under

KEY = "tables/user/year=2026/month=11/day=23/u1.parquet"


def test_s3_store_puts_overwrites_and_deletes(s3: Any) -> None:
    store: ObjectStore = S3ObjectStore(s3, BUCKET)
    store.put(KEY, b"one")
    store.put(KEY, b"two")
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"two"
    store.delete(KEY)
    store.delete(KEY)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_directory_store_mirrors_the_key_layout(tmp_path: Path) -> None:
    store: ObjectStore = DirectoryObjectStore(tmp_path)
    store.put(KEY, b"one")
    store.put(KEY, b"two")
    assert files_under(tmp_path) == {KEY: b"two"}
    assert stat.S_IMODE((tmp_path / KEY).stat().st_mode) == 0o644
    store.delete(KEY)
    store.delete(KEY)
    store.delete("tables/never/written.parquet")
    assert files_under(tmp_path) == {}


def test_directory_store_leaves_no_temporary_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, target: Path) -> Path:
        raise OSError("disk full")

    store = DirectoryObjectStore(tmp_path)
    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        store.put(KEY, b"one")
    assert files_under(tmp_path) == {}


@pytest.mark.parametrize("key", ["", ".", "..", "/etc/passwd", "tables/../../escape"])
def test_directory_store_refuses_keys_outside_its_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="not a relative path"):
        DirectoryObjectStore(tmp_path).put(key, b"x")


def test_the_directory_store_reports_each_change(tmp_path: Path) -> None:
    changed: list[str] = []
    store = DirectoryObjectStore(tmp_path, on_change=changed.append)

    store.put("tables/user/a.parquet", b"1")
    store.delete("tables/user/a.parquet")
    store.delete("tables/user/missing.parquet")

    assert changed == ["tables/user/a.parquet"] * 2 + ["tables/user/missing.parquet"]
