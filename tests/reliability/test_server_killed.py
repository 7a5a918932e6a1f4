"""The tracking server SIGKILLed (and restarted) again and again during 10 concurrent
training runs, each logging through a sidecar of its own: every acknowledged metric is
stored exactly once, nothing goes to the dead letter.

The kills come at seeded random moments after each logging phase is released, so they hit
the server while trainers log and while the sidecars flush what they buffered during the
last outage (a batch the server stored but whose answer was lost is sent again; the server
must take it as the same points).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.tracking.conftest import Launcher

from .conftest import FAST_RETRIES, Trainer, compare, poll, release, sidecar_status, stored_points

RUNS = 10
PHASES = 5  # the server is killed once in each of the first four phases
STEPS = 30  # per phase and run: one log-metric and one log-batch of BATCH metrics per step
BATCH = 3
SEED = 20261202


@pytest.mark.timeout(1200)
def test_server_killed_during_ten_runs_every_acknowledged_metric_stored_once(
    launcher: Launcher, trainers: Callable[..., Trainer], tmp_path: Path, figures: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    server = launcher.server()
    sidecars = [launcher.sidecar(server.url, name=f"sidecar-{i}", extra=FAST_RETRIES) for i in range(RUNS)]
    experiment = f"kill-server-{uuid.uuid4().hex[:6]}"
    runs = [trainers(f"run-{i}", sidecars[i].url, experiment, PHASES, STEPS, BATCH) for i in range(RUNS)]
    poll(lambda: all(t.ready() for t in runs), 600, "every trainer's run created")
    control = tmp_path / "control"

    kills = 0
    for phase in range(PHASES):
        release(control, phase)
        if phase == PHASES - 1:
            break  # the last phase runs with the server up throughout
        time.sleep(rng.uniform(0.0, 1.5))  # where the kill lands; not a check of timing
        server.kill()
        kills += 1
        time.sleep(rng.uniform(0.1, 1.0))  # how long the server stays away
        server = launcher.server(port=server.port)  # same port, same SQLite database
    results = [trainer.result(timeout=600) for trainer in runs]
    # Every sidecar delivers what it acknowledged, then the server is asked directly.
    for sidecar in sidecars:
        poll(lambda sidecar=sidecar: sidecar_status(sidecar)["pending"] == 0, 300, f"{sidecar.url} to drain")

    totals = {"sent": 0, "acknowledged": 0, "failed_calls": 0}
    counts: dict[str, int] = {}
    for result in results:
        totals["sent"] += result["sent"]
        totals["acknowledged"] += len(result["acked"])
        totals["failed_calls"] += len(result["failed"])
        acked = [(k, s, v) for k, s, v in result["acked"]]
        for name, n in compare(acked, stored_points(server, result["run_id"])).items():
            counts[name] = counts.get(name, 0) + n
    statuses = [sidecar_status(s) for s in sidecars]
    dead = sum(s["rejected"] for s in statuses)
    figures.update(
        runs=RUNS,
        server_kills=kills,
        **totals,
        **counts,
        dead_lettered=dead,
        forward_failures=sum(s["forward_failures"] for s in statuses),
    )
    assert totals["failed_calls"] == 0, [r["failed"][:3] for r in results]
    assert totals["acknowledged"] == RUNS * PHASES * STEPS * (1 + BATCH)
    assert counts["lost"] == 0 and counts["wrong_value"] == 0, counts
    assert counts["duplicated"] == 0, counts
    assert counts["stored"] == totals["acknowledged"], counts
    assert dead == 0, [s["dead_letter"] for s in statuses]
