"""An MLflow 2.x client, in a virtual environment of its own, runs the same training script
(2.x records its model with ``runs/log-model``, not with logged models)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import httpx
import numpy as np
import pytest
from tests.mlflow2 import mlflow2_python

from .conftest import TRAIN_SCRIPT, Proc, finish_script, run_id_of

pytestmark = pytest.mark.integration


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
