"""protocol/transport.py: a response's head and body leave in one send, on a real uvicorn
server on loopback, and nothing about HTTP changes (keep-alive, a body in several parts,
closing after the response)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from tests.local_servers import free_port

from modelship.tracking.protocol import transport

SENDS: list[bytes] = []
"""What reached the socket's transport, one item per write call."""


class Spy:
    def __init__(self, t: asyncio.Transport) -> None:
        self._t = t

    def write(self, data: bytes) -> None:
        SENDS.append(bytes(data))
        self._t.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class JoinedSpied(transport.JoinedHttpToolsProtocol):
    def connection_made(self, t: asyncio.Transport) -> None:  # type: ignore[override]
        transport.HttpToolsProtocol.connection_made(self, transport.JoinedWrites(Spy(t), self.loop))  # type: ignore[arg-type]


class PlainSpied(transport.HttpToolsProtocol):
    """uvicorn's own protocol, for the comparison."""

    def connection_made(self, t: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Spy(t))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json")]
    if scope["path"] == "/parts":  # streamed: no content-length, three parts
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in (b"[1,", b"2,", b"3]"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0)  # a turn of the loop between parts
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", b"2"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def _serve(protocol: type[Any]) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=protocol)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        threading.Event().wait(0.01)
    yield port
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    yield from _serve(JoinedSpied)


@pytest.fixture(scope="module")
def plain() -> Iterator[int]:
    yield from _serve(PlainSpied)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _three_posts(port: int) -> list[bytes]:
    SENDS.clear()
    big = b'{"metrics": [' + b",".join([b'{"key": "m", "value": 1.0, "timestamp": 1, "step": 1}'] * 2000) + b"]}"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(3):  # three requests on one connection
            sock.sendall(
                b"POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big
            )
            response = _read_response(sock)
            assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"\r\n\r\n{}")
    return list(SENDS)


def test_head_and_body_are_one_send_and_keep_alive_holds(server: int, plain: int) -> None:
    sends = _three_posts(server)
    assert len(sends) == 3
    assert all(s.startswith(b"HTTP/1.1 200") and s.endswith(b"\r\n\r\n{}") for s in sends)
    assert len(_three_posts(plain)) == 6  # uvicorn's own transport: a head and a body each time


def test_a_streamed_body_still_arrives_whole_and_a_close_sends_what_was_written(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /parts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes after the response
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"3\r\n[1,\r\n2\r\n2,\r\n2\r\n3]\r\n0\r\n\r\n"


def test_writes_of_one_turn_are_joined_and_close_flushes_first() -> None:
    class Fake:
        def __init__(self) -> None:
            self.calls: list[tuple[str, bytes]] = []

        def write(self, data: bytes) -> None:
            self.calls.append(("write", data))

        def close(self) -> None:
            self.calls.append(("close", b""))

        def is_closing(self) -> bool:
            return False

    async def main() -> list[tuple[str, bytes]]:
        fake = Fake()
        joined = transport.JoinedWrites(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        joined.write(b"a")
        joined.write(b"")  # nothing to send: no call
        joined.write(bytearray(b"b"))
        assert fake.calls == []  # nothing sent within the turn
        await asyncio.sleep(0)  # the end of the turn
        joined.write(b"c")
        joined.close()  # before the turn ends: c goes first, then the close
        return fake.calls

    assert asyncio.run(main()) == [("write", b"ab"), ("write", b"c"), ("close", b"")]
