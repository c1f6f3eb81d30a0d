"""Where lake objects land: S3 on AWS, a directory mirroring the S3 layout locally.

The stream handler only knows :class:`ObjectWriter`, compaction :class:`ObjectStore`;
which store they get is decided at start-up. Both stores are safe to call from several
threads at once, and both treat deleting a missing key as done, so a redelivered REMOVE
is harmless.

Compaction also reads what it folds and removes it only if it is still what it read
(:meth:`ObjectStore.delete_if_unchanged`): S3's conditional delete (``If-Match`` with
the ETag), and locally a check and a removal under the lock every write of the
directory takes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from botocore.exceptions import ClientError

# S3 requests a store makes at once (reads and conditional deletes of many objects).
CONCURRENT_REQUESTS = 32
# What S3 answers a conditional delete of an object that changed, or is gone.
_NOT_AS_READ = frozenset(
    {"PreconditionFailed", "NoSuchKey", "404", "412", "ConditionalRequestConflict"}
)


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str


class ObjectWriter(Protocol):
    """What the stream handler needs: whole-object writes and deletes."""

    def put(self, key: str, body: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


class ObjectStore(ObjectWriter, Protocol):
    """What compaction needs besides: listing, reading, and deleting what it read."""

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``."""
        ...

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None if there is none."""
        ...

    def delete_if_unchanged(self, objects: Iterable[StoredObject]) -> set[str]:
        """Delete each object only if it is still the version its ETag names; the keys
        deleted (not those written again since, or gone)."""
        ...


class S3ObjectStore:
    """Objects in one bucket.

    boto3 clients are thread-safe, but their connection pool holds 10 connections by
    default: give the client ``Config(max_pool_connections=...)`` at least as large as
    the stream handler's worker count, or the extra connections are opened and dropped.
    """

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success.
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        for page in pages:
            for found in page.get("Contents", ()):
                yield StoredObject(found["Key"], found["ETag"])

    def get(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        return response["Body"].read(), response["ETag"]

    def delete_if_unchanged(self, objects: Iterable[StoredObject]) -> set[str]:
        # One request each (DeleteObjects takes ETags too, but moto ignores them, so the
        # condition could not be tested): concurrent, as the GETs before them.
        objects = list(objects)
        if not objects:
            return set()
        with ThreadPoolExecutor(max_workers=min(CONCURRENT_REQUESTS, len(objects))) as pool:
            deleted = pool.map(self._delete_if_unchanged, objects)
            return {found.key for found, done in zip(objects, deleted, strict=True) if done}

    def _delete_if_unchanged(self, found: StoredObject) -> bool:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=found.key, IfMatch=found.etag)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_AS_READ:
                return False
            raise
        return True


class DirectoryObjectStore:
    """Objects as files ``root/<key>``, so pandas or DuckDB can open the local lake.

    A file is written next to its final name and renamed over it: a reader never sees
    a half-written file, and the temporary name does not end in ``.parquet``, so globs
    over the lake skip it.
    """

    def __init__(self, root: Path, on_change: Callable[[str], None] | None = None) -> None:
        """``on_change(key)`` is called after each write and delete: the local query
        engine follows the lake with it instead of discovering changes at query time."""
        self.root = root
        self._on_change = on_change
        # Writes and conditional deletes exclude each other, across threads and across
        # processes (``make compact`` beside ``make run``): ``.<root name>.lock`` beside
        # the root, so the lake folder holds nothing but the lake.
        self._thread_lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None

    def path(self, key: str) -> Path:
        """The file of ``key``; keys that would leave ``root`` are refused."""
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or ".." in parts:
            raise ValueError(f"object key {key!r} is not a relative path inside the store")
        return self.root.joinpath(*parts)

    def put(self, key: str, body: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        written = Path(temporary)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(body)
            # mkstemp creates the file readable by its owner only; lake files are data
            # to share with the user's tools.
            written.chmod(0o644)
            with self._exclusive():
                written.replace(path)
        except BaseException:
            written.unlink(missing_ok=True)
            raise
        self._changed(key)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        self._changed(key)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Like S3's listing, but without the objects' temporary files (``.``-names)."""
        base = prefix.rpartition("/")[0]
        top = self.path(base) if base else self.root
        if not top.is_dir():
            return
        root = str(self.root) + os.sep
        for directory, folders, files in os.walk(top):
            folders.sort()
            base = directory.removeprefix(root).replace(os.sep, "/")
            for name in sorted(files):
                key = f"{base}/{name}"
                if name.startswith(".") or not key.startswith(prefix):
                    continue
                etag = _etag(Path(directory, name))
                if etag is not None:
                    yield StoredObject(key, etag)

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The version is noted before the bytes are read: a file rewritten in between
        reads newer than its version says, so a conditional delete by that version
        leaves it, which is safe; the other way round would delete unread bytes."""
        path = self.path(key)
        etag = _etag(path)
        if etag is None:
            return None
        try:
            return path.read_bytes(), etag
        except FileNotFoundError:
            return None

    def delete_if_unchanged(self, objects: Iterable[StoredObject]) -> set[str]:
        deleted = set()
        with self._exclusive():
            for found in objects:
                path = self.path(found.key)
                if _etag(path) == found.etag:
                    path.unlink()
                    deleted.add(found.key)
        for key in sorted(deleted):
            self._changed(key)
        return deleted

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._thread_lock:
            if self._lock_file is None:
                self.root.parent.mkdir(parents=True, exist_ok=True)
                self._lock_file = (self.root.parent / f".{self.root.name}.lock").open("ab")
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _changed(self, key: str) -> None:
        if self._on_change is not None:
            self._on_change(key)


def _etag(path: Path) -> str | None:
    """A file's version, as an ETag names an object's: a rewrite renames a new file over
    it, so its inode changes even when its size and time do not."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"
