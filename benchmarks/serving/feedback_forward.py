"""What a hop costs: ``POST /feedback`` to the server that made the predictions, against the
same to its peer, which passes them on (``MODELSHIP_FEEDBACK_PEERS``).

Two ``modelship serve`` processes on loopback, each naming both as peers (as a
ModelDeployment's pods find each other through its headless Service). Each round makes
``2 x batch`` predictions on server A, then sends half of their outcomes to A (all known
there: no hop) and the other half to B (none known there: all forwarded to A), in turns,
so a change in the machine's load hits both alike. Medians over the rounds; the load
average is printed beside them (the machine is shared).

    .venv/bin/python benchmarks/serving/feedback_forward.py [--rounds 30] [--batch 35]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.local_servers import free_port, stop, wait_http

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=35, help="outcomes per POST /feedback")
    args = parser.parse_args()

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelship.models.save import save_model

    X, y = load_iris(return_X_y=True, as_frame=True)
    work = Path(tempfile.mkdtemp(prefix="feedback-forward-"))
    save_model(work / "model", LogisticRegression(max_iter=300).fit(X, y), input_example=X.head(2))
    ports = [free_port(), free_port()]
    env = {**os.environ, "MODELSHIP_FEEDBACK_PEERS": ",".join(f"127.0.0.1:{p}" for p in ports)}
    procs = []
    try:
        for port in ports:
            log = (work / f"serve-{port}.log").open("wb")
            cmd = [sys.executable, "-m", "modelship", "serve", "-m", str(work / "model"), "--host", "127.0.0.1"]
            proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
            procs.append(proc)
            wait_http(f"http://127.0.0.1:{port}/v2/health/ready", proc, log=work / f"serve-{port}.log")
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        rows = X.to_numpy().tolist()
        local, forwarded = [], []
        with httpx.Client(timeout=60) as client:
            for r in range(args.rounds + 1):  # round 0 warms up (connections, the peer's instance)
                ids = []
                for i in range(2 * args.batch):
                    body = {"dataframe_split": {"columns": COLUMNS, "data": [rows[(r * 7 + i) % len(rows)]]}}
                    ids.append(client.post(f"{a}/invocations", json=body).headers["x-request-id"])
                halves = [(a, ids[: args.batch], local), (b, ids[args.batch :], forwarded)]
                for url, part, out in halves if r % 2 else halves[::-1]:
                    body = {"outcomes": [{"requestId": rid, "reward": 1.0} for rid in part]}
                    t0 = time.perf_counter()
                    reply = client.post(f"{url}/feedback", json=body).json()
                    elapsed = time.perf_counter() - t0
                    assert reply["accepted"] == args.batch, reply
                    if r:
                        out.append(elapsed)
        med_local, med_fwd = statistics.median(local), statistics.median(forwarded)
        result = {
            "rounds": args.rounds,
            "batch": args.batch,
            "local_ms": round(med_local * 1000, 3),
            "forwarded_ms": round(med_fwd * 1000, 3),
            "hop_ms": round((med_fwd - med_local) * 1000, 3),
            "hop_us_per_outcome": round((med_fwd - med_local) / args.batch * 1e6, 1),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "cores": os.cpu_count(),
        }
        print(json.dumps(result, indent=1))
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    main()
