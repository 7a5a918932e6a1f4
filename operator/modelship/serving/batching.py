"""Adaptive micro-batching: concurrent requests coalesced into one predict call.

One task drains a queue; one worker thread runs predict. A batch goes out as soon as the
worker is free, carrying every request that arrived meanwhile (up to ``max_batch_size``
rows), so an idle server adds no delay and a busy one batches more. ``max_delay_s`` > 0
additionally waits that long for a batch to fill. The result is split back by row
offsets. When a batched predict raises, each request is retried alone, so one bad
request fails only itself.

A batch whose predict is known to be quick (every recent call under ``inline_below_s``)
runs on the event loop itself instead of the worker thread. Profiled under load
(benchmarks/serving/README.md), the thread cost more than the predict: each batch's hop
there and back, and every time the predict thread let go of the GIL (a numpy call, the
wake-up of the loop) it waited for the busy event loop to hand it back — so a batch of
two 100-row requests took far longer than its predict. Inline, the next batch is every
request parsed meanwhile, as before; a model whose calls take longer (or one slow call)
goes back to the thread, so the loop is never held for long and timeouts still apply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.enforce import ModelInput

log = logging.getLogger(__name__)

PredictFn = Callable[[ModelInput, dict[str, Any] | None], Any]


@dataclass(slots=True)
class _Item:
    data: ModelInput
    rows: int
    future: asyncio.Future[Any] = field(repr=False)


class MicroBatcher:
    """Coalesces row inputs (2-D arrays or DataFrames) of concurrent requests."""

    def __init__(
        self,
        predict: PredictFn,
        executor: ThreadPoolExecutor,
        *,
        max_batch_size: int,
        max_delay_s: float = 0.0,
        on_batch: Callable[[int, int, float, list[Any]], None] | None = None,
        on_settled: Callable[[list[tuple[ModelInput, Any]]], None] | None = None,
        inline_below_s: float = 0.0,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.on_batch = on_batch
        #: called with (input, output) pairs once the batch's requests have their answers
        self.on_settled = on_settled
        #: run a batch on the event loop while predict calls take less than this (0: never)
        self.inline_below_s = inline_below_s
        self._recent = _RecentCalls()
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._carry: _Item | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def enqueue(self, data: ModelInput, rows: int) -> asyncio.Future[Any]:
        """Queue rows for the next batch; the future gets their slice of the output."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Item(data, rows, fut))
        return fut

    async def submit(self, data: ModelInput, rows: int) -> Any:
        return await self.enqueue(data, rows)

    async def _next_batch(self) -> list[_Item]:
        first = self._carry or await self.queue.get()
        self._carry = None
        batch, rows = [first], first.rows
        deadline = time.monotonic() + self.max_delay_s
        while rows < self.max_batch_size:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), wait)
                except TimeoutError:
                    break
            if rows + item.rows > self.max_batch_size or not _compatible(first.data, item.data):
                self._carry = item
                break
            batch.append(item)
            rows += item.rows
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            batch = [i for i in batch if not i.future.done()]  # e.g. timed-out requests
            if not batch:
                continue
            if self._recent.quick(self.inline_below_s):
                try:
                    self._predict_batch(batch, None)
                except Exception:
                    log.exception("batch failed unexpectedly")
                # let the requests just answered write their replies before the next predict
                await asyncio.sleep(0)
                continue
            try:
                await loop.run_in_executor(self.executor, self._predict_batch, batch, loop)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.future.done():
                        item.future.cancel()
                raise
            except Exception:
                log.exception("batch failed unexpectedly")

    def _predict_batch(self, batch: list[_Item], loop: asyncio.AbstractEventLoop | None) -> None:
        """Runs in the worker thread and hands each result back to ``loop``, or (``loop``
        None) on the event loop itself."""
        total = sum(i.rows for i in batch)
        start, cpu = time.perf_counter(), time.thread_time()
        if len(batch) == 1:
            results = [self._call(batch[0].data)]
            observed = [(batch[0].data, results[0])]
        else:
            merged = _concat([i.data for i in batch])
            out = self._call(merged)
            if isinstance(out, BaseException) or _length(out) != total:
                # a failure, or output that does not line up with rows: one request at a time
                results = [self._call(i.data) for i in batch]
                observed = [(i.data, r) for i, r in zip(batch, results)]
            else:
                observed = [(merged, out)]
                results, offset = [], 0
                for item in batch:
                    results.append(_slice(out, offset, offset + item.rows))
                    offset += item.rows
        elapsed = time.perf_counter() - start
        # the call's own CPU time: on a crowded machine the wall clock also counts the
        # time the thread waited for a core, which inline would not make any shorter
        self._recent.add(time.thread_time() - cpu)
        if self.on_batch is not None:
            try:
                self.on_batch(total, len(batch), elapsed, [r for _, r in observed if not isinstance(r, BaseException)])
            except Exception:
                log.exception("on_batch hook failed")
        pairs = [(item.future, res) for item, res in zip(batch, results)]
        settled = [(x, r) for x, r in observed if not isinstance(r, BaseException)]
        if loop is None:
            _settle_all(pairs)
            if self.on_settled is not None and settled:
                # behind the requests just woken (their replies go first): no client waits for it
                asyncio.get_running_loop().call_soon(self._settled, settled)
            return
        # one wake-up of the event loop for the whole batch, not one per request
        loop.call_soon_threadsafe(_settle_all, pairs)
        if self.on_settled is not None:
            # after the replies are on their way: accounting that no client waits for
            self._settled(settled)

    def _settled(self, pairs: list[tuple[ModelInput, Any]]) -> None:
        assert self.on_settled is not None
        try:
            self.on_settled(pairs)
        except Exception:
            log.exception("on_settled hook failed")

    def _call(self, data: ModelInput) -> Any:
        try:
            return self.predict(data, None)
        except Exception as exc:  # noqa: BLE001 - the request gets it as a 500
            return exc


class _RecentCalls:
    """The CPU time of the last few predict calls: is predict quick enough to run inline?"""

    SIZE = 8

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.longest = float("inf")  # unknown until SIZE calls were timed

    def add(self, seconds: float) -> None:
        s = self.seconds
        s.append(seconds)
        if len(s) > self.SIZE:
            del s[0]
        if len(s) == self.SIZE:
            self.longest = max(s)

    def quick(self, limit: float) -> bool:
        """Every one of the last SIZE calls took less than ``limit`` (never before SIZE calls)."""
        return self.longest < limit


def _settle_all(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, res in pairs:
        _settle(fut, res)


def _settle(fut: asyncio.Future[Any], res: Any) -> None:
    if fut.done():
        return
    if isinstance(res, BaseException):
        fut.set_exception(res)
    else:
        fut.set_result(res)


def _compatible(a: ModelInput, b: ModelInput) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(a.dtype == b.dtype and a.shape[1:] == b.shape[1:])
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        return list(a.columns) == list(b.columns)
    return False


def _concat(parts: list[ModelInput]) -> ModelInput:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return pd.concat(parts, ignore_index=True)


def _length(out: Any) -> int | None:
    if isinstance(out, np.ndarray):
        return int(out.shape[0]) if out.ndim else None
    if isinstance(out, (pd.DataFrame, pd.Series, list)):
        return len(out)
    return None


def _slice(out: Any, lo: int, hi: int) -> Any:
    if isinstance(out, (pd.DataFrame, pd.Series)):
        return out.iloc[lo:hi].reset_index(drop=True)
    return out[lo:hi]
