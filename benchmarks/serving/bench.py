"""Modelship's model server against its physical floor and three peers, in one run.

One model (a 13-feature scikit-learn pipeline on the wine data, saved by MLflow), one load
generator for all (wrk, one thread, ``post.lua``), 1-row and 100-row requests over 16
connections, in three forms: ``/invocations`` (``dataframe_split``), the Open Inference
Protocol with one ``[N, 13]`` FP64 tensor, and with one ``[N, 1]`` input per column (the
body MLServer's ``PandasCodec`` and KServe's pandas clients send). In the same run:

* the floor: (a) the HTTP floor, ``floor.py`` — the same server stack (uvicorn, httptools,
  uvloop, a raw ASGI app) answering a constant after reading the same body, (b) the
  model's own ``predict`` on the same rows, in process; floor = 1 / (http + predict);
* Modelship with 1 and with 2 workers (``--workers 2``);
* peers: ``mlflow models serve`` (``/invocations``), MLServer 1.7.1 (both v2 forms) and
  BentoML (a service around the same pipeline, ``bento_service.py``, every form) — each
  peer gets exactly the bodies Modelship gets.

    python benchmarks/serving/bench.py [--duration 4] [--rounds 3] [--connections 16]

Needs ``wrk`` (installed with apt-get when missing and run as root), ``mlflow`` in this
environment, and venvs of their own for MLServer and BentoML (created on first use under
``~/.cache/modelship/bench``). Prints every measurement, medians, each figure as a
percentage of the floor, the ratios to every peer (throughput and p99), the load average;
checks that every request was answered 2xx with the right predictions and that the floor
server and Modelship (1 worker) counted every request wrk got a reply to; writes
results.json and the README's results block.
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
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks.cache import CACHE, hold

MLSERVER_VENV = CACHE / "mlserver-venv"
MLSERVER_PKGS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"]
BENTOML_VENV = CACHE / "bentoml-venv"
# the peer's own venv: BentoML pins versions of starlette, uvicorn and others that ours does not
BENTOML_PKGS = ["bentoml==1.4.40", "scikit-learn==1.9.1", "pandas", "joblib"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_venv(venv: Path, exe: str, packages: list[str]) -> Path:
    path = venv / "bin" / exe
    if not path.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True)
    return path


def ensure_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    if os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return shutil.which("wrk") is not None


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
    # what MLServer's PandasCodec.encode_request makes of the DataFrame: one [N, 1] input per column
    (out / f"v2col_{n}.json").write_text(json.dumps({"parameters": {"content_type": "pd"}, "inputs": [{"name": c, "shape": [n, 1], "datatype": "FP64", "data": r[c].tolist()} for c in X.columns]}))
    (out / f"expected{n}.json").write_text(json.dumps(model.predict(r).tolist()))
# the training profile Modelship's save_model writes (MLflow's does not): the baseline of drift detection
from modelship.models.profile import PROFILE_FILE, compute_profile, profile_predictions
profile = compute_profile(X)
profile["prediction"] = profile_predictions(model.predict(X))
(out / "mlflow-model" / PROFILE_FILE).write_text(json.dumps(profile))
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


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(k) for k in (t / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process and its descendants have used."""
    ticks = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (kB)."""
    total = 0
    for p in tree_pids(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
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
            "--timeout",
            "10s",
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
    req = int(re.search(r"BENCH requests=(\d+)", out).group(1))  # type: ignore[union-attr]
    dur = int(re.search(r"duration_us=(\d+)", out).group(1)) / 1e6  # type: ignore[union-attr]
    return {
        "rps": req / dur,
        "p50_ms": int(vals["p50_us"]) / 1000,
        "p99_ms": int(vals["p99_us"]) / 1000,
        "non2xx": int(vals["non2xx"]),
        "socket_errors": int(vals["socket_errors"]),
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


# -- scenarios --------------------------------------------------------------------------
FORMS = {
    "invocations": ("/invocations", "split"),
    "v2-tensor": ("/v2/models/wine/infer", "v2_"),
    "v2-columns": ("/v2/models/wine/infer", "v2col_"),
}
ROWS = (1, 100)


def scenarios() -> list[tuple[str, str, str, int]]:
    """(label, path, body file stem, rows) for every form and row count."""
    return [(f"{form}-{n}", path, f"{stem}{n}", n) for form, (path, stem) in FORMS.items() for n in ROWS]


def predictions_of(server: str, form: str, reply: Any) -> list[Any]:
    if form == "invocations":
        return list(reply["predictions"])
    return list(reply["outputs"][0]["data"])


PREDICT_COST = """
import json, sys, time
from pathlib import Path
from modelship.models.load import load_model
from modelship.serving import codecs, v2
model_dir, seconds = sys.argv[1], float(sys.argv[2])
model = load_model(model_dir)
out = {}
for label, stem in json.loads(sys.argv[3]).items():
    body = Path(stem).read_bytes()
    if label.startswith("invocations"):
        data = codecs.parse_invocations(model, body, "application/json").data
    else:
        data = v2.parse_infer(model, body)[0].data
    for _ in range(20):
        model.runtime.predict(data)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.runtime.predict(data)
        calls += 1
    out[label] = (time.perf_counter() - t0) / calls
