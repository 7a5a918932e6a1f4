"""The sidecar's RSS while its server is away and a client writes at full speed.

``python benchmarks/tracking/sidecar_outage.py [--seconds 60] [--source DIR] [--json out.json]``

Starts ``modelship tracking-sidecar`` (from ``DIR/operator`` when ``--source`` names another
checkout, e.g. a ``git worktree`` of an older commit; else this one) in front of a port where
nothing listens, and posts ``runs/log-batch`` calls of 1000 metrics from one client, back to
back, for ``--seconds``. It samples the sidecar's RSS every second and prints the RSS
before and after, the peak, and how many calls were acknowledged (200) or pushed back (503).
A sidecar that holds everything in memory is stopped at ``--stop-at-mib`` (recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.tracking.bench import rss_mb
from tests.local_servers import free_port, wait_http

API = "/api/2.0/mlflow"


def batch(run_id: str, n: int) -> dict[str, object]:
    return {
        "run_id": run_id,
        "metrics": [
            {"key": "m", "value": float(i), "timestamp": 1_700_000_000_000 + n, "step": i} for i in range(1000)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--source", type=Path, help="a checkout whose operator/ is run instead of this one")
    parser.add_argument("--stop-at-mib", type=float, default=6144.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = str(args.source.resolve() / "operator")
    port, dead = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sidecar-outage-") as tmp:
        log = Path(tmp) / "sidecar.log"
        with open(log, "wb") as out:
            sidecar = subprocess.Popen(
                [sys.executable, "-m", "modelship", "tracking-sidecar", "--port", str(port)]
                + ["--server", f"http://127.0.0.1:{dead}", "--buffer-dir", str(Path(tmp) / "buffer")],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_http(f"http://127.0.0.1:{port}/health", sidecar, log=log)
            code = subprocess.run(
                [sys.executable, "-c", "import modelship, sys; sys.stdout.write(modelship.__file__)"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            run_id = "0" * 32
            before = rss_mb(sidecar.pid)
            peak, acked, refused, stopped = before, 0, 0, False
            samples: list[tuple[float, float]] = [(0.0, before)]
            started = next_sample = time.monotonic()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                n = 0
                while time.monotonic() - started < args.seconds:
                    r = client.post(f"{API}/runs/log-batch", json=batch(run_id, n))
                    n += 1
                    if r.status_code == 200:
                        acked += 1
                    elif r.status_code == 503:
                        refused += 1
                    else:
                        raise SystemExit(f"unexpected answer {r.status_code}: {r.text[:300]}")
                    if time.monotonic() >= next_sample:
                        rss = rss_mb(sidecar.pid)
                        samples.append((round(time.monotonic() - started, 1), round(rss, 1)))
                        peak = max(peak, rss)
                        next_sample += 1.0
                        if rss > args.stop_at_mib:
                            stopped = True
                            break
            after = rss_mb(sidecar.pid)
            elapsed = time.monotonic() - started
        finally:
            if sidecar.poll() is None:
                os.killpg(sidecar.pid, signal.SIGKILL)
                sidecar.wait()
    result = {
        "code": code,
        "seconds": round(elapsed, 1),
        "rss_mib_before": round(before, 1),
        "rss_mib_after": round(after, 1),
        "rss_mib_peak": round(max(peak, after), 1),
        "calls_acknowledged": acked,
        "calls_503": refused,
        "stopped_at_stop_at_mib": stopped,
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
