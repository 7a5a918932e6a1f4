"""The sidecar never blocks on one record, never drops an acknowledged one silently, and
stays within its memory and disk bounds: real server and sidecar processes on loopback."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.local_servers import free_port

from modelship.tracking.sidecar.wal import DurableLog

from .conftest import Launcher, Proc

pytestmark = pytest.mark.integration

API = "/api/2.0/mlflow"
STATUS = "/modelship/sidecar/status"
FAST_RETRIES = {"MODELSHIP_SIDECAR_RETRY_INITIAL": "0.05", "MODELSHIP_SIDECAR_RETRY_MAX": "0.2"}


def new_run(server: Proc, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    exp = httpx.post(
        f"{server.url}{API}/experiments/create", headers=headers, timeout=30, json={"name": f"d-{uuid.uuid4().hex[:8]}"}
    ).json()["experiment_id"]
    r = httpx.post(f"{server.url}{API}/runs/create", headers=headers, timeout=30, json={"experiment_id": exp})
    assert r.status_code == 200, r.text
    return str(r.json()["run"]["info"]["run_id"])


def history(base: str, run_id: str, key: str) -> list[tuple[int, float]]:
    r = httpx.get(f"{base}{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key}, timeout=60)
    assert r.status_code == 200, r.text
    return sorted((m["step"], m["value"]) for m in r.json().get("metrics", []))


def status_until(sidecar: Proc, done: Any, timeout: float = 60) -> dict[str, Any]:
    """Poll the status endpoint until ``done(status)``, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = httpx.get(sidecar.url + STATUS, timeout=10).json()
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def metric(run_id: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"run_id": run_id, "key": "m", "value": float(n), "timestamp": 1000 + n, "step": n, **fields}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("runs/log-metric", {"timestamp": 2**63}),
        ("runs/log-metric", {"timestamp": str(-(2**63) - 1)}),
        ("runs/log-metric", {"step": 2**63}),
        ("runs/log-metric", {"step": str(2**64)}),
        ("runs/log-batch", {"metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 2**63}]}),
        ("runs/update", {"status": "RUNNING", "end_time": 2**63}),
    ],
    ids=["timestamp", "negative timestamp", "step", "step as a string", "batch", "end_time"],
)
def test_integers_beyond_int64_are_refused_before_they_are_acknowledged(
    tracking_server: Proc, tracking_sidecar: Proc, path: str, body: dict[str, Any]
) -> None:
    run_id = new_run(tracking_server)
    before = httpx.get(tracking_sidecar.url + STATUS).json()
    payload = metric(run_id, 0, **body) if path.endswith("log-metric") else {"run_id": run_id, **body}
    r = httpx.post(f"{tracking_sidecar.url}{API}/{path}", json=payload, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and r.json()["message"]
    assert httpx.get(tracking_sidecar.url + STATUS).json()["last_seq"] == before["last_seq"]
    # ... and what comes next flows, and reads through the sidecar do not wait.
    assert (
        httpx.post(f"{tracking_sidecar.url}{API}/runs/log-metric", json=metric(run_id, 1), timeout=30).status_code
        == 200
    )
    # A read through the sidecar waits for the writes before it; behind a stuck record it
    # would give up after read_wait and miss step 1. (No clock: the content tells.)
    assert history(tracking_sidecar.url, run_id, "m") == [(1, 1.0)]
    assert httpx.get(tracking_sidecar.url + STATUS).json()["pending"] == 0


def test_a_record_the_server_fails_on_moves_aside_and_the_rest_flows(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.server()
    run_id = new_run(server)
    # A record that got past an older sidecar's checks: the server cannot store it.
    log = DurableLog(tmp_path / "poison-buffer")
    rec = {"method": "POST", "path": f"{API}/runs/log-metric", "run_id": run_id}
    log.append(dict(rec, body=metric(run_id, 0, timestamp=2**63)))
    for step in range(1, 4):
        log.append(dict(rec, body=metric(run_id, step)))
    log.close()
    sidecar = launcher.sidecar(server.url, name="poison", env={**FAST_RETRIES, "MODELSHIP_SIDECAR_MAX_ATTEMPTS": "3"})
    status = status_until(sidecar, lambda s: s["pending"] == 0)
    assert status["pending"] == 0 and status["rejected"] == 1, status
    assert history(sidecar.url, run_id, "m") == [(1, 1.0), (2, 2.0), (3, 3.0)]
    dead = [orjson.loads(line) for line in (tmp_path / "poison-buffer" / "rejected.jsonl").read_bytes().splitlines()]
    assert [d["record"]["body"]["timestamp"] for d in dead] == [2**63]
    assert dead[0]["reason"] and dead[0]["status"] >= 400
    metrics = httpx.get(sidecar.url + "/modelship/sidecar/metrics").text
    assert "modelship_sidecar_dead_letter_total" in metrics


def test_unauthorized_writes_are_kept_reported_and_sent_later(launcher: Launcher) -> None:
    server = launcher.server(token="right")
    run_id = new_run(server, token="right")
    sidecar = launcher.sidecar(
        server.url, name="auth", env=FAST_RETRIES, extra=("--server-token", "wrong", "--drain-timeout", "1")
    )
    for step in range(3):
        r = httpx.post(f"{sidecar.url}{API}/runs/log-metric", json=metric(run_id, step))
        assert r.status_code == 200, r.text
    status = status_until(sidecar, lambda s: s["auth_failing"])
    assert status["auth_failing"] is True and status["last_failure"]["status"] == 401, status
    assert status["pending"] == 3 and status["rejected"] == 0, status
    time.sleep(1)  # a few more attempts: still kept
    assert httpx.get(sidecar.url + STATUS).json()["pending"] == 3
    assert not (launcher.root / "auth-buffer" / "rejected.jsonl").exists()
    assert sidecar.stop() == 0
    lines = [orjson.loads(x) for x in (launcher.root / "auth.log").read_text().splitlines() if x.startswith("{")]
    assert any(x["level"] == "error" and x.get("status") == 401 for x in lines), lines
    # The token is fixed: the next sidecar on the same buffer delivers what was kept.
    sidecar = launcher.sidecar(server.url, port=sidecar.port, name="auth", extra=("--server-token", "right"))
    assert history(sidecar.url, run_id, "m") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert httpx.get(sidecar.url + STATUS).json()["auth_failing"] is False


def test_a_full_buffer_answers_503_with_retry_after_and_drains(launcher: Launcher) -> None:
    server = launcher.server()
    run_id = new_run(server)
    cap = 1 << 20
    sidecar = launcher.sidecar(
        server.url, name="full", env={**FAST_RETRIES, "MODELSHIP_SIDECAR_MAX_BUFFER_BYTES": str(cap)}
    )
    assert (
        httpx.post(f"{sidecar.url}{API}/runs/log-metric", json=metric(run_id, 0)).status_code == 200
    )  # the run is known now
    status_until(sidecar, lambda s: s["pending"] == 0)
    server.stop()
    acked, full = 0, None
    with httpx.Client(timeout=30) as client:
        for n in range(1, 400):  # 1000 metrics are ~70 kB in the log: the cap comes soon
            r = client.post(
                f"{sidecar.url}{API}/runs/log-batch",
                json={
                    "run_id": run_id,
                    "metrics": [
                        {"key": "b", "value": float(n), "timestamp": n, "step": n * 1000 + i} for i in range(1000)
                    ],
                },
            )
            if r.status_code != 200:
                full = r
                break
            acked += 1
    assert full is not None, "never pushed back"
    assert full.status_code == 503 and full.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert int(full.headers["Retry-After"]) >= 1
    status = httpx.get(sidecar.url + STATUS).json()
    assert cap <= status["buffered_bytes"] < cap + 200_000, status
    assert status["buffer_full"] >= 1
    assert (launcher.root / "full-buffer" / "wal.log").stat().st_size < cap + 200_000
    server = launcher.server(port=server.port)  # back: the buffer drains and writes flow
    status = status_until(sidecar, lambda s: s["pending"] == 0)
    assert status["pending"] == 0 and status["rejected"] == 0, status
    assert httpx.post(f"{sidecar.url}{API}/runs/log-metric", json=metric(run_id, 1)).status_code == 200
    assert len(history(sidecar.url, run_id, "b")) == acked * 1000


def test_the_server_url_is_logged_without_its_credentials(launcher: Launcher) -> None:
    port = free_port()  # nothing listens there: the forwarder's failures are logged too
    sidecar = launcher.sidecar(
        f"http://trainer:s3cr3t-pw@127.0.0.1:{port}", name="cred", env=FAST_RETRIES, extra=("--drain-timeout", "1")
    )
    r = httpx.post(f"{sidecar.url}{API}/runs/log-metric", json=metric("a" * 32, 0))
    assert r.status_code == 200
    status_until(sidecar, lambda s: s["server_up"] is False)
    status = httpx.get(sidecar.url + STATUS).text
    sidecar.stop()
    text = (launcher.root / "cred.log").read_text()
    assert "127.0.0.1" in text  # the server is named ...
    assert "s3cr3t-pw" not in text and "s3cr3t-pw" not in status  # ... not its password
