"""The HTTP floor: the model server's stack (uvicorn, httptools, uvloop, one raw ASGI app)
answering a constant after reading the whole body — what any server on this stack pays
per request before it decodes a byte. ``GET /count`` says how many bodies it read.

    python benchmarks/serving/floor.py --port 18000
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

ANSWER = b'{"predictions":[0]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


class Floor:
    def __init__(self) -> None:
        self.bodies = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            text = str(self.bodies).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(text))]}
            )
            await send({"type": "http.response.body", "body": text})
            return
        size = 0
        while True:  # read the body as the model server does, then answer the constant
            msg = await receive()
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        self.bodies += 1
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": ANSWER})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    uvicorn.run(
        Floor(),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_keep_alive=75,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
