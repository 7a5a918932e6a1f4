"""The durable log keeps its pending records on disk: a restart streams the file, the head is
read as far as the forwarder needs, byte counts hold across restarts, and a log that never
empties is compacted."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelship.tracking.sidecar.batches import plan
from modelship.tracking.sidecar.wal import DurableLog

API = "/api/2.0/mlflow"


def batch(run: str, i: int, n: int = 100) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": f"{API}/runs/log-batch",
        "run_id": run,
        "body": {
            "run_id": run,
            "metrics": [{"key": "loss", "value": i + j / n, "timestamp": i, "step": i * n + j} for j in range(n)],
        },
    }


def peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fill(directory: Path, records: int) -> int:
    log = DurableLog(directory)
    for i in range(records):
        log.append(batch("r", i))
    size = log.file_bytes
    log.close()
    return size


def test_a_restart_streams_the_log_instead_of_loading_it(tmp_path: Path) -> None:
    size = fill(tmp_path, 4000)  # ~25 MB of log
    assert size > 20 << 20
    reopened: list[DurableLog] = []
    peak = peak_bytes(lambda: reopened.append(DurableLog(tmp_path)))
    assert peak < 4 << 20, peak
    log = reopened[0]
    assert log.pending_count == 4000 and log.pending_bytes == size and log.last_seq == 4000


def test_the_head_is_read_only_as_far_as_a_request_needs(tmp_path: Path) -> None:
    fill(tmp_path, 4000)
    log = DurableLog(tmp_path)
    requests: list[Any] = []
    peak = peak_bytes(lambda: requests.append(plan(log.head(), 1000)))
    request = requests[0]
    assert request is not None and len(request.records) == 10  # 10 x 100 metrics
    assert peak < 4 << 20, peak
    log.mark_forwarded(request.last_seq)
    assert log.pending_count == 3990
    assert next(log.head())["seq"] == 11


def test_pending_bytes_count_frames_and_blobs_across_restarts(tmp_path: Path) -> None:
    log = DurableLog(tmp_path)
    log.append(batch("r", 0))
    (log.blob_path("b1")).write_bytes(b"x" * 5000)
    log.append({"method": "PUT", "path": "/x", "run_id": None, "body": None, "blob": "b1"})
    total = log.pending_bytes
    assert total > 5000 + log.file_bytes - 100
    log.close()
    log = DurableLog(tmp_path)
    assert log.pending_bytes == total
    log.mark_forwarded(2)
    assert log.pending_bytes == 0 and log.pending_count == 0
    assert not log.blob_path("b1").exists()  # the log owns its blobs


def test_a_log_that_never_empties_is_compacted(tmp_path: Path) -> None:
    log = DurableLog(tmp_path, compact_min_bytes=200_000)
    seq = 0
    for _round in range(40):  # the forwarder keeps up, but never quite
        for i in range(20):
            seq = log.append(batch("r", seq + i))
        log.mark_forwarded(seq - 1)
        assert log.pending_count == 1
        assert log.file_bytes < 200_000 + 21 * 8_000
    assert (tmp_path / "wal.log").stat().st_size == log.file_bytes < 400_000
    assert [r["seq"] for r in log.head()] == [seq]
    log.append(batch("r", 0))
    log.close()
    assert [r["seq"] for r in DurableLog(tmp_path).pending] == [seq, seq + 1]


def test_a_corrupt_length_is_a_torn_tail_not_an_allocation(tmp_path: Path) -> None:
    fill(tmp_path, 3)
    size = (tmp_path / "wal.log").stat().st_size
    with open(tmp_path / "wal.log", "ab") as f:
        f.write(b"\xff\xff\xff\xf0\x00\x00\x00\x00tail")  # claims a 4 GB record
    log = DurableLog(tmp_path)
    assert log.pending_count == 3 and (tmp_path / "wal.log").stat().st_size == size


def test_pending_streams_a_snapshot(tmp_path: Path) -> None:
    fill(tmp_path, 5)
    log = DurableLog(tmp_path)
    snapshot = log.pending
    log.append(batch("r", 5))
    assert [r["seq"] for r in snapshot] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in log.pending] == [1, 2, 3, 4, 5, 6]
