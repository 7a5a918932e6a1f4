"""uvicorn's HTTP protocol with a response's writes joined into one send.

uvicorn writes a response's head on ``http.response.start`` and its body on
``http.response.body``: two ``send`` system calls, and on loopback two TCP segments, each
waking the client. For the tracking server's hot writes (a 102 KiB log-batch answered with
``{}``) those two sends were a seventh of the server's CPU per batch under py-spy
(benchmarks/tracking/README.md). Here the transport keeps what is written within one turn
of the event loop and sends it at the end of that turn, in one call: the head and the body
of a response written together leave together, and nothing waits longer than the turn.
Everything else (flow control, closing, addresses) is the wrapped transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class JoinedWrites:
    """A transport proxy: ``write`` calls of one loop turn become one ``write``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written goes before the FIN, as with the plain transport
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class JoinedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`JoinedWrites` transport (``uvicorn.run(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]
