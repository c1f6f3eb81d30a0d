"""Where lake objects land: S3 on AWS, a directory mirroring the S3 layout locally.

The stream handler only knows :class:`ObjectStore`; which one it gets is decided at
start-up. Both stores are safe to call from several threads at once, and both treat
deleting a missing key as done, so a redelivered REMOVE is harmless.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


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
            written.replace(path)
        except BaseException:
            written.unlink(missing_ok=True)
            raise
        self._changed(key)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
        self._changed(key)

    def _changed(self, key: str) -> None:
        if self._on_change is not None:
            self._on_change(key)
