"""The mlflow client side of the benchmark: the same code for every target.

``python driver.py MODE N`` with MLFLOW_TRACKING_URI set; MODE is ``batch`` (N log_batch
calls of 1000 metrics each) or ``single`` (N log_metric calls). It sets up (imports, an
experiment, a run, a warm-up call), prints ``ready``, waits for a line on stdin, then
runs the timed loop and prints one JSON line. The wait lets bench.py start several
drivers together: their imports and setup (seconds of CPU each) stay out of the timed
part of the others.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from mlflow import MlflowClient
from mlflow.entities import Metric


def main() -> None:
    mode, n = sys.argv[1], int(sys.argv[2])
    client = MlflowClient()
    exp = client.create_experiment(f"bench-{mode}-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp)
    rid = run.info.run_id
    ts = int(time.time() * 1000)
    # warm-up (connection, first-call costs), not timed
    client.log_metric(rid, "warmup", 0.0, timestamp=ts, step=0)
    batches = [
        [Metric(f"m{k % 10}", float(i * 1000 + k), ts + i, i * 100 + k // 10) for k in range(1000)]
        for i in range(n if mode == "batch" else 0)
    ]
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    t0 = time.perf_counter()
    if mode == "batch":
        for batch in batches:
            client.log_batch(rid, metrics=batch, synchronous=True)
        count = n * 1000
    else:
        for i in range(n):
            client.log_metric(rid, "loss", 1.0 / (i + 1), timestamp=ts + i, step=i, synchronous=True)
        count = n
    elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "mode": mode,
                "run_id": rid,
                "count": count,
                "seconds": elapsed,
                "start": start,
                "end": start + elapsed,
                "per_second": count / elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
