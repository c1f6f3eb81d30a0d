"""Subscriptions as an app receives them: ``graphql-ws``'s own client (pinned in
``tests/ws_client/package.json``, run by Node) against the real ``chalice local`` that
``make run`` starts, on its WebSocket port."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.local.chalice_local import ChaliceLocal, serving

CLIENT = ROOT / "tests" / "ws_client"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[ChaliceLocal]:
    with serving(tmp_path) as server:
        yield server


class Subscriber:
    """One ``node client.mjs`` process and the lines it printed."""

    def __init__(
        self, local: ChaliceLocal, query: str, variables: dict[str, Any], authorization: str = "-"
    ) -> None:
        node = shutil.which("node")
        assert node, "Node.js runs the graphql-ws client (it is on this project's machines and CI)"
        assert (CLIENT / "node_modules" / "graphql-ws").is_dir(), "run make install"
        self.process = subprocess.Popen(
            [node, "client.mjs", local.ws_url, authorization, query, json.dumps(variables)],
            cwd=CLIENT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        assert text, (
            f"the client ended: {self.process.stderr.read() if self.process.stderr else ''}"
        )
        line: dict[str, Any] = json.loads(text)
        self.lines.append(line)
        return line

    def until(self, kind: str) -> list[dict[str, Any]]:
        """Lines up to and including the first of ``kind``."""
        seen = []
        while True:
            line = self.read()
            seen.append(line)
            if line["type"] == kind:
                return seen
            assert line["type"] != "timeout", seen

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def test_a_task_subscription_receives_running_then_the_typed_result(local: ChaliceLocal) -> None:
    ada = local.graphql(
        'mutation { createUser(input: {name: "Ada", email: "ada@example.com"}) { id } }'
    )["data"]["createUser"]["id"]
    address = f'userId: "{ada}", city: "Paris", country: "FR"'
    local.graphql(f"mutation {{ createAddress(input: {{{address}}}) {{ id }} }}")
    time.sleep(1.5)  # the lake follows the table
    task = local.graphql('mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }')["data"][
        "triggerTaskUsersByCity"
    ]["taskId"]
    subscriber = Subscriber(
        local,
        "subscription($t: ID!) { onTaskResultUsersByCity(taskId: $t) { "
        "taskStatus result { name total } } }",
        {"t": task},
    )
    try:
        lines = subscriber.until("complete")
    finally:
        subscriber.close()

    states = [
        line["payload"]["data"]["onTaskResultUsersByCity"]
        for line in lines
        if line["type"] == "next"
    ]
    assert states[-1] == {"taskStatus": "SUCCEEDED", "result": [{"name": "Ada", "total": 1}]}
    assert [s["taskStatus"] for s in states[:-1]] in ([], ["RUNNING"])


def test_a_filtered_subscription_sees_only_matching_creations(local: ChaliceLocal) -> None:
    subscriber = Subscriber(local, 'subscription { onCreateUser(name: "Ada") { name email } }', {})
    try:
        subscriber.until("ready")
        for name in ("Bob", "Ada", "Cleo"):
            user = f'name: "{name}", email: "{name}@example.com"'
            local.graphql(f"mutation {{ createUser(input: {{{user}}}) {{ id }} }}")
        line = subscriber.read()
    finally:
        subscriber.close()

    assert line == {
        "type": "next",
        "payload": {"data": {"onCreateUser": {"name": "Ada", "email": "Ada@example.com"}}},
    }


def test_a_bad_token_is_refused_at_connection_init(local: ChaliceLocal) -> None:
    subscriber = Subscriber(local, "subscription { onCreateUser { id } }", {}, "Bearer a.b.c")
    try:
        line = subscriber.until("closed")[-1]
    finally:
        subscriber.close()

    assert line["code"] == 4403
    assert "Forbidden" in line["reason"]
