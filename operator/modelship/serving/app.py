"""The HTTP transport: one raw ASGI app over a ``ModelServer`` core.

Raw ASGI rather than a framework: the hot path (``/invocations``, ``/v2/.../infer``) is
read body → core → write bytes, with no routing tree, middleware stack or per-request
validation objects in between; everything that is not a prediction is a few lines too.
``create_app(settings, core)`` is the factory; there is no module-level app.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from modelship import __version__
from modelship.serving.codecs import dumps
from modelship.serving.core import JSON, ModelServer, Reply, ServingError, mlflow_reply, not_found, v2_reply
from modelship.serving.feedback import check_request_id
from modelship.serving.openapi import openapi_spec
from modelship.serving.peers import FORWARDED_HEADER as _FORWARDED
from modelship.serving.settings import ServingSettings

log = logging.getLogger("modelship.serving.http")

_V2_MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?/?$")
_TEXT = b"text/plain; charset=utf-8"
_PROM = b"text/plain; version=0.0.4; charset=utf-8"


class _Disconnected(Exception):
    pass


REQUEST_ID_HEADER = b"x-request-id"
"""The prediction's request id, sent by the client or made by the server; ``/feedback`` takes it."""
FORWARDED_HEADER = _FORWARDED.encode()
"""On ``/feedback`` that a peer forwarded (its instance): counted here, never forwarded again."""
VARIANT_HEADER = b"x-modelship-variant"
"""Names the variant that answered, on every response: a client can pin itself with it."""


