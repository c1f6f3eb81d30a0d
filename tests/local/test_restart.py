"""``make run`` stopped in the middle of a burst of writes, by Ctrl-C, SIGTERM or
``kill -9``, then started again: every acknowledged write is readable, listed and in the
lake, and nothing half-exists."""

from __future__ import annotations

import http.client
import signal
import threading
import time
from pathlib import Path

import pytest

from chalicelib.keys import LAKE_PREFIX
from tests.local.chalice_local import ChaliceLocal

WRITERS = 4
WRITES_BEFORE_STOP = 40
LAKE_TIMEOUT = 60.0


def listed_users(server: ChaliceLocal) -> set[str]:
    ids: set[str] = set()
    token = "null"
    while True:
        page = server.graphql(
            f"{{ listUser(limit: 100, nextToken: {token}) {{ items {{ id }} nextToken }} }}"
        )["data"]["listUser"]
        ids |= {item["id"] for item in page["items"]}
        if page["nextToken"] is None:
            return ids
        token = f'"{page["nextToken"]}"'


def lake_users(local_dir: Path) -> set[str]:
    return {path.stem for path in (local_dir / "lake" / LAKE_PREFIX / "user").rglob("*.parquet")}


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_every_acknowledged_write_survives_a_stop_in_a_burst(
    make_run: ChaliceLocal, stop: signal.Signals
) -> None:
    server = make_run
    acknowledged: list[str] = []
    lock = threading.Lock()
    stopping = threading.Event()

    def write(writer: int) -> None:
        for number in range(10_000):
            if stopping.is_set():
                return
            try:
                data = server.graphql(
                    f'mutation {{ createUser(input: {{name: "w{writer}-{number}", '
                    f'email: "w{writer}@example.com"}}) {{ id }} }}'
                )
            except (OSError, http.client.HTTPException):
                return  # the server is gone (mid-answer too): this write was never acknowledged
            with lock:
                acknowledged.append(data["data"]["createUser"]["id"])

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    while len(acknowledged) < WRITES_BEFORE_STOP:
        time.sleep(0.01)
    server.stop(stop)  # in the middle of the burst
    stopping.set()
    for thread in writers:
        thread.join()

    server.start()

    listed = listed_users(server)
    assert set(acknowledged) <= listed
    for user_id in acknowledged[:: max(1, len(acknowledged) // 10)]:
        read = server.graphql(f'{{ readUser(id: "{user_id}") {{ id }} }}')
        assert read["data"]["readUser"] == {"id": user_id}
    # The lake follows the table: the same users, none half-written, none left over.
    deadline = time.monotonic() + LAKE_TIMEOUT
    while lake_users(server.local_dir) != listed and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lake_users(server.local_dir) == listed


def test_a_task_that_finished_before_a_restart_still_has_its_result(
    make_run: ChaliceLocal,
) -> None:
    server = make_run
    for name in ("Ada", "Bob"):
        user = server.graphql(
            f'mutation {{ createUser(input: {{name: "{name}", email: "x@example.com"}}) {{ id }} }}'
        )["data"]["createUser"]["id"]
        server.graphql(
            f'mutation {{ createAddress(input: {{userId: "{user}", city: "Paris", '
            'country: "FR"}) { id } }'
        )
    result = "{{ taskResultUsersByCity(taskId: {0}) {{ taskStatus result {{ name }} }} }}"
    deadline = time.monotonic() + LAKE_TIMEOUT
    while True:  # the lake has them all, and the task sees them
        task = server.graphql('mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }')
        task_id = f'"{task["data"]["triggerTaskUsersByCity"]["taskId"]}"'
        answer = server.graphql(result.format(task_id))["data"]["taskResultUsersByCity"]
        while answer["taskStatus"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
            answer = server.graphql(result.format(task_id))["data"]["taskResultUsersByCity"]
        if len(answer["result"] or ()) == 2 or time.monotonic() > deadline:
            break
    assert answer == {"taskStatus": "SUCCEEDED", "result": [{"name": "Ada"}, {"name": "Bob"}]}
    first = server.graphql(
        f"{{ taskResultUsersByCity(taskId: {task_id}, limit: 1) {{ nextToken }} }}"
    )["data"]["taskResultUsersByCity"]["nextToken"]

    server.stop(signal.SIGKILL)
    server.start()

    again = server.graphql(result.format(task_id))
    assert again == {"data": {"taskResultUsersByCity": answer}}
    rest = server.graphql(
        f'{{ taskResultUsersByCity(taskId: {task_id}, nextToken: "{first}") '
        "{ result { name } nextToken } }"
    )
    assert rest == {
        "data": {"taskResultUsersByCity": {"result": [{"name": "Bob"}], "nextToken": None}}
    }
