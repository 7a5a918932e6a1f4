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
