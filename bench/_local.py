"""What the local-default benchmarks share: GraphQL over HTTP, and a real
``chalice local`` (as ``make run`` starts it) on a local directory of their own."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Api:
    """GraphQL over HTTP to the local server, one connection per request."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            body = json.dumps({"query": query, "variables": variables or {}})
            connection.request("POST", "/graphql", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        result: dict[str, Any] = json.loads(payload)
        if response.status != 200 or result.get("errors"):
            raise RuntimeError(f"HTTP {response.status}: {payload[:500]!r}")
        data: dict[str, Any] = result["data"]
        return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def chalice_local(local_dir: str, port: int) -> Iterator[float]:
    """``make run``'s server on ``local_dir``, killed at the end; yields the seconds it
    took to answer its first request."""
    environment = {**os.environ, "OCG_LOCAL_DIR": local_dir}
    for name in ("OCG_MODE", "OCG_PROJECT"):
        environment.pop(name, None)
    command = [str(Path(sys.executable).with_name("chalice")), "local", "--stage", "local"]
    command += ["--port", str(port), "--no-autoreload"]
    started = time.perf_counter()
    server = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                Api(port)("{ __typename }")
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - started > 300:
                    raise
                time.sleep(0.05)
        yield time.perf_counter() - started
    finally:
        server.kill()
        server.wait()
