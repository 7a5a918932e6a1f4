"""The sidecar loses nothing it acknowledged and applies nothing twice: the server goes
away mid-run, the sidecar is killed, its log is replayed, and it is stopped with writes
still pending."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import METRICS_SCRIPT, Launcher

pytestmark = pytest.mark.integration

API = "/api/2.0/mlflow"


def post(base: str, path: str, body: dict, timeout: float = 60) -> dict:
    r = httpx.post(f"{base}{API}/{path}", json=body, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def history(base: str, run_id: str, key: str) -> list[tuple[int, float]]:
    r = httpx.get(f"{base}{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key}, timeout=60)
    assert r.status_code == 200, r.text
    return [(m["step"], m["value"]) for m in r.json().get("metrics", [])]


def wait_for_line(proc: subprocess.Popen[str], wanted: str) -> list[str]:
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.strip())
        if line.strip() == wanted:
            return seen
    raise AssertionError(f"script ended before printing {wanted}: {seen}")


def test_server_stopped_mid_run_every_metric_arrives_once(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.server()
    sidecar = launcher.sidecar(server.url)
    pause = tmp_path / "pause"
    pause.touch()
    steps = 40
    env = dict(os.environ, MLFLOW_TRACKING_URI=sidecar.url, PYTHONUNBUFFERED="1")
    script = subprocess.Popen(
        [sys.executable, str(METRICS_SCRIPT), "fault", str(steps), str(pause)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = wait_for_line(script, "PAUSED")
        run_id = next(x.split("=", 1)[1] for x in lines if x.startswith("RUN_ID="))
        server.stop()  # the server goes away mid-run ...
        pause.unlink()  # ... and the script goes on
        wait_for_line(script, "LOGGED")
        # The sidecar notices on its next forward attempt, which a loaded machine may delay:
        # poll for the state, with a bound, instead of asserting it at once.
        deadline = time.monotonic() + 60
        status = httpx.get(f"{sidecar.url}/modelship/sidecar/status").json()
        while status["server_up"] is not False and time.monotonic() < deadline:
            time.sleep(0.2)
            status = httpx.get(f"{sidecar.url}/modelship/sidecar/status").json()
        assert status["pending"] > 0 and status["server_up"] is False, status
        launcher.server(port=server.port)  # the server comes back (same database)
        (tmp_path / "pause.release").touch()
        wait_for_line(script, "ENDED")
        assert script.wait(120) == 0, script.stderr.read() if script.stderr else ""
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    # Through the sidecar: waits for its log to drain; then straight from the server.
    assert len(history(sidecar.url, run_id, "loss")) == steps
    got = history(server.url, run_id, "loss")
    assert sorted(got) == [(s, pytest.approx(1.0 / (s + 1))) for s in range(steps)]
    run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {"key": "phase", "value": "done"} in run["data"]["tags"]
    assert httpx.get(f"{sidecar.url}/modelship/sidecar/status").json()["rejected"] == 0


def _write_some(base: str, run_id: str, start: int, n: int) -> None:
    for i in range(start, start + n):
        post(
            base, "runs/log-metric", {"run_id": run_id, "key": "m", "value": i * 0.5, "timestamp": 1000 + i, "step": i}
        )
    post(
        base,
        "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "b", "value": float(i), "timestamp": 7, "step": i} for i in range(start, start + n)],
            "params": [{"key": "p", "value": "1"}],
            "tags": [{"key": "t", "value": str(start)}],
        },
    )


def test_killed_sidecar_replays_its_log_without_duplicates(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.server()
    sidecar = launcher.sidecar(server.url, name="sc")
    exp = post(sidecar.url, "experiments/create", {"name": f"kill-{uuid.uuid4().hex[:6]}"})
    run_id = post(sidecar.url, "runs/create", {"experiment_id": exp["experiment_id"]})["run"]["info"]["run_id"]
    server.stop()
    _write_some(sidecar.url, run_id, 0, 25)  # acknowledged while the server is away
    sidecar.kill()  # SIGKILL: no drain, no goodbye
    wal = tmp_path / "sc-buffer" / "wal.log"
    assert wal.stat().st_size > 0
    saved = tmp_path / "wal.copy"
    shutil.copy(wal, saved)

    server = launcher.server(port=server.port)
    sidecar = launcher.sidecar(server.url, port=sidecar.port, name="sc")
    _write_some(sidecar.url, run_id, 25, 5)
    assert len(history(sidecar.url, run_id, "m")) == 30
    run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert {"key": "t", "value": "25"} in run["data"]["tags"]  # log order kept
    sidecar.stop()

    # Replay the whole log once more, as if the cursor had been lost: nothing doubles.
    shutil.copy(saved, wal)
    (tmp_path / "sc-buffer" / "cursor").unlink()
    sidecar = launcher.sidecar(server.url, port=sidecar.port, name="sc")
    assert httpx.get(f"{sidecar.url}/modelship/sidecar/status").json()["last_seq"] > 0
    m = history(sidecar.url, run_id, "m")
    b = history(server.url, run_id, "b")
    assert sorted(m) == [(i, i * 0.5) for i in range(30)]
    assert sorted(b) == [(i, float(i)) for i in range(30)]
    run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["data"]["params"] == [{"key": "p", "value": "1"}]
    assert httpx.get(f"{sidecar.url}/modelship/sidecar/status").json()["rejected"] == 0


def test_shutdown_drains_within_its_bound(launcher: Launcher) -> None:
    server = launcher.server()
    # A bound, not a time limit: this drain ends when the writes are forwarded, however
    # loaded the machine (the bound of 2 s below is the one under test).
    sidecar = launcher.sidecar(server.url, name="sd", extra=("--drain-timeout", "300"))
    exp = post(sidecar.url, "experiments/create", {"name": f"drain-{uuid.uuid4().hex[:6]}"})
    run_id = post(sidecar.url, "runs/create", {"experiment_id": exp["experiment_id"]})["run"]["info"]["run_id"]

    # Server up: SIGTERM right after the writes; the sidecar forwards them before exiting.
    _write_some(sidecar.url, run_id, 0, 20)
    assert sidecar.stop() == 0
    assert len(history(server.url, run_id, "m")) == 20

    # Server down: the drain gives up after its timeout and keeps the writes on disk.
    sidecar = launcher.sidecar(server.url, port=sidecar.port, name="sd", extra=("--drain-timeout", "2"))
    server.stop()
    _write_some(sidecar.url, run_id, 20, 10)
    assert sidecar.stop() == 0
    assert "drain timed out" in (launcher.root / "sd.log").read_text()
    server = launcher.server(port=server.port)
    sidecar = launcher.sidecar(server.url, port=sidecar.port, name="sd")
    assert sorted(history(sidecar.url, run_id, "m")) == [(i, i * 0.5) for i in range(30)]
