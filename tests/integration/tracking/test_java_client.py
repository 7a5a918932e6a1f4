"""MLflow's Java client (``org.mlflow:mlflow-client``, from Maven Central) against the server.

``tests/java`` is a Maven project whose JUnit test creates an experiment and a run, logs
params, metrics with steps, tags and a batch, searches and reads the history back; here a
server of its own is started, ``mvn test`` runs against it, and the Python client then reads
what the Java client wrote. The Maven cache (``~/.m2``, outside the repository) is filled
by ``scripts/setup.sh``; with it the build runs offline (``-o``). The build directory is
a temporary one, so nothing is written into the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import Launcher

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2] / "java"
MLFLOW_JAVA = "2.17.2"


def test_mlflow_java_client_logs_searches_and_reads_history(launcher: Launcher, tmp_path: Path) -> None:
    mvn = shutil.which("mvn")
    assert mvn, "Maven is not installed: run scripts/setup.sh (Debian package 'maven')"
    server = launcher.server(name="java")
    experiment = f"java-{uuid.uuid4().hex[:8]}"
    # Offline once scripts/setup.sh has filled the cache; the first run anywhere else fetches.
    cached = (Path.home() / ".m2" / "repository" / "org" / "mlflow" / "mlflow-client" / MLFLOW_JAVA).is_dir()
    command = [mvn, "-q", "-B", *(["-o"] if cached else []), f"-Dbuild.dir={tmp_path / 'build'}", "test"]
    done = subprocess.run(
        command,
        cwd=PROJECT,
        env=dict(os.environ, MLFLOW_TRACKING_URI=server.url, MODELSHIP_JAVA_EXPERIMENT=experiment),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    report = (tmp_path / "build" / "surefire-reports" / "TEST-io.modelship.compat.MlflowJavaClientTest.xml").read_text()
    counts = dict(re.findall(r'\b(tests|errors|skipped|failures)="(\d+)"', report.split(">", 2)[1]))
    assert counts == {"tests": "1", "errors": "0", "skipped": "0", "failures": "0"}, counts

    # What the Java client wrote, read with the Python client.
    from mlflow import MlflowClient

    client = MlflowClient(server.url)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"alpha": "0.5", "layers": "3"}
    assert run.data.tags["team"] == "modelship" and run.data.tags["stage"] == "batch"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2, 3, 4]
