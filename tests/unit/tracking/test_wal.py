"""The sidecar's durable log and the forwarder's batching plan (no servers)."""

from __future__ import annotations

from pathlib import Path

from modelship.tracking.sidecar.forwarder import plan
from modelship.tracking.sidecar.wal import DurableLog

API = "/api/2.0/mlflow"


def metric(run: str, i: int) -> dict:
    return {
        "method": "POST",
        "path": f"{API}/runs/log-metric",
        "run_id": run,
        "body": {"run_id": run, "key": "m", "value": float(i), "timestamp": i, "step": i},
    }


def test_append_survives_reopen_and_cursor_skips_forwarded(tmp_path: Path) -> None:
    log = DurableLog(tmp_path)
    seqs = [log.append(metric("r", i)) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    log.close()  # a crash: nothing forwarded yet
    log = DurableLog(tmp_path)
    assert [r["seq"] for r in log.pending] == [1, 2, 3, 4, 5]
    log.mark_forwarded(3)
    log.close()
    log = DurableLog(tmp_path)
    assert [r["seq"] for r in log.pending] == [4, 5]
    assert log.append(metric("r", 9)) == 6


def test_torn_tail_is_cut_off(tmp_path: Path) -> None:
    log = DurableLog(tmp_path)
    for i in range(3):
        log.append(metric("r", i))
    log.close()
    size = (tmp_path / "wal.log").stat().st_size
    with open(tmp_path / "wal.log", "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")  # a record whose write never finished
    log = DurableLog(tmp_path)
    assert [r["body"]["step"] for r in log.pending] == [0, 1, 2]
    assert (tmp_path / "wal.log").stat().st_size == size
    assert log.append(metric("r", 3)) == 4


def test_fully_forwarded_log_is_truncated(tmp_path: Path) -> None:
    log = DurableLog(tmp_path)
    for i in range(3):
        log.append(metric("r", i))
    log.mark_forwarded(3)
    assert (tmp_path / "wal.log").stat().st_size == 0
    assert log.append(metric("r", 3)) == 4
    log.close()
    assert [r["seq"] for r in DurableLog(tmp_path).pending] == [4]


def test_plan_merges_one_runs_writes_into_log_batch() -> None:
    records = [dict(metric("a", i), seq=i + 1) for i in range(3)]
    records.append(
        {
            "method": "POST",
            "path": f"{API}/runs/log-parameter",
            "run_id": "a",
            "seq": 4,
            "body": {"run_id": "a", "key": "p", "value": "1"},
        }
    )
    records.append(dict(metric("b", 9), seq=5))
    req = plan(records, 1000)
    assert req is not None and req.path == f"{API}/runs/log-batch"
    assert [r["seq"] for r in req.records] == [1, 2, 3, 4]
    assert len(req.body["metrics"]) == 3 and req.body["params"] == [{"key": "p", "value": "1"}]
    assert req.body["run_id"] == "a"


def test_plan_respects_mlflow_limits_and_ordering() -> None:
    records = [dict(metric("a", i), seq=i + 1) for i in range(1500)]
    req = plan(records, 1000)
    assert req is not None and len(req.body["metrics"]) == 1000
    update = {
        "method": "POST",
        "path": f"{API}/runs/update",
        "run_id": "a",
        "seq": 1,
        "body": {"run_id": "a", "status": "FINISHED"},
    }
    req = plan([update, dict(metric("a", 1), seq=2)], 1000)
    assert req is not None and req.path == f"{API}/runs/update" and len(req.records) == 1
    params = [
        {
            "method": "POST",
            "path": f"{API}/runs/log-parameter",
            "run_id": "a",
            "seq": i,
            "body": {"run_id": "a", "key": f"p{i}", "value": "1"},
        }
        for i in range(150)
    ]
    req = plan(params, 1000)
    assert req is not None and len(req.body["params"]) == 100
