"""Forward the durable log to the tracking server: in order, in batches, with retries.

What an answer means is decided in ``policy.classify``; the rules, so that no record blocks
the log and none is dropped without a trace:

- delivered: move on;
- refused (a 4xx about the content): a merged batch is resent record by record to find
  the one refused; that one goes to the dead letter with the server's answer;
- failed (500 and the like): the same split; a single record is retried with back-off,
  and after ``max_attempts`` failures that are its own (reads on the server still work,
  ``policy.record_to_blame``) it goes to the dead letter;
- unauthorized (401/403): nothing is wrong with the records; they stay, the status says
  ``auth_failing`` and an error line is logged (again every minute), retried with back-off;
- unavailable (no answer, 502/503/504, 408/429): they stay, retried with back-off.

Sending a record twice is harmless: metrics are unique on all their fields, params may
be re-logged with the same value, tags and statuses are last-writer-wins, and an
already-deleted tag counts as deleted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from modelship.tracking.logs import event
from modelship.tracking.protocol.paths import API
from modelship.tracking.sidecar.batches import MERGEABLE, Request, entities, plan
from modelship.tracking.sidecar.deadletter import DeadLetter
from modelship.tracking.sidecar.policy import (
    NO_ANSWER,
    Outcome,
    classify,
    next_delay,
    record_to_blame,
)
from modelship.tracking.sidecar.wal import DurableLog
from modelship.uris import redact_url

__all__ = ["MERGEABLE", "Forwarder", "Request", "entities", "plan"]

log = logging.getLogger("modelship.tracking.sidecar")

AUTH_REMINDER_SECONDS = 60.0
# A read that needs the database and no token: whether the server works apart from the write.
PROBE = f"{API}/experiments/get"


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """A file's bytes in 1 MiB reads off the event loop (model files can be large)."""
    with open(path, "rb") as f:  # noqa: ASYNC230 - reads happen in a thread below
        while chunk := await asyncio.to_thread(f.read, 1 << 20):
            yield chunk


