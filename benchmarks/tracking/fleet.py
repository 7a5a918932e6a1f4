"""Many training pods at once: N runs logging through N sidecars into one tracking server.

    python benchmarks/tracking/fleet.py [--pods 50] [--seconds 20] [--metrics-per-call 100] [--json out.json]

Starts ``modelship tracking-server`` (SQLite, one worker, or ``--backend-store-uri``) and
``--pods`` ``modelship tracking-sidecar`` processes, one per pod, each with a buffer
directory of its own, forwarding to that server; creates one run per pod. Then every pod
logs as a training loop does, back to back for ``--seconds`` (and at most ``--max-calls``
calls): ``runs/log-batch`` calls of ``--metrics-per-call`` metrics (10 keys, distinct
steps) to its own sidecar. The writers are one asyncio process (a coroutine per pod) so
that 50 mlflow client imports do not crowd the 2 cores; each write's latency is the time
to the sidecar's acknowledgement (a durable local append).

Measured: metrics/s the server absorbed (all metrics over the time from the first write
to the moment every sidecar reported its log forwarded), the server's CPU per 1,000
metrics over that time, the acknowledged write's p50/p99 (and the slowest), and the
sidecars' CPU. Checked: every acknowledged metric is on the server (``get-history`` of
every key of every run, counted), no sidecar rejected or dead-lettered a record, no
write got anything but a 200. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.tracking.bench import cpu_seconds, free_port, rss_mb, start, stop

API = "/api/2.0/mlflow"
KEYS = [f"m{k}" for k in range(10)]
PY = sys.executable


def batch(run_id: str, call: int, per_call: int) -> dict[str, Any]:
    steps = per_call // len(KEYS)
    return {
        "run_id": run_id,
        "metrics": [
            {
                "key": k,
                "value": float(call * steps + s),
                "timestamp": 1_700_000_000_000 + call,
                "step": call * steps + s,
            }
            for k in KEYS
            for s in range(steps)
        ],
    }


async def pod(
    url: str, run_id: str, per_call: int, until: float, max_calls: int, latencies: list[float], bad: list[str]
) -> int:
    """One training loop: log-batch calls back to back; returns the calls acknowledged."""
    done = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while done < max_calls and time.monotonic() < until:
            body = json.dumps(batch(run_id, done, per_call)).encode()
            t0 = time.perf_counter()
            try:
                resp = await http.post(
                    f"{API}/runs/log-batch", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                bad.append(f"{run_id}: {type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                bad.append(f"{run_id}: {resp.status_code} {resp.text[:200]}")
                continue
            done += 1
    return done


def percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def count_on_server(http: httpx.Client, run_id: str) -> int:
    total = 0
    for key in KEYS:
        token = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            got = http.get(f"{API}/metrics/get-history", params=params).json()
            total += len(got.get("metrics", []))
            token = got.get("next_page_token")
            if not token:
                break
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0, help="how long the pods write")
    ap.add_argument("--max-calls", type=int, default=400, help="most log-batch calls per pod")
    ap.add_argument("--metrics-per-call", type=int, default=100, help="a multiple of 10 (10 keys)")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--backend-store-uri", help="default: SQLite in the work directory")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelship-fleet-"))
    procs: list[subprocess.Popen[bytes]] = []
    out: dict[str, Any] = {"pods": args.pods, "load_start": os.getloadavg(), "cpus": os.cpu_count()}
    try:
        sp = free_port()
        store = args.backend_store_uri or f"sqlite:///{work}/modelship.db"
        server = start(
            [PY, "-m", "modelship", "tracking-server", "--port", str(sp), "--backend-store-uri", store]
            + ["--artifacts-destination", str(work / "art")],
            sp,
            work / "server.log",
        )
        procs.append(server)
        server_url = f"http://127.0.0.1:{sp}"
        http = httpx.Client(base_url=server_url, timeout=120)
        exp = http.post(f"{API}/experiments/create", json={"name": f"fleet-{time.time_ns()}"}).json()["experiment_id"]
        t_start = time.monotonic()
        ports = [free_port() for _ in range(args.pods)]
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
        for i, port in enumerate(ports):  # all at once; then wait for each
            log = open(work / f"sidecar-{i}.log", "ab")  # noqa: SIM115 - the process owns it
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "modelship", "tracking-sidecar", "--port", str(port), "--server", server_url]
                    + ["--buffer-dir", str(work / f"buffer-{i}")],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    env=env,
                )
            )
        sidecars = procs[1:]
        for port, proc in zip(ports, sidecars):
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"sidecar on {port} exited")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sidecar on {port} did not start")
                time.sleep(0.3)
        out["sidecars_start_s"] = time.monotonic() - t_start
        print(f"{args.pods} sidecars up in {out['sidecars_start_s']:.1f} s; uptime: {_uptime()}", flush=True)
        runs = [
            http.post(f"{API}/runs/create", json={"experiment_id": exp, "start_time": 1_700_000_000_000}).json()["run"][
                "info"
            ]["run_id"]
            for _ in ports
        ]
        latencies: list[float] = []
        bad: list[str] = []
        server_cpu0 = cpu_seconds([server.pid])
        sidecar_cpu0 = cpu_seconds([p.pid for p in sidecars])
        driver_cpu0 = time.process_time()
        t0 = time.monotonic()

        async def write() -> list[int]:
            until = time.monotonic() + args.seconds
            return await asyncio.gather(
                *(
                    pod(f"http://127.0.0.1:{port}", run, args.metrics_per_call, until, args.max_calls, latencies, bad)
                    for port, run in zip(ports, runs)
                )
            )

        calls = asyncio.run(write())
        t_written = time.monotonic()
        driver_cpu = time.process_time() - driver_cpu0
        # drained: every sidecar has forwarded its whole log
        deadline = time.monotonic() + args.drain_timeout
        reports: list[dict[str, Any]] = []
        while True:
            reports = [httpx.get(f"http://127.0.0.1:{p}/modelship/sidecar/status", timeout=30).json() for p in ports]
            if all(r["pending"] == 0 for r in reports) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        t_drained = time.monotonic()
        server_cpu = cpu_seconds([server.pid]) - server_cpu0
        sidecar_cpu = cpu_seconds([p.pid for p in sidecars]) - sidecar_cpu0
        acked = sum(calls) * args.metrics_per_call
        counts = {run: count_on_server(http, run) for run in runs}
        on_server = sum(counts.values())
        expected = {run: c * args.metrics_per_call for run, c in zip(runs, calls)}
        missing = {run: expected[run] - counts[run] for run in runs if expected[run] != counts[run]}
        out.update(
            {
                "write_seconds": t_written - t0,
                "drain_seconds_after_writes": t_drained - t_written,
                "calls": sum(calls),
                "metrics_acknowledged": acked,
                "metrics_on_server": on_server,
                "runs_with_a_wrong_count": missing,
                "metrics_per_s_absorbed": acked / (t_drained - t0),
                "metrics_per_s_acknowledged": acked / (t_written - t0),
                "server_cpu_s": server_cpu,
                "server_cpu_ms_per_1000_metrics": 1000 * server_cpu / (acked / 1000) if acked else None,
                "sidecars_cpu_ms_per_1000_metrics": 1000 * sidecar_cpu / (acked / 1000) if acked else None,
                "driver_cpu_s": driver_cpu,
                "ack_p50_ms": 1000 * percentile(latencies, 0.50),
                "ack_p99_ms": 1000 * percentile(latencies, 0.99),
                "ack_max_ms": 1000 * max(latencies, default=float("nan")),
                "not_200": bad[:20],
                "not_200_count": len(bad),
                "pending_after_drain": sum(r["pending"] for r in reports),
                "rejected": sum(r["rejected"] for r in reports),
                "server_rss_mb": rss_mb(server.pid),
                "sidecar_rss_mb_each": sum(rss_mb(p.pid) for p in sidecars) / len(sidecars),
            }
        )
    finally:
        for p in procs:
            stop(p)
    out["load_end"] = os.getloadavg()
    out["uptime_end"] = _uptime()
    for k, v in out.items():
        print(f"  {k:<34} {v:.1f}" if isinstance(v, float) else f"  {k:<34} {v}")
    ok = (
        out["metrics_on_server"] == out["metrics_acknowledged"]
        and not out["runs_with_a_wrong_count"]
        and not out["not_200_count"]
        and not out["pending_after_drain"]
        and not out["rejected"]
    )
    print("every acknowledged metric is on the server" if ok else "LOST OR REFUSED WRITES: see above")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


def _uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
