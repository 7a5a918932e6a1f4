"""Modelship's tracking server against ``mlflow server``: same machine, same run, both on
SQLite with one worker, driven by the same mlflow client code (driver.py).

    .venv/bin/python benchmarks/tracking/bench.py [--batches 20] [--singles 500]

Measures metrics/s through ``log_batch`` (1000 metrics per call) and ``log_metric``
calls/s (Modelship's through the sidecar, as a training pod would call it). Each
measurement is repeated ``--repeat`` times, interleaved, and the best is kept for each.
Prints the ratios and the servers' resident memory. Not a test: no thresholds.

It also drives a null server (null_server.py) that stores nothing: the rate the mlflow
client reaches against it is the client's own ceiling, which bounds every ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], port: int, log: Path, health: str = "/health") -> subprocess.Popen[bytes]:
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    with open(log, "ab") as f:
        proc = subprocess.Popen(args, stdout=f, stderr=f, start_new_session=True, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args[:3]} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{args[:3]} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    pids = [pid]
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                         check=False)
    pids += [int(p) for p in out.stdout.split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def drive(uri: str, mode: str, n: int) -> dict[str, float]:
    # Telemetry off: no network here, and its thread races os.environ in mlflow 3.17.
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true")
    out = subprocess.run([PY, str(HERE / "driver.py"), mode, str(n)], env=env,
                         capture_output=True, text=True, timeout=1800, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def history_len(base: str, run_id: str, key: str) -> int:
    r = httpx.get(f"{base}/api/2.0/mlflow/metrics/get-history",
                  params={"run_id": run_id, "metric_key": key}, timeout=120)
    return len(r.json().get("metrics", []))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--singles", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelship-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        mp = free_port()
        mlflow_server = start(
            [PY, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mp),
             "--workers", "1", "--backend-store-uri", f"sqlite:///{work}/mlflow.db",
             "--artifacts-destination", str(work / "mlflow-art")], mp, work / "mlflow.log")
        procs.append(mlflow_server)
        sp = free_port()
        ours = start([PY, "-m", "modelship", "tracking-server", "--port", str(sp),
                      "--backend-store-uri", f"sqlite:///{work}/modelship.db",
                      "--artifacts-destination", str(work / "ms-art")], sp, work / "ms.log")
        procs.append(ours)
        cp = free_port()
        sidecar = start([PY, "-m", "modelship", "tracking-sidecar", "--port", str(cp),
                         "--server", f"http://127.0.0.1:{sp}", "--buffer-dir",
                         str(work / "buffer")], cp, work / "sidecar.log")
        procs.append(sidecar)
        np_ = free_port()
        procs.append(start([PY, str(HERE / "null_server.py"), str(np_)], np_, work / "null.log"))
        m_uri, s_uri, c_uri = (f"http://127.0.0.1:{p}" for p in (mp, sp, cp))
        n_uri = f"http://127.0.0.1:{np_}"

        plan = {
            "mlflow_batch": (m_uri, "batch", a.batches),
            "modelship_batch": (s_uri, "batch", a.batches),
            "client_floor_batch": (n_uri, "batch", a.batches),
            "mlflow_single": (m_uri, "single", a.singles),
            "modelship_single_sidecar": (c_uri, "single", a.singles),
            "modelship_single_direct": (s_uri, "single", a.singles),
            "client_floor_single": (n_uri, "single", a.singles),
        }
        # Rounds interleave the targets, so a machine whose load drifts (shared CI) hits
        # all of them alike; the best round of each is kept.
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in plan}
        for _ in range(a.repeat):
            for key, (uri, mode, n) in plan.items():
                runs[key].append(drive(uri, mode, n))
        r = {k: max(v, key=lambda x: x["per_second"]) for k, v in runs.items()}
        # Everything the sidecar acknowledged reached the server (read through the sidecar
        # waits for its log to drain), and the batches are all there.
        sc = r["modelship_single_sidecar"]
        t0 = time.perf_counter()
        landed = history_len(c_uri, str(sc["run_id"]), "loss")
        drain_s = time.perf_counter() - t0
        assert landed == a.singles, (landed, a.singles)
        for key, uri in (("modelship_batch", s_uri), ("mlflow_batch", m_uri)):
            n = sum(history_len(uri, str(r[key]["run_id"]), f"m{k}") for k in range(10))
            assert n == a.batches * 1000, (key, n)

        rows = [(k, v["count"], v["seconds"], v["per_second"]) for k, v in r.items()]
        print(f"{'measurement':28} {'count':>7} {'seconds':>8} {'per second':>11}")
        for k, c, s, ps in rows:
            print(f"{k:28} {c:7d} {s:8.2f} {ps:11.0f}")
        batch_ratio = r["modelship_batch"]["per_second"] / r["mlflow_batch"]["per_second"]
        single_ratio = r["modelship_single_sidecar"]["per_second"] / r["mlflow_single"]["per_second"]
        direct_ratio = r["modelship_single_direct"]["per_second"] / r["mlflow_single"]["per_second"]
        print(f"\nbatched metrics/s ratio (modelship / mlflow):        {batch_ratio:6.1f}x  (goal >= 10x)")
        print(f"single log_metric calls/s ratio, via the sidecar:   {single_ratio:6.1f}x  (goal >= 5x)")
        print(f"single log_metric calls/s ratio, server direct:     {direct_ratio:6.1f}x")
        ceil_b = r["client_floor_batch"]["per_second"] / r["mlflow_batch"]["per_second"]
        ceil_s = r["client_floor_single"]["per_second"] / r["mlflow_single"]["per_second"]
        print(f"ceiling set by the mlflow client itself (a server that does nothing): "
              f"{ceil_b:.1f}x batched, {ceil_s:.1f}x single")
        print(f"sidecar backlog after the single-call run drained in {drain_s:.2f}s")
        print(f"RSS: modelship server {rss_mb(ours.pid):.0f} MiB, sidecar {rss_mb(sidecar.pid):.0f} MiB, "
              f"mlflow server {rss_mb(mlflow_server.pid):.0f} MiB (with its workers)")
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
