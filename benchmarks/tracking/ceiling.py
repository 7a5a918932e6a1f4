"""One unchanged mlflow client at its own speed: Modelship's server against the client's ceiling.

    .venv/bin/python benchmarks/tracking/ceiling.py [--batches 30] [--rounds 10] [--baseline DIR] [--json out.json]

The same driver as bench.py (the real ``mlflow`` client, ``log_batch`` of 1000 metrics,
synchronous) against the null server (stores nothing: the client's own ceiling) and
against ``modelship tracking-server`` on SQLite, interleaved round by round. For each
round it records the rate, and the server's CPU time from /proc. With ``--baseline DIR``, a
third in the same rounds: the server of another checkout (main's, in a ``git worktree``), to
tell a change from the machine's drift. Then, in this process,
it times the server's own steps on the same bodies the client sends (mlflow's encoder):
parsing, validation and the SQL writes, and the commit, so that the time one batch costs
the server can be told apart. Prints ours as a percentage of the ceiling (the issue's
goal: 80 %), and where the server's time per batch goes. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.tracking.bench import HERE, PY, drive, free_port, history_len, start, start_modelship, stop


def load() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def server_steps(batches: int, work: Path) -> dict[str, float]:
    """Milliseconds per 1000-metric batch of each step the server takes, timed in process on
    mlflow-encoded bodies (median over ``batches``), CPU time of this thread."""
    from mlflow.entities import Metric
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import message_to_json
    from sqlalchemy import event

    from modelship.tracking.protocol import fastparse
    from modelship.tracking.store.sql import TrackingStore

    store = TrackingStore(f"sqlite:///{work}/steps.db")
    run_id = str(store.create_run(store.create_experiment("steps"), None, "steps", None)["info"]["run_id"])
    ts = int(time.time() * 1000)
    bodies = [
        message_to_json(
            LogBatch(
                run_id=run_id,
                metrics=[
                    Metric(f"m{k % 10}", float(i * 1000 + k), ts + i, i * 100 + k // 10).to_proto() for k in range(1000)
                ],
            )
        ).encode()
        for i in range(batches)
    ]
    commit_s: list[float] = []

    @event.listens_for(store.engine, "commit")
    def _before(_conn: Any) -> None:
        commit_s.append(time.thread_time())

    parse, write, commit = [], [], []
    for body in bodies:
        t0 = time.thread_time()
        rid, metrics, params, tags = fastparse.log_batch(body)
        t1 = time.thread_time()
        store.log_batch(rid, metrics, params, tags)
        t2 = time.thread_time()
        before_commit = commit_s[-1]
        parse.append(t1 - t0)
        write.append(before_commit - t1)
        commit.append(t2 - before_commit)
    stored = len(store.history.get_metric_history(run_id, "m0")[0])
    store.close()
    assert stored == batches * 100, (stored, batches)  # every body's 100 points of m0 landed
    return {
        "body_kib": len(bodies[0]) / 1024,
        "parse_ms": statistics.median(parse) * 1000,
        "validate_and_sql_ms": statistics.median(write) * 1000,
        "commit_ms": statistics.median(commit) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=30, help="log_batch calls of 1000 metrics per round")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--baseline", type=Path, help="a checkout whose server runs in the same rounds, for comparison")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelship-ceiling-"))
    load_start = load()
    procs = []
    try:
        sp = free_port()
        ours = start_modelship(work, sp)
        procs.append(ours)
        np_ = free_port()
        null = start([PY, str(HERE / "null_server.py"), str(np_)], np_, work / "null.log")
        procs.append(null)
        s_uri, n_uri = f"http://127.0.0.1:{sp}", f"http://127.0.0.1:{np_}"
        rounds: dict[str, list[dict[str, Any]]] = {"ceiling": [], "modelship": []}
        servers = [("modelship", s_uri, ours.pid)]
        if a.baseline:
            bp = free_port()
            base = start_modelship(work, bp, a.baseline, "baseline")
            procs.append(base)
            rounds["baseline"] = []
            servers.append(("baseline", f"http://127.0.0.1:{bp}", base.pid))
        for i in range(a.rounds):
            # alternate which goes first, so a load that drifts within a round favours neither
            order = [("ceiling", n_uri, null.pid), *servers]
            for name, uri, pid in order if i % 2 == 0 else order[::-1]:
                r = drive(uri, "batch", a.batches, 1, [pid])
                r["load"] = load()
                rounds[name].append(r)
                print(
                    f"round {i + 1:2d}  {name:9s} {r['per_second']:8.0f} metrics/s  "
                    f"server CPU {r['server_cpu_ms_per_1000']:5.2f} ms/batch  load {r['load']}",
                    flush=True,
                )
        # every batch of every round stored, in full (1000 metrics = 100 points of m0..m9)
        for name, uri, _pid in servers:
            for r in rounds[name]:
                for run_id in r["run_ids"]:
                    points = sum(history_len(uri, run_id, f"m{k}") for k in range(10))
                    assert points == a.batches * 1000, (name, run_id, points)
        steps = server_steps(a.batches, work)
    finally:
        for p in procs:
            stop(p)
    load_end = load()

    def best(name: str) -> float:
        return max(r["per_second"] for r in rounds[name])

    def median(name: str) -> float:
        return statistics.median(r["per_second"] for r in rounds[name])

    pairs = [m["per_second"] / c["per_second"] for c, m in zip(rounds["ceiling"], rounds["modelship"], strict=True)]
    ms_per_batch = {name: 1000 * 1000 / best(name) for name in rounds}
    server_cpu = statistics.median(r["server_cpu_ms_per_1000"] for r in rounds["modelship"])
    result = {
        "command": " ".join(sys.argv),
        "load_start": load_start,
        "load_end": load_end,
        "ceiling_best": best("ceiling"),
        "modelship_best": best("modelship"),
        "ceiling_median": median("ceiling"),
        "modelship_median": median("modelship"),
        "percent_of_ceiling_best": 100 * best("modelship") / best("ceiling"),
        "percent_of_ceiling_median_of_pairs": 100 * statistics.median(pairs),
        "ms_per_batch_ceiling": ms_per_batch["ceiling"],
        "ms_per_batch_modelship": ms_per_batch["modelship"],
        "server_cpu_ms_per_batch": server_cpu,
        "server_steps": steps,
        "rounds": rounds,
    }
    if a.baseline:
        base_pairs = [
            m["per_second"] / c["per_second"] for c, m in zip(rounds["ceiling"], rounds["baseline"], strict=True)
        ]
        result |= {
            "baseline": str(a.baseline),
            "baseline_best": best("baseline"),
            "baseline_percent_of_ceiling_best": 100 * best("baseline") / best("ceiling"),
            "baseline_percent_of_ceiling_median_of_pairs": 100 * statistics.median(base_pairs),
            "baseline_server_cpu_ms_per_batch": statistics.median(
                r["server_cpu_ms_per_1000"] for r in rounds["baseline"]
            ),
        }
    print()
    print(f"load average {load_start} at the start, {load_end} at the end")
    print(
        f"one mlflow client, log_batch of 1000 metrics: ceiling (null server) {best('ceiling'):.0f} metrics/s, "
        f"Modelship {best('modelship'):.0f} (best rounds): {result['percent_of_ceiling_best']:.0f} % of the ceiling; "
        f"median of the paired rounds {result['percent_of_ceiling_median_of_pairs']:.0f} %"
    )
    print(
        f"per batch (best rounds): {ms_per_batch['ceiling']:.1f} ms against the null server (the client's own work "
        f"and a round trip), {ms_per_batch['modelship']:.1f} ms against ours: "
        f"{ms_per_batch['modelship'] - ms_per_batch['ceiling']:.1f} ms more"
    )
    print(
        f"the server's CPU per batch: {server_cpu:.1f} ms (from /proc); of it, timed in process on the same bodies "
        f"({steps['body_kib']:.0f} KiB each): parse {steps['parse_ms']:.2f} ms, validation and SQL "
        f"{steps['validate_and_sql_ms']:.2f} ms, commit {steps['commit_ms']:.2f} ms; the rest is HTTP and ASGI"
    )
    if a.baseline:
        print(
            f"baseline ({a.baseline}), same rounds: {best('baseline'):.0f} metrics/s (best round), "
            f"{result['baseline_percent_of_ceiling_best']:.0f} % of the ceiling, median of the paired rounds "
            f"{result['baseline_percent_of_ceiling_median_of_pairs']:.0f} %; its CPU per batch "
            f"{result['baseline_server_cpu_ms_per_batch']:.1f} ms against {server_cpu:.1f} ms"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
