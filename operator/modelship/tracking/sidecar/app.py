"""The sidecar's HTTP front: buffered writes, pass-through reads (after earlier writes).

A write is checked with the server's own rules (``modelship.tracking.protocol``) and
answered 400 in MLflow's error shape before anything is appended; at the buffer cap
(``SidecarSettings.max_buffer_bytes``) it is answered 503 with ``Retry-After`` instead,
so memory and disk stay bounded while the server is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from modelship.tracking import errors
from modelship.tracking.errors import TrackingError, invalid
from modelship.tracking.logs import event
from modelship.tracking.protocol import messages as msg
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.http import error_response, ok, read_body, send_json
from modelship.tracking.protocol.paths import API, ARTIFACT_FILES, ARTIFACTS, safe_path
from modelship.tracking.settings import SidecarSettings
from modelship.tracking.sidecar.batches import MERGEABLE, entities
from modelship.tracking.sidecar.checks import check_write
from modelship.tracking.sidecar.deadletter import DeadLetter
from modelship.tracking.sidecar.forwarder import Forwarder
from modelship.tracking.sidecar.policy import retry_after
from modelship.tracking.sidecar.report import metrics_text
from modelship.tracking.sidecar.termination import TerminationLog
from modelship.tracking.sidecar.wal import DurableLog
from modelship.uris import redact_url

log = logging.getLogger("modelship.tracking.sidecar")

BUFFERED: dict[str, type[BaseModel]] = {
    f"{API}/runs/log-metric": msg.LogMetric,
    f"{API}/runs/log-parameter": msg.LogParam,
    f"{API}/runs/set-tag": msg.SetTag,
    f"{API}/runs/log-batch": msg.LogBatch,
    f"{API}/runs/delete-tag": msg.DeleteTag,
    f"{API}/runs/update": msg.UpdateRun,
    f"{API}/runs/outputs": msg.LogOutputs,
    f"{API}/runs/log-inputs": msg.LogInputs,
    f"{API}/runs/log-model": msg.LogModel,
}
MODEL_TAGS = re.compile(rf"^{API}/logged-models/([\w\-]+)/tags$")
MODEL_PARAMS = re.compile(rf"^{API}/logged-models/([\w\-]+)/params$")
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class BufferFull(TrackingError):
    """503 at the buffer cap, with the seconds to wait for ``Retry-After``."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, errors.TEMPORARILY_UNAVAILABLE)
        self.retry_after = retry_after


def _headers(exc: TrackingError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, BufferFull) else {}


