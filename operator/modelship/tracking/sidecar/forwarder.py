"""Forward the durable log to the tracking server: in order, in batches, with retries.

Consecutive metric/param/tag writes of one run are merged into ``runs/log-batch`` calls
within MLflow's limits; every other write is sent as it came. A connection error, a 5xx
or a 429 means "try again later" (exponential backoff, capped); a 4xx means the server
refused the content: a merged batch is then retried record by record, and a record that
is still refused is moved to ``rejected.jsonl`` and logged, so it cannot block the log.
Sending a record twice is harmless: metrics are unique on all their fields, params may
be re-logged with the same value, tags and statuses are last-writer-wins, and an
already-deleted tag counts as deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from modelship.tracking.logs import event
from modelship.tracking.sidecar.wal import DurableLog
from modelship.tracking.store import validation as v

log = logging.getLogger("modelship.tracking.sidecar")

API = "/api/2.0/mlflow"
MERGEABLE = {f"{API}/runs/log-metric", f"{API}/runs/log-parameter", f"{API}/runs/set-tag",
             f"{API}/runs/log-batch"}


def entities(record: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """(metrics, params, tags) of a mergeable record, in log-batch JSON shapes."""
    body = record["body"]
    path = record["path"]
    if path.endswith("/log-metric"):
        m = {k: body[k] for k in ("key", "value", "timestamp", "step") if k in body}
        if body.get("model_id"):
            m["model_id"] = body["model_id"]
        return [m], [], []
    if path.endswith("/log-parameter"):
        return [], [{"key": body["key"], "value": body["value"]}], []
    if path.endswith("/set-tag"):
        return [], [], [{"key": body["key"], "value": body["value"]}]
    return body.get("metrics", []), body.get("params", []), body.get("tags", [])


class Request:
    """One HTTP call to the server that covers the records ``records``."""

    def __init__(self, method: str, path: str, records: list[dict[str, Any]],
                 body: Any = None, blob: str | None = None) -> None:
        self.method, self.path, self.records, self.body, self.blob = (
            method, path, records, body, blob)

    @property
    def last_seq(self) -> int:
        return int(self.records[-1]["seq"])


def plan(pending: Iterator[dict[str, Any]] | list[dict[str, Any]], max_entities: int) -> Request | None:
    """The next request: a merged log-batch, or the first record as it is."""
    it = iter(pending)
    first = next(it, None)
    if first is None:
        return None
    if first["path"] not in MERGEABLE:
        return Request(first["method"], first["path"], [first], first.get("body"), first.get("blob"))
    run_id = first["run_id"]
    metrics: list[Any] = []
    params: list[Any] = []
    tags: list[Any] = []
    records: list[dict[str, Any]] = []
    for record in [first, *it]:
        if record["path"] not in MERGEABLE or record["run_id"] != run_id:
            break
        m, p, t = entities(record)
        if records and (
            len(metrics) + len(m) > v.MAX_METRICS_PER_BATCH
            or len(params) + len(p) > v.MAX_PARAMS_PER_BATCH
            or len(tags) + len(t) > v.MAX_TAGS_PER_BATCH
            or len(metrics) + len(params) + len(tags) + len(m) + len(p) + len(t) > max_entities
        ):
            break
        metrics += m
        params += p
        tags += t
        records.append(record)
    body = {"run_id": run_id, "metrics": metrics, "params": params, "tags": tags}
    return Request("POST", f"{API}/runs/log-batch", records, body)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """A file's bytes in 1 MiB reads off the event loop (model files can be large)."""
    with open(path, "rb") as f:  # noqa: ASYNC230 - reads happen in a thread below
        while chunk := await asyncio.to_thread(f.read, 1 << 20):
            yield chunk


