"""Request parsing and response helpers of the wire format: MLflow's error body, the raw
ASGI body reader and writer of the hot paths; shared by the server's routes and the sidecar."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Send

from modelship.tracking.errors import TrackingError, invalid
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.messages import parse_body

# Far above the largest legal log-batch (1000 metrics, 100 params of 6000 characters,
# 100 tags of 8000) and small enough that a runaway client cannot fill the memory.
MAX_WRITE_BODY = 32 << 20

KEEP_ALIVE_S = 75
"""How long an idle keep-alive connection stays open. Clients reuse idle connections (the
mlflow client's requests session, the sidecar's httpx pool, whose own idle expiry is 5 s);
a server that closes first races a client sending at that moment, and urllib3 does not
retry the POST that loses. uvicorn's default is 5 s; 75 s is nginx's default and outlasts
the pause between a trainer's epochs. The tracking server and the sidecar use it; the
model server keeps the same."""

M = TypeVar("M", bound=BaseModel)


def ok(body: dict[str, Any] | None = None) -> Response:
    return Response(orjson.dumps(body or {}), media_type="application/json")


def error_response(exc: TrackingError) -> Response:
    return Response(orjson.dumps(exc.body()), status_code=exc.http_status, media_type="application/json")


async def read_body(receive: Receive, limit: int = MAX_WRITE_BODY) -> bytes:
    """The request body from raw ASGI messages; ClientDisconnect if the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise invalid(
                f"Request body larger than {limit} bytes; a log-batch holds at most "
                "1000 metrics, 100 params and 100 tags: send smaller batches"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A complete JSON response as raw ASGI messages."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def parse(request: Request, model: type[M]) -> M:
    return parse_body(await request.body(), model)


def query(request: Request, *names: str, required: bool = True) -> str | None:
    for name in names:
        value = request.query_params.get(name)
        if value:
            return value
    if required:
        raise v.missing(names[0])
    return None


def query_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise v.wrong_type(name, value) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents a request body parsed by hand (see app.openapi)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def kv(items: list[Any]) -> list[tuple[str, str]]:
    return [(i.key, i.value) for i in items]