class Sidecar:
    def __init__(
        self,
        settings: SidecarSettings,
        wal: DurableLog,
        forwarder: Forwarder,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings, self.wal, self.forwarder = settings, wal, forwarder
        self.buffer_full = 0
        headers = {"Authorization": f"Bearer {settings.server_token}"} if settings.server_token else {}
        self.http = httpx.AsyncClient(
            base_url=settings.server.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(60.0, connect=3.0),
            transport=transport,
        )
        # run id -> params known to be set (None: the server could not be asked).
        self.runs: dict[str, dict[str, str] | None] = {}
        self.unverified: dict[str, float] = {}

    # ---- buffered writes ---------------------------------------------------------------
    def admit(self) -> None:
        """Refuse a write while the buffer is at its cap. The check comes before the write
        is read or parsed, so a trainer that outpaces the server costs nothing but the 503;
        one write may take the buffer past the cap by its own size."""
        if self.wal.pending_bytes < self.settings.max_buffer_bytes:
            return
        self.buffer_full += 1
        if self.buffer_full == 1 or self.buffer_full % 1000 == 0:
            event(
                log,
                "buffer full; answering writes with 503 until the server takes some",
                logging.WARNING,
                buffered_bytes=self.wal.pending_bytes,
                max_buffer_bytes=self.settings.max_buffer_bytes,
                refused=self.buffer_full,
                server_up=self.forwarder.server_up,
                auth_failing=self.forwarder.auth_failing,
            )
        raise BufferFull(
            f"The sidecar's buffer is full ({self.wal.pending_bytes} bytes of writes not yet "
            f"delivered; the cap is {self.settings.max_buffer_bytes}, "
            "--max-buffer-bytes): retry later",
            retry_after(not self.forwarder.stalled),
        )

    async def accept(self, method: str, path: str, raw: bytes, model: type[BaseModel]) -> bytes:
        """Validate a write, append it to the log and return the response body; raises
        TrackingError (nothing appended) for what the server would refuse; the caller has
        checked the cap (``admit``)."""
        run_id, body, params, m = check_write(path, raw, model)
        if run_id is not None:
            body["run_id"] = run_id
            known = await self._known_params(run_id)
            self._check_params(run_id, known, params)
        self.wal.append({"method": method, "path": path, "run_id": run_id, "body": body})
        self.forwarder.notify()
        if isinstance(m, msg.UpdateRun):
            info: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id, "status": m.status or "RUNNING"}
            if m.end_time:
                info["end_time"] = m.end_time
            return orjson.dumps({"run_info": info})
        return b"{}"

    async def buffered(self, request: Request, model: type[BaseModel]) -> Response:
        self.admit()
        body = await self.accept(request.method, request.url.path, await request.body(), model)
        return Response(body, media_type="application/json")

    def _check_params(self, run_id: str, known: dict[str, str] | None, params: list[tuple[str, str]]) -> None:
        seen: dict[str, str] = {}
        for key, value in params:
            old = seen.setdefault(key, value) if known is None else (known.get(key) or seen.setdefault(key, value))
            if old != value:
                raise invalid(
                    "Changing param values is not allowed. Params were already logged='"
                    f"[{{'key': '{key}', 'old_value': '{old}', 'new_value': '{value}'}}]' "
                    f"for run ID='{run_id}'."
                )
        if known is not None:
            known.update(params)

    async def _known_params(self, run_id: str) -> dict[str, str] | None:
        """Params of a run known to exist; raise 404 for a run the server does not know."""
        if run_id in self.runs:
            known = self.runs[run_id]
            if known is not None or time.monotonic() < self.unverified.get(run_id, 0.0):
                return known
        v.run_id(run_id)
        try:
            r = await self.http.get(f"{API}/runs/get", params={"run_id": run_id}, timeout=5.0)
        except (httpx.TransportError, OSError):
            # The server is away: accept (the forwarder delivers later); ask again in a while,
            # not on every write.
            self.runs[run_id] = None
            self.unverified[run_id] = time.monotonic() + 5.0
            return None
        if r.status_code == 200:
            run = r.json()["run"]
            if run["info"].get("lifecycle_stage") == "deleted":
                raise invalid(f"The run {run_id} must be in the 'active' state.")
            known = {p["key"]: p["value"] for p in run.get("data", {}).get("params", [])}
            if self.wal.pending_count:
                # Params still on their way, read from the log on disk (in a thread: it may
                # hold up to the buffer cap).
                known.update(await asyncio.to_thread(_pending_params, self.wal.pending, run_id))
            self.runs[run_id] = known
            return known
        if 400 <= r.status_code < 500:
            body = r.json()
            raise TrackingError(body.get("message", r.text), body.get("error_code", errors.BAD_REQUEST))
        self.runs[run_id] = None
        self.unverified[run_id] = time.monotonic() + 5.0
        return None

    async def buffered_artifact(self, request: Request) -> Response:
        path = safe_path(request.url.path[len(ARTIFACT_FILES) :], allow_root=False)
        self.admit()
        name = uuid.uuid4().hex
        target = self.wal.blob_path(name)
        part = target.with_suffix(".part")
        # Local-disk writes of network-sized chunks: cheaper inline than a thread hop each.
        with open(part, "wb") as f:  # noqa: ASYNC230
            async for chunk in request.stream():
                f.write(chunk)
            if self.wal.fsync:
                f.flush()
                os.fsync(f.fileno())
        part.rename(target)
        self.wal.append({"method": "PUT", "path": ARTIFACT_FILES + path, "run_id": None, "body": None, "blob": name})
        self.forwarder.notify()
        return ok()

    # ---- pass-through ------------------------------------------------------------------
    async def passthrough(self, request: Request) -> Response:
        # Read-your-writes: what this pod wrote before this request reaches the server first.
        if request.url.path.startswith(ARTIFACT_FILES):
            # Checked here too: an HTTP client would normalise the dots away on the way on.
            safe_path(request.url.path[len(ARTIFACT_FILES) :])
        elif request.url.path.rstrip("/") == ARTIFACTS:
            safe_path(request.query_params.get("path"))
        await self.forwarder.wait_forwarded(self.wal.last_seq, self.settings.read_wait, until_failure=True)
        headers = {k: val for k, val in request.headers.items() if k.lower() not in HOP_HEADERS}
        if self.settings.server_token:
            headers.pop("authorization", None)
        url = httpx.URL(path=request.url.path, query=request.url.query.encode())
        try:
            upstream = await self.http.send(
                self.http.build_request(request.method, url, headers=headers, content=await request.body()), stream=True
            )
        except (httpx.TransportError, OSError) as exc:
            return error_response(
                TrackingError(f"tracking server unreachable: {redact_url(repr(exc))}", errors.TEMPORARILY_UNAVAILABLE)
            )
        keep = {k: val for k, val in upstream.headers.items() if k.lower() in ("content-type", "content-disposition")}
        if request.method == "GET" and request.url.path.startswith(ARTIFACT_FILES):

            async def body() -> AsyncIterator[bytes]:
                try:
                    async for chunk in upstream.aiter_raw():
                        yield chunk
                finally:
                    await upstream.aclose()

            return StreamingResponse(body(), status_code=upstream.status_code, headers=keep)
        content = await upstream.aread()
        await upstream.aclose()
        if upstream.status_code == 200 and request.url.path == f"{API}/runs/create":
            self.runs[orjson.loads(content)["run"]["info"]["run_id"]] = {}
        return Response(content, status_code=upstream.status_code, headers=keep)

    async def dispatch(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        try:
            # POSTs to BUFFERED paths never get here: BufferedWrites answers them.
            if method == "PATCH" and MODEL_TAGS.match(path):
                return await self.buffered(request, msg.LoggedModelTags)
            if method == "POST" and MODEL_PARAMS.match(path):
                return await self.buffered(request, msg.LoggedModelParams)
            if method == "PUT" and path.startswith(ARTIFACT_FILES):
                return await self.buffered_artifact(request)
            return await self.passthrough(request)
        except TrackingError as exc:
            response = error_response(exc)
            response.headers.update(_headers(exc))
            return response

    def report(self) -> dict[str, Any]:
        f, dead = self.forwarder, self.forwarder.dead
        return {
            "pending": self.wal.pending_count,
            "buffered_bytes": self.wal.pending_bytes,
            "max_buffer_bytes": self.settings.max_buffer_bytes,
            "log_file_bytes": self.wal.file_bytes,
            "buffer_full": self.buffer_full,
            "forwarded_seq": self.wal.forwarded,
            "last_seq": self.wal.last_seq,
            "server": redact_url(self.settings.server),
            "server_up": f.server_up,
            "auth_failing": f.auth_failing,
            "last_failure": f.last_failure,
            "rejected": dead.total,
            "dead_letter": {**dead.counts, "dropped": dead.dropped, "bytes": dead.size, "path": str(dead.path)},
            "requests_sent": f.sent_requests,
            "forward_failures": f.failures,
        }

    async def status(self, _: Request) -> Response:
        return ok(self.report())

    async def metrics(self, _: Request) -> Response:
        return Response(metrics_text(self.report()), media_type="text/plain; version=0.0.4")


def _pending_params(records: Any, run_id: str) -> dict[str, str]:
    known: dict[str, str] = {}
    for rec in records:
        if rec.get("run_id") == run_id and rec["path"] in MERGEABLE:
            known.update({p["key"]: p["value"] for p in entities(rec)[1]})
    return known


class BufferedWrites:
    """The run writes a training loop makes, answered from the ASGI scope: for a call that
    costs a log append, Starlette's request objects and routing would be most of the
    time the training script waits. Everything else goes on to the app."""

    def __init__(self, app: ASGIApp, sidecar: Sidecar) -> None:
        self.app, self.sidecar = app, sidecar

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = BUFFERED.get(scope["path"]) if scope["type"] == "http" else None
        if model is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status = 200
        try:
            self.sidecar.admit()
            body = await self.sidecar.accept("POST", scope["path"], await read_body(receive), model)
        except ClientDisconnect:
            return
        except BufferFull as exc:
            await _send_error(send, exc)
            return
        except TrackingError as exc:
            status, body = exc.http_status, orjson.dumps(exc.body())
        except Exception as exc:  # noqa: BLE001 - nothing was acknowledged; say so
            event(log, "write failed", logging.ERROR, path=scope["path"], error=repr(exc))
            failure = TrackingError(f"the sidecar could not record the write: {exc!r}", errors.INTERNAL_ERROR)
            status, body = failure.http_status, orjson.dumps(failure.body())
        await send_json(send, status, body)


async def _send_error(send: Send, exc: BufferFull) -> None:
    body = orjson.dumps(exc.body())
    await send(
        {
            "type": "http.response.start",
            "status": exc.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(exc.retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_sidecar_app(
    settings: SidecarSettings,
    wal: DurableLog | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ASGIApp:
    """The sidecar; ``transport`` replaces the network to the server (in-process tests)."""
    wal = wal or DurableLog(settings.buffer_dir)
    forwarder = Forwarder(
        wal,
        settings.server,
        settings.server_token,
        settings.batch_max_entities,
        settings.retry_initial,
        settings.retry_max,
        settings.linger,
        settings.max_attempts,
        DeadLetter(wal.dir, settings.dead_letter_max_bytes),
        transport,
    )
    sidecar = Sidecar(settings, wal, forwarder, transport)
    termination = TerminationLog(settings.termination_log, sidecar.report)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        forwarder.start()
        termination.start()
        event(
            log,
            "sidecar started",
            server=redact_url(settings.server),
            pending=wal.pending_count,
            buffered_bytes=wal.pending_bytes,
            max_buffer_bytes=settings.max_buffer_bytes,
            max_attempts=settings.max_attempts,
            buffer_dir=settings.buffer_dir,
        )
        try:
            yield
        finally:
            await forwarder.drain(settings.drain_timeout)
            await termination.close()  # the last word, once the drain has done what it could
            await forwarder.close()
            await sidecar.http.aclose()
            wal.close()

    async def health(_: Request) -> Response:
        return Response("OK", media_type="text/plain")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/modelship/sidecar/status", sidecar.status, methods=["GET"]),
            Route("/modelship/sidecar/metrics", sidecar.metrics, methods=["GET"]),
            Route("/{path:path}", sidecar.dispatch, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.sidecar = sidecar
    return BufferedWrites(app, sidecar)
