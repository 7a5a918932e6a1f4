"""Micro-batching: concurrent requests share one predict call; errors stay per request."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from modelship.serving.batching import MicroBatcher


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_requests_are_coalesced_and_split_back() -> None:
    calls: list[int] = []

    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        calls.append(len(data))
        return data[:, 0] * 10

    async def main() -> list[Any]:
        b = MicroBatcher(predict, ThreadPoolExecutor(1), max_batch_size=100)
        b.start()
        parts = [np.full((i + 1, 2), float(i)) for i in range(5)]
        results = await asyncio.gather(*(b.submit(p, len(p)) for p in parts))
        await b.stop()
        return results

    results = run(main())
    assert calls == [15]  # all five submitted before the batcher ran: one call
    assert [r.tolist() for r in results] == [[float(i * 10)] * (i + 1) for i in range(5)]


def test_max_batch_size_caps_rows_per_call() -> None:
    calls: list[int] = []

    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        calls.append(len(data))
        return data[:, 0]

    async def main() -> None:
        b = MicroBatcher(predict, ThreadPoolExecutor(1), max_batch_size=4)
        b.start()
        await asyncio.gather(*(b.submit(np.zeros((3, 1)), 3) for _ in range(4)))
        await b.stop()

    run(main())
    assert calls == [3, 3, 3, 3]


def test_a_failing_request_fails_alone() -> None:
    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        if (data < 0).any():
            raise ValueError("negative")
        return data[:, 0]

    async def main() -> list[Any]:
        b = MicroBatcher(predict, ThreadPoolExecutor(1), max_batch_size=100)
        b.start()
        inputs = [np.ones((2, 1)), -np.ones((1, 1)), np.full((1, 1), 3.0)]
        out = await asyncio.gather(*(b.submit(x, len(x)) for x in inputs), return_exceptions=True)
        await b.stop()
        return out

    ok1, bad, ok2 = run(main())
    assert ok1.tolist() == [1.0, 1.0] and ok2.tolist() == [3.0]
    assert isinstance(bad, ValueError)


def test_output_not_aligned_with_rows_falls_back_to_one_call_each() -> None:
    calls: list[int] = []

    def predict(data: np.ndarray, params: Any) -> float:
        calls.append(len(data))
        return float(data.sum())  # one number per call, not per row

    async def main() -> list[Any]:
        b = MicroBatcher(predict, ThreadPoolExecutor(1), max_batch_size=100)
        b.start()
        out = await asyncio.gather(b.submit(np.ones((2, 1)), 2), b.submit(np.ones((3, 1)), 3))
        await b.stop()
        return out

    assert run(main()) == [2.0, 3.0]
    assert calls == [5, 2, 3]


@pytest.mark.parametrize("delay", [0.0, 30.0])
def test_max_delay_lets_a_batch_fill(delay: float) -> None:
    calls: list[int] = []

    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        calls.append(len(data))
        return data[:, 0]

    async def main() -> None:
        # a full batch (2 rows) goes at once, so the long delay is never waited out
        b = MicroBatcher(predict, ThreadPoolExecutor(1), max_batch_size=2, max_delay_s=delay)
        b.start()
        first = asyncio.ensure_future(b.submit(np.zeros((1, 1)), 1))
        await asyncio.sleep(0.01)  # the batcher has taken the first request by now
        second = asyncio.ensure_future(b.submit(np.zeros((1, 1)), 1))
        await asyncio.gather(first, second)
        await b.stop()

    run(main())
    assert calls == ([1, 1] if delay == 0.0 else [2])


def _threads_of_calls(cost_s: float, batches: int, inline_below_s: float) -> list[str]:
    """Which thread ran each of ``batches`` sequential one-request batches of a predict that
    burns ``cost_s`` of CPU per call."""
    import threading
    import time

    where: list[str] = []

    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        end = time.thread_time() + cost_s
        while time.thread_time() < end:
            pass
        where.append(threading.current_thread().name)
        return data[:, 0]

    async def main() -> None:
        b = MicroBatcher(
            predict,
            ThreadPoolExecutor(1, thread_name_prefix="predict"),
            max_batch_size=10,
            inline_below_s=inline_below_s,
        )
        b.start()
        for i in range(batches):
            out = await b.submit(np.full((1, 1), float(i)), 1)
            assert out.tolist() == [float(i)]
        await b.stop()

    run(main())
    return where


def test_quick_predict_runs_on_the_event_loop_after_eight_calls() -> None:
    where = _threads_of_calls(0.0, 12, inline_below_s=0.5)
    assert where[:8] == ["predict_0"] * 8  # timed on the thread first
    assert where[8:] == ["MainThread"] * 4


def test_slow_predict_stays_on_the_thread() -> None:
    where = _threads_of_calls(0.003, 12, inline_below_s=0.001)
    assert where == ["predict_0"] * 12


def test_inline_off_by_default() -> None:
    assert _threads_of_calls(0.0, 10, inline_below_s=0.0) == ["predict_0"] * 10


def test_one_slow_call_sends_batches_back_to_the_thread() -> None:
    import threading
    import time

    where: list[str] = []

    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        if data[0, 0] == 9.0:  # the tenth call, already inline, is slow
            end = time.thread_time() + 0.02
            while time.thread_time() < end:
                pass
        where.append(threading.current_thread().name)
        return data[:, 0]

    async def main() -> None:
        b = MicroBatcher(
            predict, ThreadPoolExecutor(1, thread_name_prefix="predict"), max_batch_size=10, inline_below_s=0.01
        )
        b.start()
        for i in range(12):
            await b.submit(np.full((1, 1), float(i)), 1)
        await b.stop()

    run(main())
    assert where[8:] == ["MainThread", "MainThread", "predict_0", "predict_0"]


def test_inline_batches_coalesce_and_fail_alone() -> None:
    calls: list[int] = []

    def predict(data: np.ndarray, params: Any) -> np.ndarray:
        calls.append(len(data))
        if (data < 0).any():
            raise ValueError("negative")
        return data[:, 0]

    async def main() -> list[Any]:
        b = MicroBatcher(predict, ThreadPoolExecutor(1), max_batch_size=100, inline_below_s=1.0)
        b.start()
        for _ in range(8):  # time eight calls: the batches after them run inline
            await b.submit(np.ones((1, 1)), 1)
        calls.clear()
        inputs = [np.ones((2, 1)), -np.ones((1, 1)), np.full((1, 1), 3.0)]
        out = await asyncio.gather(*(b.submit(x, len(x)) for x in inputs), return_exceptions=True)
        await b.stop()
        return out

    ok1, bad, ok2 = run(main())
    assert ok1.tolist() == [1.0, 1.0] and ok2.tolist() == [3.0]
    assert isinstance(bad, ValueError)
    assert calls == [4, 2, 1, 1]  # one batched call, then each alone