class ServingApp:
    """ASGI callable: ``lifespan`` loads the model in the background, ``http`` serves."""

    def __init__(
        self,
        settings: ServingSettings,
        core: ModelServer,
        on_load_failure: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        #: called when the model cannot be loaded (the CLI stops the process: a pod that
        #: cannot serve should restart, not sit unready forever)
        self.on_load_failure = on_load_failure
        self.core = core
        self.metrics = core.metrics
        self.load_task: asyncio.Task[None] | None = None
        self.spec = dumps(openapi_spec(core.name))
        #: set on SIGTERM when a shutdown delay is configured: /ping answers 503 (the pod
        #: leaves its Services) and every answer closes its connection (clients and proxies
        #: reconnect to another pod) while requests still get served
        self.draining = False
        self._extra_headers: list[tuple[bytes, bytes]] = (
            [(VARIANT_HEADER, settings.variant.encode())] if settings.variant else []
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    # -- lifespan -----------------------------------------------------------------------
    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                # Accept connections at once (liveness, readiness = false) and load meanwhile.
                self.load_task = asyncio.get_running_loop().create_task(self._load())
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self.load_task is not None and not self.load_task.done():
                    self.load_task.cancel()
                await self.core.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _load(self) -> None:
        try:
            await self.core.start()
        except Exception:  # noqa: BLE001 - logged by the core; stays unready
            if self.on_load_failure is not None:
                self.on_load_failure()

    # -- http ---------------------------------------------------------------------------
    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        start = time.perf_counter()
        endpoint = "other"
        # Each error is rendered in the shape of the protocol its path belongs to, in one place.
        render = v2_reply if path.startswith("/v2") else mlflow_reply
        inflight = self.metrics.inflight
        inflight.inc()
        try:
            if path == "/invocations":
                endpoint = "invocations"
                _allow(method, "POST")
                rid = _request_id(scope)
                body = await self._body(receive)
                reply = await self.core.invocations(body, _header(scope, b"content-type"), rid)
            elif path.startswith("/v2/models/"):
                m = _V2_MODEL.match(path)
                if m is None:
                    raise not_found(f"no route {path}")
                name, version, action = m.group(1), m.group(2), m.group(3)
                if action == "/infer":
                    endpoint = "v2_infer"
                    _allow(method, "POST")
                    rid = _request_id(scope)
                    body = await self._body(receive)
                    reply = await self.core.infer(name, version, body, rid)
                else:
                    _allow(method, "GET")
                    if action == "/ready":
                        endpoint = "v2_model_ready"
                        reply = self.core.v2_model_ready(name, version)
                    else:
                        endpoint = "v2_model_metadata"
                        reply = self.core.v2_model_metadata(name, version)
            elif path == "/feedback":
                endpoint = "feedback"
                if method == "POST":
                    forwarded_by = _header_or_none(scope, FORWARDED_HEADER)
                    reply = await self.core.post_feedback(await self._body(receive), forwarded_by)
                elif method in ("GET", "HEAD"):
                    reply = Reply(200, dumps(self.core.feedback_report()))
                else:
                    raise ServingError(405, "BAD_REQUEST", "use POST (outcomes) or GET (the figures)")
            elif path in ("/metrics", "/drift") and method in ("GET", "HEAD"):
                # the drift statistics are computed here, when asked (a few ms per feature
                # over a full window): on a parse thread, so that predictions go on meanwhile
                endpoint = path[1:]
                reply = await self.core.run_off_loop(self._observability, path)
            else:
                reply, endpoint = self._small(method, path)
        except ServingError as err:
            reply = render(err)
        except _Disconnected:
            inflight.dec()
            return
        except Exception:
            log.exception("unhandled error", extra={"path": path})
            reply = render(ServingError(500, "INTERNAL_ERROR", "internal server error"))
        try:
            await self._send(send, reply)
        finally:
            inflight.dec()
        elapsed = time.perf_counter() - start
        self.metrics.observe_request(endpoint, reply.status, elapsed)
        if self.settings.access_log:
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": path,
                    "status": reply.status,
                    "ms": round(elapsed * 1000, 3),
                },
            )

    async def _send(self, send: Any, reply: Reply) -> None:
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(len(reply.body)).encode()),
            *self._extra_headers,
        ]
        if reply.request_id is not None:
            headers.append((REQUEST_ID_HEADER, reply.request_id.encode()))
        if self.draining:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    def _observability(self, path: str) -> Reply:
        if path == "/metrics":
            return Reply(200, self.metrics.render(), _PROM)
        return Reply(200, dumps(self.core.drift_report()))

    def _small(self, method: str, path: str) -> tuple[Reply, str]:
        if method not in ("GET", "HEAD"):
            raise ServingError(405, "BAD_REQUEST", f"{method} is not allowed on {path}")
        core = self.core
        if path in ("/ping", "/health"):
            if self.draining:
                return Reply(503, b"shutting down\n", _TEXT), "ping"
            if core.ready:
                return Reply(200, b"\n"), "ping"
            return Reply(503, b"model not loaded\n", _TEXT), "ping"
        if path == "/version":
            return Reply(
                200,
                dumps({"version": __version__, "model": core.name, "model_version": core.version}),
            ), "version"
        if path in ("/v2/health/live", "/v2/health/live/"):
            return Reply(200, b'{"live":true}'), "v2_live"
        if path in ("/v2/health/ready", "/v2/health/ready/"):
            return Reply(200 if core.ready else 503, dumps({"ready": core.ready})), "v2_ready"
        if path in ("/v2", "/v2/"):
            return core.v2_server_metadata(), "v2_metadata"
        if path == "/openapi.json":
            return Reply(200, self.spec, JSON), "openapi"
        raise not_found(f"no route {path}")

    def _too_large(self) -> ServingError:
        return ServingError(
            413,
            "BAD_REQUEST",
            f"request body over {self.settings.max_request_bytes} bytes, the server's "
            "limit: the setting max_request_bytes (MODELSHIP_MAX_REQUEST_BYTES) raises it",
        )

    async def _body(self, receive: Any) -> bytes:
        limit = self.settings.max_request_bytes
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _Disconnected
        body: bytes = msg.get("body", b"")
        if not msg.get("more_body"):
            if len(body) > limit:
                raise self._too_large()
            return body
        chunks, size = [body], len(body)
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Disconnected
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large()
            chunks.append(chunk)
            if not msg.get("more_body"):
                return b"".join(chunks)


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ServingError(405, "BAD_REQUEST", f"use {allowed}")


def _request_id(scope: dict[str, Any]) -> str | None:
    """The client's X-Request-Id, checked (a 400 says the rule), or None."""
    for key, value in scope["headers"]:
        if key == REQUEST_ID_HEADER:
            try:
                return check_request_id(value.decode("latin-1"))
            except ValueError as exc:
                raise ServingError(400, "BAD_REQUEST", str(exc)) from None
    return None


def _header(scope: dict[str, Any], name: bytes) -> str:
    value = _header_or_none(scope, name)
    return "application/json" if value is None else value


def _header_or_none(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def create_app(
    settings: ServingSettings,
    core: ModelServer | None = None,
    *,
    on_load_failure: Callable[[], None] | None = None,
) -> ServingApp:
    """Build the ASGI app for ``settings`` (and a core, built from them if not given)."""
    return ServingApp(settings, core or ModelServer(settings), on_load_failure)
