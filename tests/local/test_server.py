"""``chalice local`` (what ``make run`` serves) under concurrent clients, and the hook
that gives its server a real listen backlog (chalicelib/local/server.py)."""

from __future__ import annotations

import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

import chalice
import pytest
from chalice import local as chalice_local

from chalicelib.local import server
from tests.local.chalice_local import REQUEST_TIMEOUT, ChaliceLocal

CLIENTS = 64
ROUNDS = 4


def test_chalice_local_answers_every_one_of_many_concurrent_clients(
    make_run: ChaliceLocal,
) -> None:
    """With socketserver's backlog of 5, a quarter to a half of these connections were
    reset before reaching the app."""
    outcomes: list[Any] = []
    outcomes_lock = threading.Lock()

    def client(start: threading.Barrier) -> None:
        try:
            start.wait(timeout=REQUEST_TIMEOUT)
            outcome: Any = make_run.graphql("{ __typename }")
        except Exception as error:  # a reset, a refusal, a timeout, an HTTP error: all count
            outcome = error
        with outcomes_lock:
            outcomes.append(outcome)

    for _ in range(ROUNDS):
        start = threading.Barrier(CLIENTS)
        threads = [threading.Thread(target=client, args=(start,)) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=2 * REQUEST_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads)

    failures = [repr(o) for o in outcomes if isinstance(o, Exception)]
    assert failures == [], f"{len(failures)} of {len(outcomes)} requests failed"
    assert outcomes == [{"data": {"__typename": "Query"}}] * CLIENTS * ROUNDS


# -- the hook ----------------------------------------------------------------------


@pytest.fixture
def server_cls(monkeypatch: pytest.MonkeyPatch) -> type[socketserver.TCPServer]:
    """Chalice's server class, its backlog restored after the test."""
    cls: type[socketserver.TCPServer] = chalice_local.ThreadedHTTPServer
    monkeypatch.setattr(cls, "request_queue_size", cls.request_queue_size)
    return cls


def test_the_hook_gives_chalice_local_s_server_the_backlog(
    server_cls: type[socketserver.TCPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_cls, "request_queue_size", socketserver.TCPServer.request_queue_size)

    server.widen_listen_backlog()
    server.widen_listen_backlog()  # idempotent

    assert server_cls.request_queue_size == socket.SOMAXCONN
    # Only Chalice's class: the standard library's servers keep their default.
    assert socketserver.TCPServer.request_queue_size == 5
    built = chalice_local.LocalDevServer(object(), object(), "127.0.0.1", 0)  # type: ignore[arg-type]
    try:
        assert isinstance(built.server, server_cls)
        assert built.server.request_queue_size == socket.SOMAXCONN
    finally:
        built.server.server_close()


def test_the_hook_refuses_a_chalice_it_was_not_verified_with(
    server_cls: type[socketserver.TCPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chalice, "__version__", "9.9.9")

    with pytest.raises(server.LocalServerError, match=r"chalice 9\.9\.9: not a verified version"):
        server.widen_listen_backlog()


def test_the_hook_refuses_a_local_server_built_differently(
    server_cls: type[socketserver.TCPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    class OtherDevServer:
        def __init__(self, server_cls: Any = socketserver.TCPServer) -> None: ...

    monkeypatch.setattr(chalice_local, "LocalDevServer", OtherDevServer)

    with pytest.raises(server.LocalServerError, match="no longer builds a ThreadedHTTPServer"):
        server.widen_listen_backlog()


def test_local_mode_start_up_fails_loudly_when_the_hook_cannot_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chalice, "__version__", "9.9.9")
    monkeypatch.setenv("OCG_MODE", "local")
    monkeypatch.setenv("OCG_LOCAL_DIR", str(tmp_path))
    from chalicelib.services import boot

    with pytest.raises(SystemExit, match="listen backlog of `chalice local`"):
        boot()
