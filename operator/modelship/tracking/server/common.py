"""Request parsing and response helpers shared by the route modules."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from modelship.tracking.errors import MALFORMED_REQUEST, TrackingError, invalid

M = TypeVar("M", bound=BaseModel)


def ok(body: dict[str, Any] | None = None) -> Response:
    return Response(orjson.dumps(body or {}), media_type="application/json")


def error_response(exc: TrackingError) -> Response:
    return Response(orjson.dumps(exc.body()), status_code=exc.http_status,
                    media_type="application/json")


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"'{loc}': {err['msg']}")
    return "Invalid value for " + "; ".join(parts)


def parse_body(raw: bytes, model: type[M]) -> M:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise TrackingError("Malformed request JSON: the body is not valid JSON",
                                MALFORMED_REQUEST) from None
        raise invalid(validation_message(exc)) from None


async def parse(request: Request, model: type[M]) -> M:
    return parse_body(await request.body(), model)


def query(request: Request, *names: str, required: bool = True) -> str | None:
    for name in names:
        value = request.query_params.get(name)
        if value:
            return value
    if required:
        raise invalid(f"Missing value for required parameter '{names[0]}'.")
    return None


def query_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected an integer") from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents a request body parsed by hand (see app.openapi)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def kv(items: list[Any]) -> list[tuple[str, str]]:
    return [(i.key, i.value) for i in items]
