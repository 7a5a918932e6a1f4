"""The drift monitor's queue: ``observe`` only queues, a flush writes many calls at once, and
the rings end up exactly as when each call was written alone."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelship.models.profile import compute_profile, profile_predictions
from modelship.serving import drift
from modelship.serving.drift import FLUSH_CALLS, MAX_PENDING_CALLS, DriftConfig, DriftMonitor

RNG = np.random.default_rng(11)
TRAIN = pd.DataFrame(
    {
        "x": RNG.normal(size=3000),
        "y": RNG.uniform(size=3000),
        "colour": RNG.choice(["red", "green", "blue"], size=3000),
    }
)
CLASSES = RNG.integers(0, 3, size=3000)
PROFILE = {**compute_profile(TRAIN), "prediction": profile_predictions(CLASSES)}


def monitor(window: int = 300, columns: list[str] | None = None) -> DriftMonitor:
    return DriftMonitor(PROFILE, DriftConfig(window=window, min_samples=50), columns or list(TRAIN.columns))


def numbers(n: int, dtype: Any = np.float64) -> np.ndarray:
    return np.column_stack([RNG.normal(size=n), RNG.uniform(size=n)]).astype(dtype)


def calls() -> list[tuple[Any, Any]]:
    """Every kind of input the server hands over, with runs of arrays alike and breaks between them."""
    out: list[tuple[Any, Any]] = []
    for i in range(3 * FLUSH_CALLS + 5):
        n = int(RNG.integers(1, 40))
        pred = RNG.integers(0, 4, size=n)  # 3 is a class the profile has not seen
        kind = i % 7
        if kind in (0, 1, 2):
            data: Any = numbers(n)  # the usual case: float rows, runs merged
        elif kind == 3:
            data = numbers(n, np.float32)  # another dtype breaks the run
        elif kind == 4:
            frame = TRAIN.sample(n, random_state=i).reset_index(drop=True)
            data = frame.to_numpy(dtype=object)  # strings beside numbers
        elif kind == 5:
            data = TRAIN.sample(n, random_state=i).reset_index(drop=True)  # a frame
        else:
            data, pred = numbers(n), None  # no prediction to count
        out.append((data, pred))
    # longer than the window, inside a run of arrays alike (merged with its neighbours)
    out.insert(8, (numbers(700), RNG.integers(0, 3, size=700)))
    return out


def rings(m: DriftMonitor) -> list[Any]:
    return [(r.data.tolist(), r.pos, r.filled) for r in (m._num, m._cat, m._pred)]


def test_observe_queues_and_report_counts_every_row() -> None:
    m = monitor()
    for _ in range(5):
        m.observe(numbers(10), RNG.integers(0, 3, size=10))
    assert m.rows == 0  # queued, not written: fewer calls than FLUSH_CALLS
    report = m.report()
    assert report["rows"] == 50 and report["features"]["x"]["samples"] == 50
    assert report["prediction"]["samples"] == 50
    assert report["dropped_calls"] == 0


def test_a_full_queue_is_written_by_the_call_that_fills_it() -> None:
    m = monitor()
    for _ in range(FLUSH_CALLS - 1):
        m.observe(numbers(2), None)
    assert m.rows == 0
    m.observe(numbers(2), None)
    assert m.rows == 2 * FLUSH_CALLS


def test_the_window_is_identical_to_each_call_written_alone() -> None:
    batch = calls()
    queued, alone = monitor(), monitor()
    queued.observe_all(batch)
    for data, pred in batch:
        alone.observe(data, pred)
        alone.flush()
    assert queued.report() == alone.report()
    assert queued.rows == alone.rows == sum(len(d) for d, _ in batch)
    assert rings(queued) == rings(alone)


def test_the_queue_is_bounded_while_another_flush_runs() -> None:
    m = monitor()
    assert m._flushing.acquire()  # as if another thread were writing the rings
    try:
        for _ in range(MAX_PENDING_CALLS + 70):
            m.observe(numbers(3), None)
        assert len(m._pending) == MAX_PENDING_CALLS
    finally:
        m._flushing.release()
    report = m.report()
    assert report["dropped_calls"] == 70
    assert report["rows"] == 3 * MAX_PENDING_CALLS  # the newest calls were kept


def test_the_queue_is_bounded_in_rows_too() -> None:
    m = monitor()
    assert m._flushing.acquire()
    try:
        for _ in range(6):
            m.observe(numbers(drift.MAX_PENDING_ROWS // 4), None)
        assert m._pending_rows <= drift.MAX_PENDING_ROWS
    finally:
        m._flushing.release()
    assert m.report()["dropped_calls"] == 2


def test_a_call_that_fails_is_skipped_and_logged_once(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    m = monitor()
    bad = numbers(7)
    real = m._categorical_block

    def categorical_block(data: Any, rows: int) -> Any:
        if rows in (7, 5 + 7 + 5):  # the bad call, alone or merged with its neighbours
            raise ValueError("unreadable")
        return real(data, rows)

    monkeypatch.setattr(m, "_categorical_block", categorical_block)
    with caplog.at_level(logging.WARNING, logger="modelship.serving.drift"):
        m.observe_all([(numbers(5), None), (bad, None), (numbers(5), None)])
        report = m.report()
    assert report["rows"] == 10  # the two good calls, not the bad one
    assert report["features"]["x"]["samples"] == 10
    assert [r.getMessage() for r in caplog.records].count("drift accounting failed") == 1


def test_numeric_features_in_signature_order_are_read_without_a_gather() -> None:
    m = monitor()
    arr = numbers(20)
    block = m._numeric_block(arr, 20)
    assert block is not None and np.shares_memory(block, arr)  # a view: the ring write is the one copy
    frame = pd.DataFrame(arr, columns=["x", "y"])
    assert m._frame_positions(frame) == slice(0, 2)


def test_numeric_features_out_of_order_are_gathered() -> None:
    m = monitor(columns=["colour", "y", "x"])  # the signature puts x last
    arr = np.column_stack([np.array(["red"] * 20, dtype=object), np.arange(20.0), -np.arange(20.0)])
    block = m._numeric_block(arr, 20)
    assert block is not None and block[:, 0].tolist() == (-np.arange(20.0)).tolist()
    frame = pd.DataFrame({"y": np.arange(20.0), "x": -np.arange(20.0)})
    assert m._numeric_block(frame, 20).tolist() == block.tolist()  # type: ignore[union-attr]


def test_concurrent_observers_and_readers_lose_no_row_uncounted() -> None:
    m = monitor()
    barrier = threading.Barrier(5)

    def observer() -> None:
        barrier.wait()
        for _ in range(400):
            m.observe(numbers(3), None)

    def reader() -> None:
        barrier.wait()
        for _ in range(20):
            m.report()

    threads = [threading.Thread(target=observer) for _ in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = m.report()
    # every call either written or dropped from a full queue (counted): none lost, none twice
    assert report["rows"] + 3 * report["dropped_calls"] == 4 * 400 * 3
    assert report["features"]["x"]["samples"] == min(300, report["rows"])
