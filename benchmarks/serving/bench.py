"""Modelship's model server against ``mlflow models serve`` and MLServer, in one run.

One model (a 13-feature scikit-learn pipeline on the wine data, saved by MLflow), one
worker per server, one server running at a time on this machine, one load generator for
all (wrk with ``post.lua``): 1-row and 100-row requests over 16 connections, on
``/invocations`` against MLflow and on the Open Inference Protocol against MLServer.

    python benchmarks/serving/bench.py [--duration 5] [--rounds 3] [--connections 16]

Needs: ``wrk`` (Debian: ``apt-get install -y wrk``), the ``mlflow`` package in this
environment, and MLServer in a venv of its own (created on first use):
``~/.cache/modelship/bench/mlserver-venv`` with mlserver and mlserver-sklearn 1.7.1.
Prints a table, the ratios and each server's resident memory; writes results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "modelship" / "bench"
MLSERVER_VENV = CACHE / "mlserver-venv"
MLSERVER_PKGS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_mlserver() -> Path:
    exe = MLSERVER_VENV / "bin" / "mlserver"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        subprocess.run([str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", *MLSERVER_PKGS], check=True)
    return exe


MAKE_MODEL = """
import json, sys, joblib, mlflow, mlflow.sklearn
from pathlib import Path
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
out = Path(sys.argv[1])
X, y = load_wine(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
mlflow.sklearn.save_model(model, out / "mlflow-model", input_example=X.head(3),
                          signature=mlflow.models.infer_signature(X, model.predict(X)))
(out / "mlserver" / "wine").mkdir(parents=True)
joblib.dump(model, out / "mlserver" / "wine" / "model.joblib")
rows = X.sample(n=200, replace=True, random_state=0)
for n in (1, 100):
    r = rows.head(n)
    (out / f"split{n}.json").write_text(json.dumps({"dataframe_split": {"columns": list(X.columns), "data": r.values.tolist()}}))
    (out / f"v2_{n}.json").write_text(json.dumps({"inputs": [{"name": "input-0", "shape": [n, 13], "datatype": "FP64", "data": r.values.ravel().tolist()}]}))
"""


def prepare(work: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    subprocess.run([sys.executable, "-c", MAKE_MODEL, str(work)], check=True)
    (work / "mlserver" / "wine" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "wine",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
        )
    )


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (kB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (FileNotFoundError, AttributeError, ProcessLookupError):
            continue
    return total


def wrk(url: str, body: Path, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(HERE / "post.lua"),
            url,
            "--",
            str(body),
            "application/json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    vals = dict(re.findall(r"BENCH (\w+)=(\d+)", out))
    vals.update(re.findall(r"BENCH requests=\d+ (duration_us)=(\d+)", out))
    req = int(re.search(r"BENCH requests=(\d+)", out).group(1))  # type: ignore[union-attr]
    dur = int(re.search(r"duration_us=(\d+)", out).group(1)) / 1e6  # type: ignore[union-attr]
    return {
        "rps": req / dur,
        "p50_ms": int(vals["p50_us"]) / 1000,
        "p99_ms": int(vals["p99_us"]) / 1000,
        "non2xx": int(vals["non2xx"]),
        "requests": req,
    }


class Running:
    def __init__(
        self,
        name: str,
        cmd: list[str],
        ready: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = open(CACHE / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.log.name}")
            try:
                if httpx.get(ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{name} not ready")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def measure(plan: list[tuple[str, str, str, Path]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Interleave: every round measures every (server, scenario) once, so a change in the
    machine's load hits all servers alike; the result is the median over rounds."""
    raw: dict[tuple[str, str], list[dict[str, float]]] = {}
    for server, label, url, body in plan:  # warm-up
        wrk(url, body, 2, args.connections)
    for r in range(args.rounds):
        for server, label, url, body in plan:
            res = wrk(url, body, args.duration, args.connections)
            raw.setdefault((server, label), []).append(res)
            print(
                f"  round {r + 1}  {server:<10} {label:<16} {res['rps']:>8.0f} req/s  "
                f"p50 {res['p50_ms']:>7.1f} ms  p99 {res['p99_ms']:>7.1f} ms  non-2xx {res['non2xx']:.0f}",
                flush=True,
            )
    out: dict[str, dict[str, Any]] = {}
    for (server, label), runs in raw.items():
        out.setdefault(server, {})[label] = {
            "rps": median([x["rps"] for x in runs]),
            "p50_ms": median([x["p50_ms"] for x in runs]),
            "p99_ms": median([x["p99_ms"] for x in runs]),
            "non2xx": sum(x["non2xx"] for x in runs),
            "rounds": runs,
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--work", type=Path, default=CACHE / "run")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    mlserver = ensure_mlserver()
    prepare(args.work)
    model_dir = args.work / "mlflow-model"
    w = args.work
    out: dict[str, Any] = {"load": os.getloadavg(), "cpus": os.cpu_count()}

    # All three run side by side (idle when not measured); measurements take turns.
    servers: list[Running] = []
    try:
        p1 = free_port()
        b1 = f"http://127.0.0.1:{p1}"
        servers.append(
            Running(
                "modelship",
                [
                    sys.executable,
                    "-m",
                    "modelship",
                    "serve",
                    "-m",
                    str(model_dir),
                    "--port",
                    str(p1),
                    "--model-name",
                    "wine",
                ],
                f"{b1}/v2/health/ready",
            )
        )
        p2 = free_port()
        b2 = f"http://127.0.0.1:{p2}"
        mlflow_bin = str(Path(sys.executable).parent / "mlflow")
        servers.append(
            Running(
                "mlflow",
                [
                    mlflow_bin,
                    "models",
                    "serve",
                    "-m",
                    str(model_dir),
                    "-p",
                    str(p2),
                    "-h",
                    "127.0.0.1",
                    "-w",
                    "1",
                    "--env-manager",
                    "local",
                ],
                f"{b2}/ping",
                env={"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
            )
        )
        p3 = free_port()
        b3 = f"http://127.0.0.1:{p3}"
        env = {
            "MLSERVER_HTTP_PORT": str(p3),
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_PARALLEL_WORKERS": "0",
            "MLSERVER_DEBUG": "false",
        }
        servers.append(
            Running(
                "mlserver",
                [str(mlserver), "start", str(w / "mlserver")],
                f"{b3}/v2/models/wine/ready",
                env=env,
            )
        )
        plan = [
            ("modelship", "invocations-1", f"{b1}/invocations", w / "split1.json"),
            ("mlflow", "invocations-1", f"{b2}/invocations", w / "split1.json"),
            ("modelship", "invocations-100", f"{b1}/invocations", w / "split100.json"),
            ("mlflow", "invocations-100", f"{b2}/invocations", w / "split100.json"),
            ("modelship", "v2-1", f"{b1}/v2/models/wine/infer", w / "v2_1.json"),
            ("mlserver", "v2-1", f"{b3}/v2/models/wine/infer", w / "v2_1.json"),
            ("modelship", "v2-100", f"{b1}/v2/models/wine/infer", w / "v2_100.json"),
            ("mlserver", "v2-100", f"{b3}/v2/models/wine/infer", w / "v2_100.json"),
        ]
        out.update(measure(plan, args))
        for s in servers:
            out[s.name]["rss_mb"] = tree_rss_kb(s.proc.pid) / 1024
    finally:
        for s in servers:
            s.stop()

    print("\nmedians")
    for name in ("modelship", "mlflow", "mlserver"):
        for label, r in out[name].items():
            if isinstance(r, dict):
                print(
                    f"  {name:<10} {label:<16} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:>7.1f} ms  p99 {r['p99_ms']:>7.1f} ms"
                )
    ms, mf, mv = out["modelship"], out["mlflow"], out["mlserver"]
    ratios = {
        "vs_mlflow_1row_throughput": ms["invocations-1"]["rps"] / mf["invocations-1"]["rps"],
        "vs_mlflow_100row_throughput": ms["invocations-100"]["rps"] / mf["invocations-100"]["rps"],
        "vs_mlserver_1row_throughput": ms["v2-1"]["rps"] / mv["v2-1"]["rps"],
        "vs_mlserver_100row_throughput": ms["v2-100"]["rps"] / mv["v2-100"]["rps"],
        "vs_mlflow_1row_p99": mf["invocations-1"]["p99_ms"] / ms["invocations-1"]["p99_ms"],
        "vs_mlflow_100row_p99": mf["invocations-100"]["p99_ms"] / ms["invocations-100"]["p99_ms"],
        "vs_mlserver_1row_p99": mv["v2-1"]["p99_ms"] / ms["v2-1"]["p99_ms"],
        "vs_mlserver_100row_p99": mv["v2-100"]["p99_ms"] / ms["v2-100"]["p99_ms"],
    }
    out["ratios"] = ratios
    print("\nratios (Modelship / other for throughput, other / Modelship for p99: > 1 means Modelship is better)")
    for k, v in ratios.items():
        print(f"  {k:<32} {v:6.2f}x")
    print("\nresident memory after the run")
    for name in ("modelship", "mlflow", "mlserver"):
        print(f"  {name:<10} {out[name]['rss_mb']:7.1f} MiB")
    goal = (
        ratios["vs_mlflow_1row_throughput"] >= 10
        and ratios["vs_mlflow_100row_throughput"] >= 10
        and ratios["vs_mlserver_1row_throughput"] > 1
        and ratios["vs_mlserver_100row_throughput"] > 1
        and all(v > 1 for k, v in ratios.items() if k.endswith("p99"))
    )
    out["goal_met"] = goal
    print(f"\ngoal (>=10x MLflow, ahead of MLServer with lower p99 on every row): {'MET' if goal else 'NOT MET'}")
    print(f"load average during the run: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    (HERE / "results.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
