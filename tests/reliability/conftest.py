"""Fixtures of the reliability suite: faults injected on purpose into real processes on
loopback (``modelship tracking-server`` with SQLite, one ``modelship tracking-sidecar`` per
run, the real mlflow client in a training script of its own), and the counts that show
nothing was lost or doubled.

The servers and sidecars are started by the tracking integration tests' ``Launcher`` (one
way to start them); every process a test starts is stopped by its finalizer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import wait
from tests.integration.tracking.conftest import (
    Proc,
    launcher,  # noqa: F401 - the fixture, registered here too
)

API = "/api/2.0/mlflow"
STATUS = "/modelship/sidecar/status"
TRAINER = Path(__file__).with_name("trainer.py")
FAST_RETRIES = ("--retry-initial", "0.05", "--retry-max", "0.5")
"""The sidecars retry every half second at most, so a restarted server is found soon."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


class Trainer:
    """One ``trainer.py`` process logging through ``tracking_uri``."""

    def __init__(self, control: Path, name: str, tracking_uri: str, experiment: str, *args: int) -> None:
        self.control, self.name = control, name
        self.log = control / f"{name}.log"
        env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, PYTHONUNBUFFERED="1")
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, str(TRAINER), experiment, str(control), name, *map(str, args)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        self._check()
        return (self.control / f"{self.name}.ready").exists()

    def done(self, phase: int) -> bool:
        self._check()
        return (self.control / f"{self.name}.done-{phase}").exists()

    def _check(self) -> None:
        if self.popen.poll() not in (None, 0):
            raise AssertionError(f"trainer {self.name} exited {self.popen.returncode}: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def result(self, timeout: float) -> dict[str, Any]:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"trainer {self.name} did not end within {timeout}s: {self.output()}") from None
        assert code == 0, self.output()
        result: dict[str, Any] = json.loads((self.control / f"{self.name}.json").read_text())
        return result

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
def trainers(tmp_path: Path) -> Iterator[Callable[..., Trainer]]:
    started: list[Trainer] = []
    control = tmp_path / "control"
    control.mkdir()

    def start(name: str, tracking_uri: str, experiment: str, phases: int, steps: int, batch: int) -> Trainer:
        trainer = Trainer(control, name, tracking_uri, experiment, phases, steps, batch)
        started.append(trainer)
        return trainer

    try:
        yield start
    finally:
        for trainer in started:
            trainer.stop()


def release(control: Path, phase: int) -> None:
    (control / f"go-{phase}").touch()


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """``wait`` for processes on loopback: connection errors are retried too."""
    return wait(predicate, timeout, what, interval, retry=(OSError, httpx.HTTPError))


def sidecar_status(sidecar: Proc) -> dict[str, Any]:
    status: dict[str, Any] = httpx.get(sidecar.url + STATUS, timeout=30).json()
    return status


def stored_points(server: Proc, run_id: str) -> list[tuple[str, int, float]]:
    """Every metric point the server holds for the run, straight from the server."""
    run = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}, timeout=60).json()["run"]
    keys = sorted({m["key"] for m in run["data"].get("metrics") or ()})
    points: list[tuple[str, int, float]] = []
    for key in keys:
        params = {"run_id": run_id, "metric_key": key, "max_results": "25000"}
        while True:
            r = httpx.get(f"{server.url}{API}/metrics/get-history", params=params, timeout=60)
            assert r.status_code == 200, r.text
            page = r.json()
            points += [(key, int(m["step"]), float(m["value"])) for m in page.get("metrics") or ()]
            if not page.get("next_page_token"):
                break
            params["page_token"] = page["next_page_token"]
    return points


def compare(acked: list[tuple[str, int, float]], stored: list[tuple[str, int, float]]) -> dict[str, int]:
    """What a run's acknowledged points and the stored ones say: each trainer logs each
    (key, step) once, so a (key, step) stored twice is a duplicate whatever its timestamp."""
    stored_count = Counter((k, s) for k, s, _ in stored)
    acked_keys = {(k, s): v for k, s, v in acked}
    stored_values = {(k, s): v for k, s, v in stored}
    return {
        "stored": len(stored),
        "duplicated": sum(n - 1 for n in stored_count.values() if n > 1),
        "lost": sum(1 for key in acked_keys if key not in stored_values),
        "wrong_value": sum(1 for key, v in acked_keys.items() if key in stored_values and stored_values[key] != v),
        "unacknowledged_stored": sum(1 for key in stored_values if key not in acked_keys),
    }


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
