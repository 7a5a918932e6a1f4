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
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    args: list[str], port: int, log: Path, health: str = "/health", extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", **(extra_env or {}))
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


def start_modelship(
    work: Path, port: int, source: Path | None = None, name: str = "modelship"
) -> subprocess.Popen[bytes]:
    """``modelship tracking-server`` on SQLite in ``work``, one worker, as every row measures it;
    with ``source``, the server of that checkout (its ``operator/`` first on the path, this venv)."""
    args = [PY, "-m", "modelship", "tracking-server", "--port", str(port)]
    args += ["--backend-store-uri", f"sqlite:///{work}/{name}.db", "--artifacts-destination", str(work / f"{name}-art")]
    extra = {"PYTHONPATH": str(source / "operator")} if source else None
    return start(args, port, work / f"{name}.log", extra_env=extra)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def family(pid: int) -> list[int]:
    """A process and its children (mlflow server runs its worker as a child)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [pid] + [int(p) for p in out.stdout.split()]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) these processes and their children have used so far."""
    ticks = 0
    for pid in pids:
        for p in family(pid):
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def drive(uri: str, mode: str, n: int, clients: int, servers: list[int]) -> dict[str, Any]:
    """``clients`` drivers against ``uri``, released together once all are set up; the
    rate is their total count over the wall time from the first start to the last end.
    Also the CPU time the processes ``servers`` spent meanwhile (for the sidecar: the
    sidecar and the server it forwards to, measured once its log has drained)."""
    # Telemetry off: no network here, and its thread races os.environ in mlflow 3.17.
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true")
    procs = [
        subprocess.Popen(
            [PY, str(HERE / "driver.py"), mode, str(n)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(p.communicate(timeout=60)[1][-3000:])
        cpu0 = cpu_seconds(servers)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=1800)
            if p.returncode != 0:
                raise RuntimeError(err[-3000:])
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    t0 = time.perf_counter()
    if mode == "single":  # reading through the sidecar waits for its log to drain
        history_len(uri, results[0]["run_id"], "loss")
    drain = time.perf_counter() - t0
    server_cpu = cpu_seconds(servers) - cpu0
    count = sum(int(r["count"]) for r in results)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "count": count,
        "seconds": seconds,
        "per_second": count / seconds,
        "server_cpu_ms_per_1000": server_cpu * 1e6 / count,
        "drain_seconds": drain,
        "run_ids": [r["run_id"] for r in results],
    }


def write_replay_bodies(directory: Path, count: int) -> None:
    """``count`` log-batch bodies as the mlflow client serializes them (its own encoder),
    1000 metrics each, every point distinct, with a placeholder for the run id."""
    from mlflow.entities import Metric
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import message_to_json

    directory.mkdir(parents=True, exist_ok=True)
    ts = int(time.time() * 1000)
    for i in range(count):
        metrics = [Metric(f"m{k % 10}", float(i * 1000 + k), ts + i, i * 100 + k // 10).to_proto() for k in range(1000)]
        body = message_to_json(LogBatch(run_id="RUN_ID_PLACEHOLDER", metrics=metrics))
        (directory / f"{i}.json").write_text(body)


def new_run(base: str) -> str:
    api = f"{base}/api/2.0/mlflow"
    exp = httpx.post(f"{api}/experiments/create", json={"name": f"replay-{time.time_ns()}"}, timeout=60).json()[
        "experiment_id"
    ]
    run = httpx.post(f"{api}/runs/create", json={"experiment_id": exp}, timeout=60).json()
    return str(run["run"]["info"]["run_id"])


def replay(
    uri: str, mode: str, seconds: int, connections: int, bodies: Path, count: int, servers: list[int]
) -> dict[str, Any]:
    """wrk sends the client's requests (replay.lua) for ``seconds``: the rate a server
    absorbs when the client costs next to nothing. Checks every answered write landed."""
    run_id = new_run(uri)
    args = ["batch", str(bodies), str(count), run_id] if mode == "batch" else ["single", run_id]
    cpu0 = cpu_seconds(servers)
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "120s",
            "-s",
            str(HERE / "replay.lua"),
            uri,
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr[-2000:]}")
    out = proc.stdout
    got = dict(kv.split("=") for line in out.splitlines() if line.startswith("BENCH ") for kv in line[6:].split())
    requests, non2xx = int(got["requests"]), int(got["non2xx"])
    if non2xx or int(got["socket_errors"]):
        raise RuntimeError(f"{uri} {mode}: {non2xx} non-2xx replies, {got['socket_errors']} socket errors\n{out}")
    if mode == "batch" and requests > count:
        raise RuntimeError(f"{requests} batches sent but only {count} distinct bodies: raise --replay-bodies")
    per = 1000 if mode == "batch" else 1
    # A read through the sidecar waits until its log has drained: forwarding is part of
    # the sidecar's cost. The read-back below is not.
    httpx.get(f"{uri}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=120)
    server_cpu = cpu_seconds(servers) - cpu0
    # A write still in flight when wrk stopped may land without being counted.
    keys = [f"m{i}" for i in range(10)] if mode == "batch" else ["loss"]
    landed = sum(history_len(uri, run_id, key) for key in keys)
    assert requests * per <= landed <= (requests + connections) * per, (uri, mode, requests, landed)
    seconds_run = int(got["duration_us"]) / 1e6
    return {
        "count": requests * per,
        "seconds": seconds_run,
        "per_second": requests * per / seconds_run,
        "server_cpu_ms_per_1000": server_cpu * 1e6 / max(landed, 1),
        "run_ids": [run_id],
    }


def history_len(base: str, run_id: str, key: str) -> int:
    r = httpx.get(
        f"{base}/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": key}, timeout=120
    )
    return len(r.json().get("metrics", []))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--singles", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--clients", type=int, default=4, help="concurrent mlflow clients for the server-capacity measurement"
    )
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument(
        "--replay-seconds",
        type=int,
        default=5,
        help="length of each wrk replay of the client's requests (0: skip them)",
    )
    ap.add_argument(
        "--replay-bodies",
        type=int,
        default=800,
        help="distinct log-batch bodies for the replay (each is sent at most once)",
    )
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelship-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        mp = free_port()
        mlflow_server = start(
            [
                PY,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(mp),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{work}/mlflow.db",
                "--artifacts-destination",
                str(work / "mlflow-art"),
            ],
            mp,
            work / "mlflow.log",
        )
        procs.append(mlflow_server)
        sp = free_port()
        ours = start_modelship(work, sp)
        procs.append(ours)
        cp = free_port()
        sidecar = start(
            [
                PY,
                "-m",
                "modelship",
                "tracking-sidecar",
                "--port",
                str(cp),
                "--server",
                f"http://127.0.0.1:{sp}",
                "--buffer-dir",
                str(work / "buffer"),
            ],
            cp,
            work / "sidecar.log",
        )
        procs.append(sidecar)
        np_ = free_port()
        null = start([PY, str(HERE / "null_server.py"), str(np_)], np_, work / "null.log")
        procs.append(null)
        m_uri, s_uri, c_uri = (f"http://127.0.0.1:{p}" for p in (mp, sp, cp))
        n_uri = f"http://127.0.0.1:{np_}"

        k = a.clients
        m_pids, s_pids, c_pids, n_pids = ([mlflow_server.pid], [ours.pid], [sidecar.pid, ours.pid], [null.pid])
        plan = {
            "mlflow_batch": (m_uri, "batch", a.batches, 1, m_pids),
            "modelship_batch": (s_uri, "batch", a.batches, 1, s_pids),
            "client_floor_batch": (n_uri, "batch", a.batches, 1, n_pids),
            f"mlflow_batch_{k}_clients": (m_uri, "batch", a.batches, k, m_pids),
            f"modelship_batch_{k}_clients": (s_uri, "batch", a.batches, k, s_pids),
            f"client_floor_batch_{k}_clients": (n_uri, "batch", a.batches, k, n_pids),
            "mlflow_single": (m_uri, "single", a.singles, 1, m_pids),
            "modelship_single_sidecar": (c_uri, "single", a.singles, 1, c_pids),
            "modelship_single_direct": (s_uri, "single", a.singles, 1, s_pids),
            "client_floor_single": (n_uri, "single", a.singles, 1, n_pids),
        }
        replays: dict[str, tuple[str, str, int, list[int]]] = {}
        bodies = work / "bodies"
        if a.replay_seconds > 0:
            if shutil.which("wrk") is None:
                raise SystemExit("the replay needs wrk (apt-get install -y wrk), or --replay-seconds 0")
            write_replay_bodies(bodies, a.replay_bodies)
            replays = {
                f"mlflow_batch_replay_{k}_connections": (m_uri, "batch", k, m_pids),
                f"modelship_batch_replay_{k}_connections": (s_uri, "batch", k, s_pids),
                "mlflow_single_replay": (m_uri, "single", 1, m_pids),
                "modelship_single_replay_sidecar": (c_uri, "single", 1, c_pids),
            }
        # Rounds interleave the targets, so a machine whose load drifts (shared CI) hits
        # all of them alike; the best round of each is kept.
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key in [*plan, *replays]}
        for _ in range(a.repeat):
            for key, (uri, mode, n, clients, pids) in plan.items():
                runs[key].append(drive(uri, mode, n, clients, pids))
            for key, (uri, mode, connections, pids) in replays.items():
                runs[key].append(replay(uri, mode, a.replay_seconds, connections, bodies, a.replay_bodies, pids))
        r = {key: max(v, key=lambda x: x["per_second"]) for key, v in runs.items()}
        # Everything the sidecar acknowledged reached the server (read through the sidecar
        # waits for its log to drain), and every batch is stored, on both servers.
        landed = history_len(c_uri, r["modelship_single_sidecar"]["run_ids"][0], "loss")
        drain_s = r["modelship_single_sidecar"]["drain_seconds"]
        assert landed == a.singles, (landed, a.singles)
        for key, uri in (
            ("modelship_batch", s_uri),
            ("mlflow_batch", m_uri),
            (f"modelship_batch_{k}_clients", s_uri),
            (f"mlflow_batch_{k}_clients", m_uri),
        ):
            for run_id in r[key]["run_ids"]:
                n = sum(history_len(uri, run_id, f"m{i}") for i in range(10))
                assert n == a.batches * 1000, (key, run_id, n)

        print(f"{'measurement':32} {'count':>7} {'seconds':>8} {'per second':>11} {'server CPU ms/1000':>19}")
        for key, v in r.items():
            print(
                f"{key:32} {v['count']:7d} {v['seconds']:8.2f} {v['per_second']:11.0f} "
                f"{v['server_cpu_ms_per_1000']:19.0f}"
            )

        def ratio(ours_key: str, theirs_key: str) -> float:
            return float(r[ours_key]["per_second"] / r[theirs_key]["per_second"])

        ratios = {
            "batched_1_client": ratio("modelship_batch", "mlflow_batch"),
            f"batched_{k}_clients": ratio(f"modelship_batch_{k}_clients", f"mlflow_batch_{k}_clients"),
            "single_via_sidecar": ratio("modelship_single_sidecar", "mlflow_single"),
            "single_server_direct": ratio("modelship_single_direct", "mlflow_single"),
        }
        if replays:
            ratios[f"batched_replay_{k}_connections"] = ratio(
                f"modelship_batch_replay_{k}_connections", f"mlflow_batch_replay_{k}_connections"
            )
            ratios["single_replay_via_sidecar"] = ratio("modelship_single_replay_sidecar", "mlflow_single_replay")
        ceilings = {
            "batched_1_client": ratio("client_floor_batch", "mlflow_batch"),
            f"batched_{k}_clients": ratio(f"client_floor_batch_{k}_clients", f"mlflow_batch_{k}_clients"),
            "single_via_sidecar": ratio("client_floor_single", "mlflow_single"),
        }
        # Server CPU per metric, the best round of each: what one core of the server
        # does when the clients are elsewhere (they share the machine's cores here).
        cpu = {key: min(x["server_cpu_ms_per_1000"] for x in v) for key, v in runs.items()}
        efficiency = {
            "batched": cpu["mlflow_batch"] / cpu["modelship_batch"],
            "single_via_sidecar": cpu["mlflow_single"] / cpu["modelship_single_sidecar"],
        }
        goals = {"batched_1_client": 10, f"batched_{k}_clients": 10, "single_via_sidecar": 5}
        print("\nratio modelship / mlflow       measured   ceiling   goal")
        for name, value in ratios.items():
            ceil = f"{ceilings[name]:8.1f}x" if name in ceilings else " " * 9
            goal = f"{goals[name]:5d}x" if name in goals else ""
            print(f"{name:30} {value:8.1f}x {ceil} {goal}")
        print(
            f"server CPU per metric, mlflow / modelship: {efficiency['batched']:.1f}x batched, "
            f"{efficiency['single_via_sidecar']:.1f}x single calls (sidecar + server)"
        )
        print(
            "ceiling: the same clients against a server that stores nothing; no server can "
            "pass it with this client on this machine"
        )
        if replays:
            print(
                f"replay: wrk sends the requests the mlflow client serialized ({k} connections "
                "for batches, 1 for single calls, the sidecar's through the sidecar): the rate "
                "each server absorbs when the client costs next to nothing"
            )
        print(f"sidecar backlog after the single-call run drained in {drain_s:.2f}s")
        rss = {
            "modelship_server": rss_mb(ours.pid),
            "modelship_sidecar": rss_mb(sidecar.pid),
            "mlflow_server": rss_mb(mlflow_server.pid),
        }
        print(
            f"RSS: modelship server {rss['modelship_server']:.0f} MiB, sidecar "
            f"{rss['modelship_sidecar']:.0f} MiB, mlflow server {rss['mlflow_server']:.0f} MiB "
            "(with its workers)"
        )
        if a.json:
            load = os.getloadavg()
            Path(a.json).write_text(
                json.dumps(
                    {
                        "args": vars(a),
                        "best": {
                            key: {x: v[x] for x in ("count", "seconds", "per_second", "server_cpu_ms_per_1000")}
                            for key, v in r.items()
                        },
                        "ratios": ratios,
                        "ceilings": ceilings,
                        "server_cpu_efficiency": efficiency,
                        "rss_mib": rss,
                        "loadavg_after": load,
                        "nproc": os.cpu_count(),
                    },
                    indent=2,
                )
                + "\n"
            )
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
