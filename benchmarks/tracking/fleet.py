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
            body = json.dumps(batch(run_id, done + 1, per_call)).encode()  # call 0 was the warm-up
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


async def _warm(ports: list[int], runs: list[str], per_call: int, bad: list[str]) -> list[int]:
    """Call 0 of every pod, all at once; returns 1 per pod whose write was acknowledged."""

    async def one(port: int, run: str) -> int:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
            resp = await http.post(f"{API}/runs/log-batch", json=batch(run, 0, per_call))
            if resp.status_code != 200:
                bad.append(f"{run} warm-up: {resp.status_code} {resp.text[:200]}")
                return 0
            return 1

    return list(await asyncio.gather(*(one(p, r) for p, r in zip(ports, runs))))


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
    ap.add_argument("--no-save", action="store_true", help="leave the README's results block alone")
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
        # Warm-up: one write per pod, all at once, untimed (a fresh process's first request
        # pays its lazy imports, ~1 s of CPU each here, which 50 pods would otherwise put
        # inside the timed window); its metrics are counted on the server like the rest.
        t_warm = time.monotonic()
        warm_bad: list[str] = []

        warm = asyncio.run(_warm(ports, runs, args.metrics_per_call, warm_bad))
        out["warm_up_s"] = time.monotonic() - t_warm
        latencies: list[float] = []
        bad: list[str] = list(warm_bad)
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
        # (polled once a second, and only the sidecars still pending: the polls cost the sidecars CPU too)
        deadline = time.monotonic() + args.drain_timeout
        reports: dict[int, dict[str, Any]] = {}
        waiting = list(ports)
        while waiting:
            for p in waiting:
                reports[p] = httpx.get(f"http://127.0.0.1:{p}/modelship/sidecar/status", timeout=30).json()
            waiting = [p for p in waiting if reports[p]["pending"]]
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        t_drained = time.monotonic()
        server_cpu = cpu_seconds([server.pid]) - server_cpu0
        sidecar_cpu = cpu_seconds([p.pid for p in sidecars]) - sidecar_cpu0
        acked = sum(calls) * args.metrics_per_call
        counts = {run: count_on_server(http, run) for run in runs}
        on_server = sum(counts.values())
        expected = {run: (c + w) * args.metrics_per_call for run, c, w in zip(runs, calls, warm)}
        missing = {run: expected[run] - counts[run] for run in runs if expected[run] != counts[run]}
        out.update(
            {
                "write_seconds": t_written - t0,
                "drain_seconds_after_writes": t_drained - t_written,
                "calls": sum(calls),
                "metrics_acknowledged": acked,
                "metrics_on_server": on_server,
                "metrics_expected_with_warm_up": sum(expected.values()),
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
                "pending_after_drain": sum(r["pending"] for r in reports.values()),
                "rejected": sum(r["rejected"] for r in reports.values()),
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
        out["metrics_on_server"] == out["metrics_expected_with_warm_up"]
        and not out["runs_with_a_wrong_count"]
        and not out["not_200_count"]
        and not out["pending_after_drain"]
        and not out["rejected"]
    )
    print("every acknowledged metric is on the server" if ok else "LOST OR REFUSED WRITES: see above")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    if not args.no_save:
        write_readme(args, out, ok)
    return 0 if ok else 1


def write_readme(args: argparse.Namespace, out: dict[str, Any], ok: bool) -> None:
    readme = Path(__file__).resolve().parent / "README.md"
    text = readme.read_text()
    begin, end = "<!-- fleet.py results: begin -->", "<!-- fleet.py results: end -->"
    la, lb = out["load_start"], out["load_end"]
    block = "\n".join(
        [
            begin,
            (
                f"{time.strftime('%d %b %Y %H:%M', time.gmtime())} UTC, `fleet.py --pods {args.pods} --seconds "
                f"{args.seconds:g} --metrics-per-call {args.metrics_per_call}`, {os.cpu_count()} cores, load average "
                f"(1/5/15 min) {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} at the start, {lb[0]:.2f} / {lb[1]:.2f} / "
                f"{lb[2]:.2f} at the end; {out['pods']} sidecars up in {out['sidecars_start_s']:.0f} s, warm-up "
                f"{out['warm_up_s']:.0f} s."
            ),
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| metrics/s absorbed by the server (first write to last forward) | {out['metrics_per_s_absorbed']:,.0f} |",
            f"| metrics/s acknowledged by the sidecars | {out['metrics_per_s_acknowledged']:,.0f} |",
            f"| server CPU per 1,000 metrics | {out['server_cpu_ms_per_1000_metrics']:.1f} ms |",
            f"| sidecars' CPU per 1,000 metrics (all together) | {out['sidecars_cpu_ms_per_1000_metrics']:.1f} ms |",
            (
                f"| acknowledged write p50 / p99 / max | {out['ack_p50_ms']:.0f} / {out['ack_p99_ms']:.0f} / "
                f"{out['ack_max_ms']:.0f} ms |"
            ),
            f"| log-batch calls / metrics acknowledged (timed) | {out['calls']:,} / {out['metrics_acknowledged']:,} |",
            (
                f"| metrics on the server / expected (with the warm-up) | {out['metrics_on_server']:,} / "
                f"{out['metrics_expected_with_warm_up']:,} |"
            ),
            (
                f"| non-200 writes, pending after the drain, rejected | {out['not_200_count']}, "
                f"{out['pending_after_drain']}, {out['rejected']} |"
            ),
            (
                f"| resident memory: server, each sidecar | {out['server_rss_mb']:.0f} MiB, "
                f"{out['sidecar_rss_mb_each']:.0f} MiB |"
            ),
            "",
            "Nothing lost." if ok else "WRITES LOST OR REFUSED (see the run's output).",
            end,
        ]
    )
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def _uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
