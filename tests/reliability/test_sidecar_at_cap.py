"""The sidecar at its memory cap with the server down: writes get 503 with ``Retry-After``,
the mlflow client waits and retries, nothing acknowledged is lost, the sidecar does not
crash, and its RSS stays where it was while a client writes at full speed.

The cap is the smallest the setting allows (64 KiB, ``--max-buffer-bytes``), so it is reached
at once. Before the cap existed the sidecar took every write into memory: the flood below
(FLOOD log-batch calls of 1000 metrics, ~70 MB) would all be acknowledged and held.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.tracking.conftest import Launcher

from .conftest import API, FAST_RETRIES, Trainer, compare, poll, release, rss_mib, sidecar_status, stored_points

CAP = 64 << 10
FLOOD = 1000
RSS_GROWTH_MIB = 64
"""How much more RSS the sidecar may take during the flood: the flood offers ~70 MB; an
unbounded buffer would hold all of it. Not a timing bound: memory."""


def flood_batch(run_id: str, n: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "metrics": [{"key": "flood", "value": float(i), "timestamp": 1, "step": n * 1000 + i} for i in range(1000)],
    }


@pytest.mark.timeout(900)
def test_sidecar_at_its_cap_answers_503_loses_nothing_and_stays_small(
    launcher: Launcher, trainers: Callable[..., Trainer], tmp_path: Path, figures: dict[str, Any]
) -> None:
    server = launcher.server()
    sidecar = launcher.sidecar(server.url, name="capped", extra=(*FAST_RETRIES, "--max-buffer-bytes", str(CAP)))
    assert sidecar.popen is not None
    pid = sidecar.popen.pid
    # The mlflow client logs 4 phases of 25 steps, each step a log-metric and a log-batch of
    # 200 metrics (~14 kB): a handful of steps fill the cap.
    trainer = trainers("capped", sidecar.url, f"cap-{uuid.uuid4().hex[:6]}", 4, 25, 200)
    run_id = poll(lambda: trainer.ready() and (tmp_path / "control" / "capped.ready").read_text(), 600, "the run")
    release(tmp_path / "control", 0)
    poll(lambda: trainer.done(0), 300, "phase 0 with the server up")

    server.kill()
    rss_before = rss_mib(pid)
    # A client at full speed with the server away: acknowledged until the cap, then 503s.
    flood_acked = flood_refused = 0
    retry_after: set[str] = set()
    rss_peak = rss_before
    with httpx.Client(timeout=60) as client:
        for n in range(FLOOD):
            r = client.post(f"{sidecar.url}{API}/runs/log-batch", json=flood_batch(run_id, n))
            if r.status_code == 200:
                flood_acked += 1
            else:
                assert r.status_code == 503, r.text
                assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
                retry_after.add(r.headers["Retry-After"])
                flood_refused += 1
            if n % 50 == 0:
                rss_peak = max(rss_peak, rss_mib(pid))
    rss_after_flood = rss_mib(pid)
    rss_peak = max(rss_peak, rss_after_flood)
    status = sidecar_status(sidecar)
    assert flood_refused > 0 and status["buffer_full"] >= flood_refused, status
    assert status["buffered_bytes"] < CAP + 100_000, status  # one write may pass the cap by its size

    # The trainer goes on with the server still away: its next writes get 503 and the mlflow
    # client retries them (after Retry-After); the server comes back while it waits.
    full_before = status["buffer_full"]
    release(tmp_path / "control", 1)
    poll(lambda: sidecar_status(sidecar)["buffer_full"] > full_before, 300, "the trainer's write refused at the cap")
    server = launcher.server(port=server.port)
    for phase in (2, 3):
        release(tmp_path / "control", phase)
    result = trainer.result(timeout=600)
    poll(lambda: sidecar_status(sidecar)["pending"] == 0, 300, "the sidecar to drain")

    assert sidecar.popen.poll() is None and sidecar.popen.pid == pid  # no crash, no restart
    status = sidecar_status(sidecar)
    acked = [(k, s, v) for k, s, v in result["acked"]]
    acked += [("flood", n * 1000 + i, float(i)) for n in range(flood_acked) for i in range(1000)]
    counts = compare(acked, stored_points(server, result["run_id"]))
    figures.update(
        cap_bytes=CAP,
        sent=result["sent"] + FLOOD * 1000,
        acknowledged=len(acked),
        refused_503=status["buffer_full"],
        retry_after=",".join(sorted(retry_after)),
        trainer_failed_calls=len(result["failed"]),
        **counts,
        dead_lettered=status["rejected"],
        rss_mib_before=round(rss_before, 1),
        rss_mib_peak=round(rss_peak, 1),
        rss_mib_after=round(rss_mib(pid), 1),
    )
    assert result["failed"] == [], result["failed"][:3]  # the mlflow client's retries carried it
    assert len(result["acked"]) == 4 * 25 * 201
    assert counts["lost"] == 0 and counts["wrong_value"] == 0 and counts["duplicated"] == 0, counts
    assert counts["stored"] == len(acked), counts
    assert status["rejected"] == 0, status["dead_letter"]
    assert rss_peak - rss_before < RSS_GROWTH_MIB, (rss_before, rss_peak)
