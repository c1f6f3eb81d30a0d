"""A real listen backlog for ``chalice local`` (``make run``) on the embedded default.

Chalice's local server is the standard library's: ``chalice.local.ThreadedHTTPServer``
(``ThreadingMixIn`` + ``http.server.HTTPServer``), which ``socketserver.TCPServer``
puts in ``listen(request_queue_size)`` with socketserver's default of 5. Connections
beyond five that arrive before the accepting thread takes them are dropped or reset:
with 32 concurrent clients, 5-10% of them (FIELD-NOTES, "Measured on the built system").

``chalice local`` has no option for it, so :func:`widen_listen_backlog` sets
``request_queue_size`` on Chalice's own ``ThreadedHTTPServer`` class: an attribute
socketserver documents as one for subclasses to override, on a class that only the
local server uses. ``chalice local`` imports ``app.py`` (which calls this through
``chalicelib.services.boot``) before it builds the server, so the server it then
creates listens with the larger backlog. Nothing else changes: the stdlib's
``HTTPServer`` and every other server in the process keep their own value.

It only runs on the embedded default (``OCG_MODE=local``); a Lambda function never
imports ``chalice.local``. Because it relies on how Chalice builds that server, it
checks that first and fails loudly (:class:`LocalServerError`) on a Chalice whose
local server it was not verified against, instead of silently doing nothing.
"""

from __future__ import annotations

import inspect
import socket
import socketserver

# The Chalice releases whose chalice/local.py and chalice/cli/__init__.py were read:
# `chalice local` -> create_local_server -> LocalDevServer(app, config, host, port)
# -> server_cls=ThreadedHTTPServer, a TCPServer listening with request_queue_size.
VERIFIED_CHALICE_VERSIONS = ("1.34.0",)
# As many pending connections as the system allows (Linux caps it at net.core.somaxconn).
LISTEN_BACKLOG = socket.SOMAXCONN


class LocalServerError(RuntimeError):
    """Chalice's local server is not built the way the backlog hook expects."""


def widen_listen_backlog(backlog: int = LISTEN_BACKLOG) -> None:
    """Make the server ``chalice local`` creates from now on listen with ``backlog``.

    Idempotent. Raises :class:`LocalServerError` if the installed Chalice is not one
    this was verified against, or if its local server is no longer built as expected.
    """
    import chalice
    from chalice import local

    version = getattr(chalice, "__version__", "unknown")

    def refuse(problem: str) -> LocalServerError:
        return LocalServerError(
            f"chalice {version}: {problem}. The listen backlog of `chalice local` "
            f"(chalicelib/local/server.py) was verified with chalice "
            f"{', '.join(VERIFIED_CHALICE_VERSIONS)} only: read chalice/local.py "
            "(LocalDevServer, ThreadedHTTPServer) again and update the hook"
        )

    if version not in VERIFIED_CHALICE_VERSIONS:
        raise refuse("not a verified version")
    server_cls = getattr(local, "ThreadedHTTPServer", None)
    dev_server = getattr(local, "LocalDevServer", None)
    if not isinstance(server_cls, type) or not isinstance(dev_server, type):
        raise refuse("chalice.local lacks ThreadedHTTPServer or LocalDevServer")
    if not issubclass(server_cls, socketserver.TCPServer):
        raise refuse("ThreadedHTTPServer is not a socketserver.TCPServer")
    if server_cls.server_activate is not socketserver.TCPServer.server_activate:
        raise refuse("ThreadedHTTPServer no longer listens through TCPServer.server_activate")
    parameter = inspect.signature(dev_server).parameters.get("server_cls")
    if parameter is None or parameter.default is not server_cls:
        raise refuse("LocalDevServer no longer builds a ThreadedHTTPServer by default")
    current = server_cls.request_queue_size
    if current != backlog and current != socketserver.TCPServer.request_queue_size:
        raise refuse(f"ThreadedHTTPServer.request_queue_size is already {current}")
    server_cls.request_queue_size = backlog