class Forwarder:
    def __init__(self, wal: DurableLog, server: str, token: str | None = None,
                 max_entities: int = 1000, retry_initial: float = 0.2,
                 retry_max: float = 5.0, linger: float = 0.05) -> None:
        self.wal = wal
        self.linger = linger
        self._flush = asyncio.Event()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=server.rstrip("/"), headers=headers,
                                      timeout=httpx.Timeout(30.0, connect=3.0))
        self.max_entities = max_entities
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.server_up = True
        self.sent_requests = 0
        self.rejected = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="forwarder")

    def notify(self) -> None:
        self._wake.set()

    async def wait_forwarded(self, seq: int, timeout: float) -> bool:
        """Wait until every record up to ``seq`` reached the server (or was rejected)."""
        if self.wal.forwarded >= seq:
            return True
        self._flush.set()
        async with self._progress:
            try:
                await asyncio.wait_for(
                    self._progress.wait_for(lambda: self.wal.forwarded >= seq), timeout)
            except TimeoutError:
                return False
        return True

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            request = plan(list(self._head()), self.max_entities)
            if request is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if (self.linger > 0 and not self._flush.is_set() and request.path.endswith("/log-batch")
                    and len(request.records) == len(self.wal.pending)):
                # A trainer logging one metric per call would otherwise cost one server call
                # per metric: wait a moment for more, unless a reader or shutdown is waiting.
                self._flush.clear()
                try:
                    await asyncio.wait_for(self._flush.wait(), self.linger)
                except TimeoutError:
                    pass
                request = plan(list(self._head()), self.max_entities)
                assert request is not None
            try:
                status, text = await self._send(request)
            except (httpx.TransportError, OSError) as exc:
                status, text = 0, repr(exc)
            if status == 200:
                await self._advance(request.last_seq)
                delay = self.retry_initial
                if not self.server_up:
                    self.server_up = True
                    event(log, "server reachable again; forwarding",
                          pending=len(self.wal.pending))
                continue
            if status == 0 or status >= 500 or status == 429:
                if self.server_up:
                    self.server_up = False
                    event(log, "server unavailable; keeping writes in the log",
                          logging.WARNING, status=status, error=text[:200],
                          pending=len(self.wal.pending))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            await self._refused(request, status, text)

    def _head(self) -> Iterator[dict[str, Any]]:
        # The head of the log, enough for one request.
        for n, record in enumerate(self.wal.pending):
            if n >= self.max_entities:
                return
            yield record

    async def _send(self, request: Request) -> tuple[int, str]:
        self.sent_requests += 1
        if request.blob is not None:
            path = self.wal.blob_path(request.blob)
            r = await self.http.request(
                request.method, request.path, content=_chunks(path),
                headers={"Content-Length": str(path.stat().st_size)})
        else:
            r = await self.http.request(
                request.method, request.path, content=orjson.dumps(request.body),
                headers={"Content-Type": "application/json"})
        if r.status_code == 404 and request.path.endswith("/delete-tag"):
            return 200, ""  # already deleted: a replay of an applied delete
        return r.status_code, r.text

    async def _refused(self, request: Request, status: int, text: str) -> None:
        if len(request.records) > 1:
            for record in request.records:
                single = plan([record], self.max_entities)
                assert single is not None
                while True:
                    try:
                        code, body = await self._send(single)
                    except (httpx.TransportError, OSError):
                        await asyncio.sleep(self.retry_max)
                        continue
                    if code == 0 or code >= 500 or code == 429:
                        await asyncio.sleep(self.retry_initial)
                        continue
                    break
                if code != 200:
                    self._reject(record, code, body)
                await self._advance(record["seq"])
            return
        self._reject(request.records[0], status, text)
        await self._advance(request.last_seq)

    def _reject(self, record: dict[str, Any], status: int, text: str) -> None:
        self.rejected += 1
        event(log, "server refused a buffered write; moved to rejected.jsonl", logging.ERROR,
              seq=record["seq"], path=record["path"], status=status, response=text[:300])
        with open(self.wal.dir / "rejected.jsonl", "ab") as f:
            f.write(orjson.dumps({"record": record, "status": status, "response": text}) + b"\n")

    async def _advance(self, seq: int) -> None:
        if not self.wal.pending or self.wal.pending[-1]["seq"] <= seq:
            self._flush.clear()
        for record in list(self.wal.pending):
            if record["seq"] > seq:
                break
            if record.get("blob"):
                self.wal.blob_path(record["blob"]).unlink(missing_ok=True)
        self.wal.mark_forwarded(seq)
        async with self._progress:
            self._progress.notify_all()

    async def drain(self, timeout: float) -> bool:
        """Forward what is left, for at most ``timeout`` seconds; True when nothing is left."""
        done = await self.wait_forwarded(self.wal.last_seq, timeout)
        event(log, "drain finished" if done else "drain timed out; writes stay in the log",
              logging.INFO if done else logging.WARNING, pending=len(self.wal.pending))
        return done

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.http.aclose()