print(json.dumps(out))
"""


DRIFT_COST = """
import json, sys, time
from pathlib import Path
from modelship.models.load import load_model
from modelship.serving import codecs, v2
from modelship.serving.drift import DriftConfig, DriftMonitor
model_dir, seconds = sys.argv[1], float(sys.argv[2])
model = load_model(model_dir)
profile = json.loads((Path(model_dir) / "training_profile.json").read_text())
monitor = DriftMonitor(profile, DriftConfig(), model.input_schema.names())
out = {}
for label, stem in json.loads(sys.argv[3]).items():
    body = Path(stem).read_bytes()
    if label.startswith("invocations"):
        data = codecs.parse_invocations(model, body, "application/json").data
    else:
        data = v2.parse_infer(model, body)[0].data
    pred = model.runtime.predict(data)
    for _ in range(20):
        monitor.observe(data, pred)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        monitor.observe(data, pred)
        calls += 1
    out[label] = (time.perf_counter() - t0) / calls
t0 = time.perf_counter()
monitor.rows += 1  # a fresh report, not the cached one
monitor.report()
out["report"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def predict_cost(model_dir: Path, work: Path, seconds: float = 0.6, script: str = PREDICT_COST) -> dict[str, float]:
    """Seconds per ``predict`` call of the model on each scenario's rows, on the input
    exactly as the server decodes it (the signature-ordered array), timed by the wall clock
    in a process of its own session, as every server runs: the scheduler then gives it the
    share of the cores it gives a server (timed from a process that shares its session
    with others, a loaded machine made predict look slower than a whole request)."""
    stems = {label: str(work / f"{stem}.json") for label, _path, stem, _n in scenarios()}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(model_dir), str(seconds), json.dumps(stems)],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        timeout=600,
    )
    return {k: float(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def counted(base: str, kind: str) -> int | None:
    """Requests the server says it answered: the floor's /count, Modelship's metrics."""
    try:
        if kind == "floor":
            return int(httpx.get(f"{base}/count", timeout=10).text)
        if kind == "modelship":
            text = httpx.get(f"{base}/metrics", timeout=10).text
            return int(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("modelship_requests_total{") and 'status="200"' in line
                )
            )
    except (httpx.HTTPError, ValueError):
        return None
    return None


Plan = list[tuple[str, str, str, Path, str]]  # server, scenario label, url, body, kind (for counting)


def measure(
    plan: Plan, args: argparse.Namespace, model_dir: Path, pids: dict[str, int]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Interleave: every round measures every (server, scenario) once, and the model's
    in-process predict cost, so a change in the machine's load hits all alike; the result
    is the median over rounds. Each run also takes the server's CPU time per reply (its
    process tree's, from /proc): the cost of a request, less swayed than the throughput by
    what else the machine runs."""
    raw: dict[tuple[str, str], list[dict[str, float]]] = {}
    costs: list[dict[str, float]] = []
    loads: list[tuple[float, float, float]] = [os.getloadavg()]
    for server, label, url, body, _kind in plan:  # warm-up
        wrk(url, body, 2, args.connections)
    drift_costs: list[dict[str, float]] = []
    for r in range(args.rounds):
        costs.append(predict_cost(model_dir, args.work))
        if args.drift:
            drift_costs.append(predict_cost(model_dir, args.work, script=DRIFT_COST))
        for server, label, url, body, kind in round_plan(plan, r) if args.drift else plan:
            base = url.split("/", 3)
            base_url = "/".join(base[:3])
            before = counted(base_url, kind)
            cpu = tree_cpu_s(pids[server])
            res = wrk(url, body, args.duration, args.connections)
            cpu = tree_cpu_s(pids[server]) - cpu
            after = counted(base_url, kind)
            if res["requests"]:
                res["cpu_us"] = cpu / res["requests"] * 1e6
            if before is not None and after is not None:
                # the server counted at least every reply wrk got (a few more are in flight at the end)
                res["counted"] = after - before
            raw.setdefault((server, label), []).append(res)
            print(
                f"  round {r + 1}  {server:<12} {label:<16} {res['rps']:>8.0f} req/s  "
                f"p50 {res['p50_ms']:>7.1f} ms  p99 {res['p99_ms']:>7.1f} ms  non-2xx {res['non2xx']:.0f}  "
                f"socket errors {res['socket_errors']:.0f}"
                + (f"  counted {res['counted']:.0f}/{res['requests']:.0f}" if "counted" in res else ""),
                flush=True,
            )
        loads.append(os.getloadavg())
    out: dict[str, dict[str, Any]] = {}
    for (server, label), runs in raw.items():
        out.setdefault(server, {})[label] = {
            "rps": median([x["rps"] for x in runs]),
            "p50_ms": median([x["p50_ms"] for x in runs]),
            "p99_ms": median([x["p99_ms"] for x in runs]),
            "cpu_us": median([x.get("cpu_us", 0.0) for x in runs]),
            "non2xx": sum(x["non2xx"] for x in runs),
            "socket_errors": sum(x["socket_errors"] for x in runs),
            "uncounted": sum(max(0, x["requests"] - x.get("counted", x["requests"])) for x in runs),
            "rounds": runs,
        }
    cost = {label: median([c[label] for c in costs]) for label in costs[0]}
    extra: dict[str, Any] = {}
    if drift_costs:
        extra["drift_s"] = {label: median([c[label] for c in drift_costs]) for label in drift_costs[0]}
    return out, {"predict_s": cost, "predict_rounds": costs, "load": loads, **extra}


def round_plan(plan: Plan, r: int) -> Plan:
    """Round ``r``'s order: the plan's, with each scenario's servers reversed on odd rounds
    (with drift on always measured first, a fixed order favoured one side)."""
    if r % 2 == 0:
        return plan
    out: Plan = []
    i = 0
    while i < len(plan):
        j = i
        while j < len(plan) and plan[j][1] == plan[i][1]:
            j += 1
        out.extend(reversed(plan[i:j]))
        i = j
    return out


PEER_FORMS = {
    "mlflow": ("invocations",),
    "mlserver": ("v2-tensor", "v2-columns"),
    "bentoml": ("invocations", "v2-tensor", "v2-columns"),
}
SERVERS = (
    "floor",
    "modelship",
    "modelship-2w",
    "modelship-nodrift",
    "modelship-nodrift-again",
    "mlflow",
    "mlserver",
    "bentoml",
)
DRIFT_SERVERS = "modelship,modelship-nodrift,modelship-nodrift-again"
"""--drift: drift on, drift off, and drift off again (the A/A control: two identical servers
measured the same way show how far apart the method puts equal costs)."""


def start_servers(names: list[str], w: Path, model_dir: Path) -> dict[str, tuple[Running, str]]:
    bin_dir = Path(sys.executable).parent
    started: dict[str, tuple[Running, str]] = {}
    try:
        for name in names:
            started[name] = start_server(name, w, model_dir, bin_dir)
    except BaseException:
        for run, _base in started.values():
            run.stop()
        raise
    return started


def start_server(name: str, w: Path, model_dir: Path, bin_dir: Path) -> tuple[Running, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if name == "floor":
        return Running(name, [sys.executable, str(HERE / "floor.py"), "--port", str(port)], f"{base}/count"), base
    if name.startswith("modelship"):
        workers = "2" if name.endswith("2w") else "1"
        cmd = [sys.executable, "-m", "modelship", "serve", "-m", str(model_dir), "--port", str(port)]
        if "nodrift" in name:
            cmd.append("--no-drift")  # the others watch drift (the default: the model has a profile)
        run = Running(name, [*cmd, "--model-name", "wine", "--workers", workers], f"{base}/v2/health/ready")
        deadline = time.monotonic() + 300
        # readiness answers from either worker: wait until every worker has loaded the model
        while (CACHE / f"{name}.log").read_text(errors="replace").count('"model loaded"') < int(workers):
            if time.monotonic() > deadline:
                run.stop()
                raise TimeoutError(f"{name}: not every worker loaded the model")
            time.sleep(0.5)
        return run, base
    if name == "mlflow":
        cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "-p", str(port)]
        env = {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        return Running(name, [*cmd, "-h", "127.0.0.1", "-w", "1", "--env-manager", "local"], f"{base}/ping", env), base
    if name == "mlserver":
        exe = ensure_venv(MLSERVER_VENV, "mlserver", MLSERVER_PKGS)
        env = {
            "MLSERVER_HTTP_PORT": str(port),
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_PARALLEL_WORKERS": "0",
            "MLSERVER_DEBUG": "false",
        }
        return Running(name, [str(exe), "start", str(w / "mlserver")], f"{base}/v2/models/wine/ready", env=env), base
    if name == "bentoml":
        exe = ensure_venv(BENTOML_VENV, "bentoml", BENTOML_PKGS)
        cmd = [str(exe), "serve", "bento_service:Wine", "--port", str(port), "--host", "127.0.0.1"]
        env = {"WINE_MODEL": str(w / "mlserver" / "wine" / "model.joblib"), "BENTOML_DO_NOT_TRACK": "True"}
        return Running(name, cmd, f"{base}/readyz", env=env, cwd=HERE), base
    raise ValueError(f"unknown server {name!r}; one of {SERVERS}")


def forms_of(server: str) -> tuple[str, ...]:
    return PEER_FORMS.get(server, tuple(FORMS))


def check_answers(started: dict[str, tuple[Running, str]], w: Path) -> None:
    """Every server answers every body it is measured with, with the right predictions."""
    for name, (_run, base) in started.items():
        if name == "floor":
            continue
        for label, path, stem, n in scenarios():
            form = label.rsplit("-", 1)[0]
            if form not in forms_of(name):
                continue
            body = (w / f"{stem}.json").read_bytes()
            resp = httpx.post(base + path, content=body, headers={"content-type": "application/json"}, timeout=60)
            want = json.loads((w / f"expected{n}.json").read_text())
            if resp.status_code != 200 or predictions_of(name, form, resp.json()) != want:
                raise SystemExit(f"{name} {label}: wrong answer {resp.status_code} {resp.text[:300]}")


def drift_rows(started: dict[str, tuple[Running, str]]) -> dict[str, int]:
    """Rows each Modelship server's drift window saw (0 with --no-drift): proof the mode measured what it says."""
    rows = {}
    for name, (_run, base) in started.items():
        if name.startswith("modelship"):
            r = httpx.get(base + "/drift", timeout=30).json()
            rows[name] = int(r.get("rows") or 0) if r.get("enabled") else 0
    return rows


def drift_lines(out: dict[str, Any], cost: dict[str, Any]) -> list[str]:
    """The drift on/off table: the same server (1 worker) watching drift, and not; and the
    accounting's own cost per predict call, timed in process like predict."""
    on, off = out.get("modelship", {}), out.get("modelship-nodrift", {})
    again = out.get("modelship-nodrift-again", {})
    drift_s = cost.get("drift_s") or {}
    lines = [
        (
            "| scenario | drift on (default) | drift off (`--no-drift`) | on / off | per round: median (range) "
            "| A/A: off / off again, per round | server CPU per reply, on / off / off again "
            "| accounting per call | predict |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def per_round(x: dict[str, Any] | None, y: dict[str, Any] | None) -> str:
        # the ratio of each round's pair (measured back to back), steadier than the ratio of medians
        if not x or not y:
            return ""
        ratios = [p["rps"] / q["rps"] for p, q in zip(x["rounds"], y["rounds"], strict=True) if q["rps"]]
        return f"{median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}x)" if ratios else ""

    for label, *_ in scenarios():
        a, b, c = on.get(label), off.get(label), again.get(label)
        if a and b:
            acc = f"{drift_s[label] * 1e6:.1f} µs" if label in drift_s else ""
            cpus = [r["cpu_us"] for r in (a, b, c) if r and r.get("cpu_us")]
            cpu = " / ".join(f"{x:.0f}" for x in cpus) + " µs" if cpus else ""
            lines.append(
                f"| {label} | {a['rps']:.0f} req/s, p99 {a['p99_ms']:.1f} ms | {b['rps']:.0f} req/s, "
                f"p99 {b['p99_ms']:.1f} ms | {a['rps'] / b['rps']:.2f}x | {per_round(a, b)} | {per_round(b, c)} "
                f"| {cpu} | {acc} | {cost['predict_s'][label] * 1e6:.0f} µs |"
            )
    if "report" in drift_s:
        full = drift_s["report"] * 1e3
        note = (
            f"One full report (13 features and the predictions over a full window of 10,000 rows): {full:.1f} ms, "
            "on a parse thread, when `/drift` or `/metrics` is read."
        )
        lines += ["", note]
    return lines


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def report(out: dict[str, Any], cost: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Markdown lines and the derived figures (floor, percentages, ratios)."""
    derived: dict[str, Any] = {}
    lines = [
        "| scenario | HTTP floor | predict | floor | Modelship, 1 worker | % of floor | 2 workers | 2w / 1w |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, *_ in scenarios():
        http = out.get("floor", {}).get(label)
        ms = out.get("modelship", {}).get(label)
        if not http or not ms:
            continue
        pred_s = cost["predict_s"][label]
        floor = 1 / (1 / http["rps"] + pred_s)
        two = out.get("modelship-2w", {}).get(label)
        d = derived.setdefault(label, {})
        d.update({"floor_rps": floor, "http_rps": http["rps"], "predict_ms": pred_s * 1000})
        d["of_floor"] = ms["rps"] / floor
        if two:
            d["two_workers_vs_one"] = two["rps"] / ms["rps"]
        cells = (
            f"{two['rps']:.0f} req/s, p99 {two['p99_ms']:.1f} ms | {two['rps'] / ms['rps']:.2f}x |" if two else " | |"
        )
        lines.append(
            f"| {label} | {http['rps']:.0f} req/s | {pred_s * 1e3:.2f} ms | {floor:.0f} req/s | "
            f"{ms['rps']:.0f} req/s, p99 {ms['p99_ms']:.1f} ms | {pct(ms['rps'] / floor)} | " + cells
        )
    peers = [p for p in PEER_FORMS if p in out]
    if peers:
        lines += [
            "",
            "| scenario | Modelship | " + " | ".join(peers) + " |",
            "| --- | --- | " + " | ".join("---" for _ in peers) + " |",
        ]
    for label, *_ in scenarios():
        ms = out.get("modelship", {}).get(label)
        if not ms or not peers:
            continue
        row = []
        for peer in peers:
            r = out[peer].get(label)
            if not r or not r["rps"] or not ms["p99_ms"]:
                row.append("")
                continue
            thr, p99 = ms["rps"] / r["rps"], r["p99_ms"] / ms["p99_ms"]
            derived.setdefault(label, {})[f"vs_{peer}"] = {"throughput": thr, "p99": p99}
            row.append(f"{r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms (ours {thr:.1f}x, p99 {p99:.1f}x lower)")
        lines.append(f"| {label} | {ms['rps']:.0f} req/s, p99 {ms['p99_ms']:.1f} ms | " + " | ".join(row) + " |")
    ms = out.get("modelship", {})
    lines.append("")
    for n in ROWS:
        inv = ms.get(f"invocations-{n}")
        for form in ("v2-tensor", "v2-columns"):
            v = ms.get(f"{form}-{n}")
            if inv and v:
                derived.setdefault(f"{form}-{n}", {})["vs_invocations"] = v["rps"] / inv["rps"]
                lines.append(f"- {form}, {n} row(s): {v['rps'] / inv['rps']:.2f}x the throughput of `/invocations`")
    return lines, derived


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated subset of {','.join(SERVERS)}")
    ap.add_argument("--work", type=Path, default=CACHE / "run")
    ap.add_argument("--no-save", action="store_true", help="write neither results.json nor the README block")
    ap.add_argument(
        "--drift",
        action="store_true",
        help=f"drift on vs off: only {DRIFT_SERVERS}; writes results-drift.json and the README's drift block",
    )
    args = ap.parse_args()
    if args.drift:
        args.servers = DRIFT_SERVERS
    if not ensure_wrk():
        print("wrk is missing: apt-get install -y wrk (as root)", file=sys.stderr)
        return 2
    hold(CACHE)  # the peers' venvs and the servers' logs are at its top
    names = [n for n in args.servers.split(",") if n]
    prepare(args.work)
    model_dir = args.work / "mlflow-model"
    w = args.work
    out: dict[str, Any] = {"load_start": os.getloadavg(), "cpus": os.cpu_count(), "uptime_start": _uptime()}
    started = start_servers(names, w, model_dir)
    try:
        check_answers(started, w)
        plan: Plan = []
        for label, path, stem, _n in scenarios():
            form = label.rsplit("-", 1)[0]
            for name in names:
                if form in forms_of(name):
                    kind = name if name in ("floor", "modelship") else ""
                    plan.append((name, label, started[name][1] + path, w / f"{stem}.json", kind))
        measured, cost = measure(plan, args, model_dir, {n: run.proc.pid for n, (run, _b) in started.items()})
        out.update(measured)
        out["cost"] = cost
        out["drift_rows"] = drift_rows(started)
        for name, (run, _base) in started.items():
            out[name]["rss_mb"] = tree_rss_kb(run.proc.pid) / 1024
    finally:
        for run, _base in started.values():
            run.stop()
    out["load_end"] = os.getloadavg()
    out["uptime_end"] = _uptime()
    lines, derived = report(out, cost)
    if args.drift:
        lines = drift_lines(out, cost)
        lines.append("")
        lines.append(
            "Rows the drift windows saw (a running total; each window keeps the last 10,000): "
            + ", ".join(f"{k} {v}" for k, v in out["drift_rows"].items())
        )
    out["derived"] = derived
    print("\n" + "\n".join(lines))
    print("\nresident memory after the run: " + ", ".join(f"{n} {out[n]['rss_mb']:.0f} MiB" for n in names))
    bad = [
        f"{n} {label}: non-2xx {r['non2xx']}, socket errors {r['socket_errors']}, uncounted {r['uncounted']}"
        for n in names
        for label, r in out[n].items()
        if isinstance(r, dict) and (r.get("non2xx") or r.get("socket_errors") or r.get("uncounted"))
    ]
    for b in bad:
        print("NOT ANSWERED:", b)
    print(f"uptime at the start: {out['uptime_start']}\nuptime at the end:   {out['uptime_end']}")
    if not args.no_save:
        (HERE / ("results-drift.json" if args.drift else "results.json")).write_text(json.dumps(out, indent=2))
        write_readme(args, out, lines)
    return 1 if bad else 0


def _uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def write_readme(args: argparse.Namespace, out: dict[str, Any], lines: list[str]) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    marker = "bench.py --drift results" if args.drift else "bench.py results"
    begin, end = f"<!-- {marker}: begin -->", f"<!-- {marker}: end -->"
    la, lb = out["load_start"], out["load_end"]
    head = (
        f"{time.strftime('%d %b %Y %H:%M', time.gmtime())} UTC, `bench.py {'--drift ' if args.drift else ''}--duration {args.duration} --rounds "
        f"{args.rounds} --connections {args.connections} --servers {args.servers}`, {os.cpu_count()} cores, "
        f"load average (1/5/15 min) {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} at the start, "
        f"{lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f} at the end. Medians over the rounds:"
    )
    block = "\n".join([begin, head, "", *lines, "", end])
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
