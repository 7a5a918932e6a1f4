"""A real ``modelship serve`` process: payload formats, v2, errors, metrics, drain on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.local_servers import free_port

pytestmark = pytest.mark.integration


def formats(s: dict[str, Any]) -> dict[str, Any]:
    df = pd.DataFrame(s["data"], columns=s["columns"])
    records = df.to_dict(orient="records")
    return {
        "dataframe_split": {"dataframe_split": s},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": s["data"]},
        "inputs_columns": {"inputs": {c: df[c].tolist() for c in df.columns}},
    }


def test_every_format_matches_mlflow(mlflow_models: tuple[Path, dict[str, Any]], modelship_server: Any) -> None:
    root, expected = mlflow_models
    server = modelship_server(str(root / "wine"), "--model-name", "wine")
    for name, body in formats(expected["sample"]).items():
        resp = server.http.post("/invocations", json=body)
        assert resp.status_code == 200, (name, resp.text)
        assert resp.json() == {"predictions": expected["wine"]}, name
    csv = pd.DataFrame(expected["sample"]["data"], columns=expected["sample"]["columns"]).to_csv(index=False)
    resp = server.http.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert resp.json() == {"predictions": expected["wine"]}
    rows = expected["sample"]["data"]
    v2 = {"inputs": [{"name": "input-0", "shape": [len(rows), 13], "datatype": "FP64", "data": rows}]}
    resp = server.http.post("/v2/models/wine/infer", json=v2)
    assert resp.status_code == 200
    assert resp.json()["outputs"][0]["data"] == expected["wine"]
    # schema errors name the column
    bad = {
        "dataframe_split": {
            "columns": expected["sample"]["columns"][1:],
            "data": [r[1:] for r in rows],
        }
    }
    resp = server.http.post("/invocations", json=bad)
    assert resp.status_code == 400 and "alcohol" in resp.json()["message"]
    metrics = server.http.get("/metrics").text
    assert (
        'modelship_requests_total{endpoint="invocations",model="wine",status="200",variant="default",version="1"} 6.0'
        in metrics
    )


def test_predict_proba_model(mlflow_models: tuple[Path, dict[str, Any]], modelship_server: Any) -> None:
    root, expected = mlflow_models
    server = modelship_server(str(root / "wine_proba"), "--allow-pickle")  # cloudpickle
    resp = server.http.post("/invocations", json={"dataframe_split": expected["sample"]})
    np.testing.assert_allclose(resp.json()["predictions"], expected["wine_proba"], rtol=1e-12)


def test_a_pickled_model_is_refused_without_the_opt_in(
    tmp_path: Path, mlflow_models: tuple[Path, dict[str, Any]]
) -> None:
    root, _ = mlflow_models
    env = {k: v for k, v in os.environ.items() if k != "MODELSHIP_ALLOW_PICKLE"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelship",
            "serve",
            "-m",
            str(root / "wine_proba"),
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert out.returncode == 1
    assert "UntrustedModelError" in out.stderr and "--allow-pickle" in out.stderr


def test_pyfunc_params_errors_and_recovery(mlflow_models: tuple[Path, dict[str, Any]], modelship_server: Any) -> None:
    root, expected = mlflow_models
    server = modelship_server(  # python_model.pkl: the opt-in, here as the setting
        str(root / "scaler"), env={"MODELSHIP_VARIANT": "green", "MODELSHIP_ALLOW_PICKLE": "true"}
    )
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 0.5], [2, 1.5]]}}
    assert server.http.post("/invocations", json=body).json() == {"predictions": expected["scaler"]}
    assert server.http.post("/invocations", json={**body, "params": {"k": 3}}).json() == {
        "predictions": expected["scaler_k3"]
    }
    resp = server.http.post("/invocations", json={"dataframe_split": {"columns": ["a", "b"], "data": [[-1, 0.5]]}})
    assert resp.status_code == 500 and "negative a" in resp.json()["message"]
    assert server.http.post("/invocations", json=body).status_code == 200
    assert 'variant="green"' in server.http.get("/metrics").text


def test_sigterm_finishes_in_flight_requests_then_exits(
    tmp_path: Path, mlflow_models: tuple[Path, dict[str, Any]], modelship_server: Any
) -> None:
    root, _ = mlflow_models
    server = modelship_server(str(root / "slow"), "--allow-pickle")
    marker = tmp_path / "started"
    result: dict[str, Any] = {}

    def slow_call() -> None:
        body = {"dataframe_records": [{"seconds": 2.0, "marker": str(marker)}]}
        result["resp"] = httpx.post(f"{server.url}/invocations", json=body, timeout=60)

    t = threading.Thread(target=slow_call)
    t.start()
    deadline = time.monotonic() + 60
    while not marker.exists():  # the predict is running: the request is in flight
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    t.join(timeout=60)
    assert result["resp"].status_code == 200
    assert result["resp"].json() == {"predictions": [2.0]}
    assert server.proc.wait(timeout=60) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/ping", timeout=5)


def _children(pid: int) -> set[int]:
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids.update(int(k) for k in (task / "children").read_text().split())
    return kids


def test_workers_share_the_port_and_stop_together(
    mlflow_models: tuple[Path, dict[str, Any]], modelship_server: Any
) -> None:
    """``--workers 2``: two processes, each with the model loaded, answer on one port; a
    SIGTERM stops both and the server exits 0."""
    root, expected = mlflow_models
    server = modelship_server(str(root / "wine"), "--model-name", "wine", "--workers", "2")
    deadline = time.monotonic() + 120
    while server.log.read_text(errors="replace").count('"model loaded"') < 2:
        assert server.proc.poll() is None and time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.2)
    workers = _children(server.proc.pid)
    assert len(workers) == 2
    body = {"dataframe_split": expected["sample"]}
    for _ in range(40):  # a new connection each time: the kernel hands them to either worker
        resp = httpx.post(f"{server.url}/invocations", json=body, timeout=60, headers={"connection": "close"})
        assert resp.status_code == 200 and resp.json() == {"predictions": expected["wine"]}, resp.text
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_worker_that_cannot_load_stops_the_server_with_status_1(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelship", "serve", "-m", str(tmp_path / "missing"), "--port", str(port)]
        + ["--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.wait(timeout=120) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
