"""Request body limits per route, from the settings: a body over its route's limit is a 413
with MLflow's error body, naming the limit and the setting that raises it, before it fills
the memory (a JSON call) or the disk (an artifact upload).

A declared ``Content-Length`` is checked before anything is read; the HTTP server then
delivers no more than it declared. A chunked body is counted as it arrives, and the count
raises :class:`BodyTooLarge` out of ``receive`` into whatever reads it — a route's
``request.body()``, the hot path's ``read_body``, an artifact upload's stream — each of
which answers a TrackingError with its body and status (an upload also drops its temp file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelship.tracking.errors import INVALID_PARAMETER_VALUE, TrackingError
from modelship.tracking.protocol.http import error_response
from modelship.tracking.protocol.paths import API, ARTIFACT_FILES, UPLOAD_ARTIFACT
from modelship.tracking.settings import ServerSettings

BATCH_ROUTES = frozenset({f"{API}/runs/log-batch", f"{API}/runs/log-inputs", f"{API}/runs/log-model"})
"""The calls that carry many entities, dataset schemas or model signatures."""
_LOGGED_MODEL_ENTITIES = re.compile(rf"^{API}/logged-models/[^/]+/(?:tags|params)$")


class BodyTooLarge(TrackingError):
    """413 Content Too Large, in MLflow's error shape."""

    @property
    def http_status(self) -> int:
        return 413


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class Limit:
    """The largest body of a group of routes, and the setting that sets it."""

    size: int
    setting: str
    hint: str = ""

    def error(self, method: str, path: str) -> BodyTooLarge:
        env = f"{ServerSettings.model_config.get('env_prefix', '')}{self.setting}".upper()
        return BodyTooLarge(
            f"Request body larger than {self.size} bytes ({_size(self.size)}), the limit of "
            f"{method} {path}: the server's setting {self.setting} ({env}) raises it{self.hint}",
            INVALID_PARAMETER_VALUE,
        )


def route_limits(settings: ServerSettings) -> tuple[Limit, Limit, Limit]:
    """(every other call, the batch calls, artifact uploads)."""
    return (
        Limit(settings.max_request_body_bytes, "max_request_body_bytes"),
        Limit(
            settings.max_log_batch_body_bytes,
            "max_log_batch_body_bytes",
            "; a log-batch holds at most 1000 metrics, 100 params and 100 tags: send smaller batches",
        ),
        Limit(settings.max_artifact_bytes, "max_artifact_bytes"),
    )


class BodyLimits:
    """ASGI middleware that holds every request body to its route's :class:`Limit`."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.default, self.batch, self.artifact = route_limits(settings)

    def limit_for(self, method: str, path: str) -> Limit:
        if (method == "PUT" and path.startswith(ARTIFACT_FILES)) or path == UPLOAD_ARTIFACT:
            return self.artifact
        if path in BATCH_ROUTES or _LOGGED_MODEL_ENTITIES.match(path):
            return self.batch
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limit = self.limit_for(method, path)
        declared = _content_length(scope["headers"])
        if declared is not None:
            if declared > limit.size:
                await error_response(limit.error(method, path))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit.size:
                raise limit.error(method, path)
            return message

        await self.app(scope, counted, send)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
