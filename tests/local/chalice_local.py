"""``make run``'s server as a test drives it: the real ``chalice local`` process on a free
loopback port, a local directory of the test's, and a way to stop it as a user would."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

START_TIMEOUT = 90.0
REQUEST_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ChaliceLocal:
    """One ``chalice local --stage local --no-autoreload`` process."""

    def __init__(self, local_dir: Path, log: Path) -> None:
        self.local_dir, self.log = local_dir, log
        self.port = free_port()
        self.ws_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "OCG_LOCAL_DIR": str(self.local_dir), "WS_PORT": str(self.ws_port)}
        for name in ("OCG_MODE", "OCG_SCHEMA_FILE", "OCG_PROJECT"):
            env.pop(name, None)  # the stage's own settings, as `make run` gets them
        command = [str(Path(sys.executable).parent / "chalice"), "local", "--stage", "local"]
        command += ["--port", str(self.port), "--host", "127.0.0.1", "--no-autoreload"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"chalice local exited:\n{self.log.read_text()}")
            try:
                self.graphql("{ __typename }")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"chalice local not serving after {START_TIMEOUT} s:\n"
                        f"{self.log.read_text()}"
                    ) from None
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    def token(self, sub: str) -> str:
        """A signed-in user's ID token for this server, as a user makes one
        (``python -m chalicelib.auth token``)."""
        made = subprocess.run(
            [sys.executable, "-m", "chalicelib.auth", "token", "--sub", sub],
            cwd=ROOT,
            env={**os.environ, "OCG_LOCAL_DIR": str(self.local_dir)},
            capture_output=True,
            text=True,
            check=True,
        )
        return made.stdout.strip()

    def graphql(self, query: str) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request(
                "POST",
                "/graphql",
                body=json.dumps({"query": query}).encode(),
                headers={"content-type": "application/json"},
            )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}: {body!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """Send ``how`` (Ctrl-C is SIGINT) and wait for the process to end."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def serving(directory: Path) -> Iterator[ChaliceLocal]:
    """``make run`` with its local state and log in ``directory``, serving until the block
    ends, then killed whatever happened (each test's state is its own)."""
    local = ChaliceLocal(directory / "local", directory / "chalice-local.log")
    try:
        local.start()
        yield local
    finally:
        local.stop(signal.SIGKILL)
