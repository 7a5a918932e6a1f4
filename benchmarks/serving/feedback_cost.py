"""What the A/B readout's bookkeeping costs a model server: a micro-benchmark, in process.

Per prediction the server makes (or checks) a request id and remembers the prediction under
it (``FeedbackBook.remember``); per fed-back outcome it looks the id up and counts it
(``FeedbackBook.record``). This times both on the predictions the server really has (numpy
arrays of 1 and 16 rows), and measures the memory the full window holds with tracemalloc.

    .venv/bin/python benchmarks/serving/feedback_cost.py [--window 50000] [--seconds 0.5]

Wall-clock figures of a shared machine: run it on a quiet one, and read them as orders of
magnitude beside the request's own cost (tens to hundreds of microseconds).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np

from modelship.serving.feedback import FeedbackBook, check_request_id


def per_call(fn, seconds: float) -> float:  # type: ignore[no-untyped-def]
    for _ in range(200):
        fn()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            fn()
        calls += 100
    return (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    out: dict[str, float] = {}
    for rows in (1, 16):
        book = FeedbackBook(window=args.window, max_rows=64, max_batch=1000)
        pred = np.arange(rows, dtype=np.int64) % 3
        out[f"new_id_and_remember_{rows}_rows_us"] = (
            per_call(lambda book=book, pred=pred: book.remember(book.new_id(), pred), args.seconds) * 1e6
        )
    out["check_client_id_us"] = (
        per_call(lambda: check_request_id("0f8fad5b-d9cb-469f-a165-70867728950e"), args.seconds) * 1e6
    )

    book = FeedbackBook(window=args.window, max_rows=64, max_batch=1000)
    pred = np.array([1], dtype=np.int64)
    ids = [book.new_id() for _ in range(args.window)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for rid in ids:
        book.remember(rid, pred)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    out["bytes_per_remembered_one_row_request"] = held / args.window
    out["window_mb"] = held / 1e6

    batch = {"outcomes": [{"requestId": rid, "label": 1} for rid in ids[:1000]]}
    t0 = time.perf_counter()
    book.record(batch)
    out["record_per_outcome_us"] = (time.perf_counter() - t0) / 1000 * 1e6
    print(json.dumps({k: round(v, 3) for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
