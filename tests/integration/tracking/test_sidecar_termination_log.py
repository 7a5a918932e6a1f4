"""The sidecar's termination log (a trial pod's /dev/termination-log): real server and
sidecar processes on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Launcher
from .test_sidecar_delivery import API, FAST_RETRIES, history, metric, new_run

pytestmark = pytest.mark.integration


def report_until(path: Path, done: Any, timeout: float = 60) -> dict[str, Any]:
    """Poll the termination log until ``done(report)``, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text()
        report: dict[str, Any] = json.loads(text) if text else {}
        if (report and done(report)) or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def test_a_refused_token_is_in_the_termination_log_even_after_a_sigkill(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.server(token="right")
    run_id = new_run(server, token="right")
    log = tmp_path / "termination-log"
    log.write_text("")  # the kubelet creates the file before the container starts
    sidecar = launcher.sidecar(
        server.url,
        name="term",
        env=FAST_RETRIES,
        extra=("--server-token", "wrong", "--drain-timeout", "1", "--termination-log", str(log)),
    )
    for step in range(3):
        r = httpx.post(f"{sidecar.url}{API}/runs/log-metric", json=metric(run_id, step))
        assert r.status_code == 200, r.text
    # Written while the sidecar runs: a kill at the end of the pod's grace period leaves it.
    report = report_until(log, lambda r: r["authFailing"] and r["pending"] == 3)
    sidecar.kill()
    assert report["authFailing"] is True, report
    assert (report["pending"], report["deadLettered"], report["serverUp"]) == (3, 0, True), report
    assert "refuses the sidecar's token (HTTP 401)" in report["message"], report
    assert "3 acknowledged writes are kept" in report["message"], report
    assert "wrong" not in log.read_text()  # never the token

    # The next sidecar on the same buffer, with the right token, delivers them and says so.
    sidecar = launcher.sidecar(
        server.url,
        port=sidecar.port,
        name="term",
        extra=("--server-token", "right", "--termination-log", str(log)),
    )
    assert history(sidecar.url, run_id, "m") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert sidecar.stop() == 0
    assert json.loads(log.read_text()) == {
        "pending": 0,
        "deadLettered": 0,
        "authFailing": False,
        "serverUp": True,
        "message": "",
    }
