"""An MLflow 2.x client, in a virtual environment of its own, runs the same training script
(2.x records its model with ``runs/log-model``, not with logged models)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import TRAIN_SCRIPT, Proc, finish_script, run_id_of

pytestmark = pytest.mark.integration

MLFLOW2 = "2.22.1"


def mlflow2_python() -> Path:
    """A venv with mlflow-skinny 2.x and scikit-learn, built once into the cache directory
    (the same cache as the test bed: $MODELSHIP_CACHE or ~/.cache/modelship)."""
    cache = Path(
        os.environ.get("MODELSHIP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelship"
    )
    venv = cache / f"mlflow-{MLFLOW2}-venv"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
    cache.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"mlflow-skinny=={MLFLOW2}", "scikit-learn", "pandas", "numpy"],
        check=True,
        capture_output=True,
        timeout=1500,
    )
    (venv / ".complete").touch()
    return python


def test_mlflow_2x_client(tracking_server: Proc, tracking_sidecar: Proc) -> None:
    import mlflow
    import mlflow.pyfunc

    python = mlflow2_python()
    experiment = f"mlflow2-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_sidecar.url, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [str(python), str(TRAIN_SCRIPT), experiment, "12"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    run_id = run_id_of(finish_script(proc))
    run = httpx.get(f"{tracking_sidecar.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=60).json()[
        "run"
    ]
    assert run["info"]["status"] == "FINISHED"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    history = json.loads(tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model"]
    assert "sklearn" in history[0]["flavors"]
    mlflow.set_tracking_uri(tracking_server.url)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert len(model.predict(np.zeros((3, 4)))) == 3