class Forwarder:
    def __init__(
        self,
        wal: DurableLog,
        server: str,
        token: str | None = None,
        max_entities: int = 1000,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        linger: float = 0.05,
        max_attempts: int = 10,
        dead_letter: DeadLetter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.wal = wal
        self.linger = linger
        self.dead = dead_letter or DeadLetter(wal.dir, 64 << 20)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            base_url=server.rstrip("/"), headers=headers, timeout=httpx.Timeout(30.0, connect=3.0), transport=transport
        )
        self.max_entities = max_entities
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._flush = asyncio.Event()  # a reader or the shutdown waits: do not linger
        self._nudge = asyncio.Event()  # ... and do not sit out the back-off either
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.server_up = True
        self.auth_failing = False
        self.stalled = False
        """The last attempt did not deliver (the trainer is told to wait longer at the cap)."""
        self.sent_requests = 0
        self.failures = 0
        self.last_failure: dict[str, Any] | None = None
        self._single_until = 0  # records up to this seq are sent one by one
        self._attempts: tuple[int, int] = (0, 0)  # (seq, its own failures) of the head
        self._auth_reported = 0.0
        self._sick = False

    @property
    def rejected(self) -> int:
        return self.dead.total

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="forwarder")

    def notify(self) -> None:
        self._wake.set()

    async def wait_forwarded(self, seq: int, timeout: float, until_failure: bool = False) -> bool:
        """Wait until every record up to ``seq`` reached the server (or the dead letter).
        With ``until_failure`` (a reader), also stop at the first attempt that fails: the
        read would wait for nothing while the forwarder backs off."""
        if self.wal.forwarded >= seq:
            return True
        self._flush.set()
        self._nudge.set()
        failures = self.failures
        async with self._progress:
            try:
                await asyncio.wait_for(
                    self._progress.wait_for(
                        lambda: self.wal.forwarded >= seq or (until_failure and self.failures > failures)
                    ),
                    timeout,
                )
            except TimeoutError:
                return False
        return self.wal.forwarded >= seq

    # ---- the loop ------------------------------------------------------------------------
    def _next(self) -> Request | None:
        head = self.wal.head()
        first = next(head, None)
        if first is None:
            return None
        if first["seq"] <= self._single_until:
            return plan([first], self.max_entities)
        return plan(itertools.chain([first], head), self.max_entities)

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            request = self._next()
            if request is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if (
                self.linger > 0
                and not self._flush.is_set()
                and request.path.endswith("/log-batch")
                and request.last_seq > self._single_until
                and len(request.records) == self.wal.pending_count
            ):
                # A trainer logging one metric per call would otherwise cost one server call
                # per metric: wait a moment for more, unless a reader or shutdown is waiting.
                try:
                    await asyncio.wait_for(self._flush.wait(), self.linger)
                except TimeoutError:
                    pass
                request = self._next()
                assert request is not None
            if await self._deliver(request):
                delay = self.retry_initial
                continue
            await self._failed_attempt()
            self._nudge.clear()
            try:
                await asyncio.wait_for(self._nudge.wait(), delay)
            except TimeoutError:
                pass
            delay = next_delay(delay, self.retry_max)

    async def _deliver(self, request: Request) -> bool:
        """One attempt at the head of the log; True when the log moved on (delivered, or a
        record went to the dead letter), False when the forwarder is to back off."""
        record = request.records[0]
        if request.blob is not None and not self.wal.blob_path(request.blob).exists():
            await self._dead_letter(record, "failed", NO_ANSWER, "the buffered body of this upload is gone")
            return True
        status, text = await self._send(request)
        outcome = classify(status)
        if outcome is Outcome.DELIVERED:
            self._recovered()
            await self._advance(request.last_seq)
            return True
        was_up, self.server_up = self.server_up, outcome is not Outcome.UNAVAILABLE
        if outcome is Outcome.FAILED and not record_to_blame(await self._probe()):
            # Reads fail too: the server is sick (its database is down), not the records.
            self._note(outcome, status, text, record, 0)
            if not self._sick:
                event(
                    log,
                    "server fails on writes and reads; keeping writes in the log",
                    logging.WARNING,
                    status=status,
                    error=text[:200],
                    pending=self.wal.pending_count,
                )
            self._sick = True
            return False
        if outcome in (Outcome.REFUSED, Outcome.FAILED) and len(request.records) > 1:
            # One of them is to blame, or none is: send them one by one to find out.
            self._single_until = request.last_seq
            self._note(outcome, status, text, record, 0)
            return True
        if outcome is Outcome.REFUSED:
            await self._dead_letter(record, "refused", status, text)
            return True
        if outcome is Outcome.UNAUTHORIZED:
            self._unauthorized(status, text, record)
            return False
        if outcome is Outcome.FAILED:
            seq, n = self._attempts
            n = n + 1 if seq == record["seq"] else 1
            self._attempts = (record["seq"], n)
            self._note(outcome, status, text, record, n)
            if n >= self.max_attempts:
                await self._dead_letter(record, "failed", status, text)
                return True
            event(
                log,
                "server failed on a buffered write; retrying it",
                logging.WARNING,
                seq=record["seq"],
                path=record["path"],
                status=status,
                attempts=n,
                max_attempts=self.max_attempts,
                response=text[:300],
            )
            return False
        if was_up:
            event(
                log,
                "server unavailable; keeping writes in the log",
                logging.WARNING,
                status=status,
                error=text[:200],
                pending=self.wal.pending_count,
            )
        self._note(outcome, status, text, record, 0)
        return False

    async def _send(self, request: Request) -> tuple[int, str]:
        self.sent_requests += 1
        try:
            if request.blob is not None:
                path = self.wal.blob_path(request.blob)
                r = await self.http.request(
                    request.method,
                    request.path,
                    content=_chunks(path),
                    headers={"Content-Length": str(path.stat().st_size)},
                )
            else:
                r = await self.http.request(
                    request.method,
                    request.path,
                    content=orjson.dumps(request.body),
                    headers={"Content-Type": "application/json"},
                )
        except (httpx.TransportError, OSError) as exc:
            return NO_ANSWER, redact_url(repr(exc))  # it may name the URL
        except Exception as exc:  # noqa: BLE001 - a record the sidecar cannot send is a failure of it
            event(log, "could not send a buffered write", logging.ERROR, path=request.path, error=repr(exc))
            return 500, f"the sidecar could not send it: {exc!r}"
        if r.status_code == 404 and request.path.endswith("/delete-tag"):
            return 200, ""  # already deleted: a replay of an applied delete
        return r.status_code, r.text

    async def _probe(self) -> int:
        try:
            r = await self.http.get(PROBE, params={"experiment_id": "0"}, timeout=10.0)
        except (httpx.TransportError, OSError):
            return NO_ANSWER
        return r.status_code

    # ---- state and reports ---------------------------------------------------------------
    def _note(self, outcome: Outcome, status: int, text: str, record: dict[str, Any], attempts: int) -> None:
        self.stalled = True
        self.last_failure = {
            "outcome": outcome.value,
            "status": status,
            "error": text[:300],
            "seq": record["seq"],
            "path": record["path"],
            "attempts": attempts,
            "at": round(time.time(), 3),
        }

    def _unauthorized(self, status: int, text: str, record: dict[str, Any]) -> None:
        self._note(Outcome.UNAUTHORIZED, status, text, record, 0)
        now = time.monotonic()
        if not self.auth_failing or now - self._auth_reported >= AUTH_REMINDER_SECONDS:
            event(
                log,
                "the server refuses the sidecar's credentials; writes are kept in the "
                "log until it accepts them: check --server-token "
                "(MODELSHIP_SIDECAR_SERVER_TOKEN)",
                logging.ERROR,
                status=status,
                response=text[:300],
                pending=self.wal.pending_count,
                pending_bytes=self.wal.pending_bytes,
            )
            self._auth_reported = now
        self.auth_failing = True

    def _recovered(self) -> None:
        if self.auth_failing:
            event(log, "the server accepts the sidecar's writes again", pending=self.wal.pending_count)
        elif not self.server_up:
            event(log, "server reachable again; forwarding", pending=self.wal.pending_count)
        self.server_up, self.auth_failing, self.stalled, self._sick = True, False, False, False

    async def _failed_attempt(self) -> None:
        self.failures += 1
        async with self._progress:
            self._progress.notify_all()

    async def _dead_letter(self, record: dict[str, Any], reason: str, status: int, text: str) -> None:
        blob = self.wal.blob_path(record["blob"]) if record.get("blob") else None
        self.dead.add(record, reason, status, text, blob)
        await self._advance(int(record["seq"]))

    async def _advance(self, seq: int) -> None:
        if self.wal.last_seq <= seq:
            self._flush.clear()
        self.wal.mark_forwarded(seq)
        async with self._progress:
            self._progress.notify_all()

    async def drain(self, timeout: float) -> bool:
        """Forward what is left, for at most ``timeout`` seconds; True when nothing is left."""
        done = await self.wait_forwarded(self.wal.last_seq, timeout)
        if done:
            event(log, "drain finished", pending=0)
        else:
            # On an emptyDir these writes end with the pod: say why they could not go.
            event(
                log,
                "drain timed out; writes stay in the log",
                logging.ERROR,
                pending=self.wal.pending_count,
                pending_bytes=self.wal.pending_bytes,
                server_up=self.server_up,
                auth_failing=self.auth_failing,
                last_failure=self.last_failure,
                buffer_dir=str(self.wal.dir),
            )
        return done

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.http.aclose()
