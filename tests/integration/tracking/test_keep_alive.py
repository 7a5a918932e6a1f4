"""An idle keep-alive connection stays open longer than a training step's pause.

The mlflow client (a ``requests`` session) and the sidecar (an httpx pool) reuse idle
connections. A server that closes them after a few idle seconds (uvicorn's default is 5)
races a client that sends at that moment, and urllib3 does not retry a POST: a log call
between two slow epochs would fail. The tracking server and the sidecar keep idle
connections for ``KEEP_ALIVE_S``; the test waits past uvicorn's default and uses the same connection.
"""

from __future__ import annotations

import socket
import time

import pytest

from modelship.tracking.protocol.http import KEEP_ALIVE_S

from .conftest import Proc

pytestmark = pytest.mark.integration

UVICORN_DEFAULT_KEEP_ALIVE_S = 5


def exchange(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reply = b""
    while not reply.endswith(b"OK"):
        chunk = sock.recv(4096)
        assert chunk, f"the server closed the connection; got {reply!r}"
        reply += chunk
    return reply


@pytest.mark.parametrize("which", ["tracking_server", "tracking_sidecar"])
def test_an_idle_connection_outlives_uvicorns_default_and_is_reused(which: str, request: pytest.FixtureRequest) -> None:
    proc: Proc = request.getfixturevalue(which)
    assert KEEP_ALIVE_S > UVICORN_DEFAULT_KEEP_ALIVE_S
    with socket.create_connection(("127.0.0.1", proc.port), timeout=30) as sock:
        assert exchange(sock).startswith(b"HTTP/1.1 200")
        time.sleep(UVICORN_DEFAULT_KEEP_ALIVE_S + 2)
        # closed by the server meanwhile: a peek reads end-of-file at once
        sock.setblocking(False)
        try:
            peeked = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            peeked = None  # nothing to read and not closed: still open
        sock.setblocking(True)
        assert peeked is None, "the server closed an idle keep-alive connection"
        assert exchange(sock).startswith(b"HTTP/1.1 200")
