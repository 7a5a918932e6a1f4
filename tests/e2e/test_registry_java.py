"""MLflow's Java client reads a model registered through the Python client (registry writes).

The model is registered, promoted and archived with the real Python ``mlflow`` client on
the session tracking server (cluster access, the operator running); then MLflow's Java
client (``org.mlflow:mlflow-client`` 2.17.2, tests/java) reads it back: ``mvn -o test``
of the one class ``MlflowJavaRegistryIT`` in a copy of tests/java (its build directory
stays out of the repository).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_registry import make_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registered(tracking_server: str, operator, monkeypatch: pytest.MonkeyPatch) -> Any:
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(tracking_server)
    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    name = f"java-{uuid.uuid4().hex[:6]}"
    run_id = make_run(tracking_server, 0.93)
    client.create_registered_model(name, description="Registered through mlflow, read from Java.")
    for _ in range(2):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    yield name, run_id
    client.delete_registered_model(name)


def test_the_java_client_reads_a_registered_model(registered: Any, tracking_server: str, tmp_path: Path) -> None:
    name, run_id = registered
    project = tmp_path / "java"
    shutil.copytree(REPO / "tests" / "java", project)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_server,
        "MODELSHIP_REGISTERED_MODEL": name,
        "MODELSHIP_RUN_ID": run_id,
    }
    out = subprocess.run(
        ["mvn", "-o", "-B", "test", "-Dtest=MlflowJavaRegistryIT", "-Dsurefire.failIfNoSpecifiedTests=true"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Tests run: 1, Failures: 0, Errors: 0, Skipped: 0" in out.stdout, out.stdout[-3000:]
