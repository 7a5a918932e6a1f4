"""Request parsing and response helpers shared by the route modules."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Send

from modelship.tracking.errors import MALFORMED_REQUEST, TrackingError, invalid
from modelship.tracking.store import validation as v

# Far above the largest legal log-batch (1000 metrics, 100 params of 6000 characters,
# 100 tags of 8000) and small enough that a runaway client cannot fill the memory.
MAX_WRITE_BODY = 32 << 20

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


def _json_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's location as MLflow writes a field's path: ``metrics[0].value``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_message(exc: ValidationError) -> str:
    """The first error in ``mlflow server``'s words (clients and people match on them):
    ``Invalid value 31 for parameter 'run_id' supplied: Hint: ...`` or ``Missing value for
    required parameter 'key'. ...``; a second one, if any, is named after it."""
    errs = exc.errors()
    first = errs[0]
    path = _json_path(tuple(first["loc"]))
    if first["type"] == "missing":
        message = v.missing(path).message
    elif first["type"].startswith(("greater_than", "less_than")):
        message = v.invalid_value(path, first.get("input"), f"{first['msg']}. {v.API_DOCS_HINT}").message
    else:
        message = v.wrong_type(path, first.get("input")).message
    if len(errs) > 1:
        message += f" ({len(errs) - 1} more: {', '.join(repr(_json_path(tuple(e['loc']))) for e in errs[1:4])})"
    return message


def parse_body(raw: bytes, model: type[M]) -> M:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise TrackingError("Malformed request JSON: the body is not valid JSON", MALFORMED_REQUEST) from None
        raise invalid(validation_message(exc)) from None


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
