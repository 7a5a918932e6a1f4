"""The real ``mlflow`` client runs an ordinary training script against the server and
against the sidecar, then reads everything back through the mlflow client."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import TRAIN_SCRIPT, Proc, finish_script, run_id_of, start_script

pytestmark = pytest.mark.integration


def read_back(tracking_uri: str, experiment: str, run_id: str) -> None:
    import mlflow
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None

    found = client.search_runs(
        [exp.experiment_id],
        filter_string="metrics.accuracy > 0.5 AND params.solver = 'lbfgs' AND tags.team = 'modelship'",
        order_by=["metrics.accuracy DESC"],
    )
    assert [r.info.run_id for r in found] == [run_id]
    assert client.search_runs([exp.experiment_id], filter_string="metrics.accuracy > 1.5") == []
    assert client.search_runs([exp.experiment_id], filter_string="params.solver = 'sgd'") == []

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time
    assert run.data.params == {"C": "0.5", "max_iter": "200", "solver": "lbfgs"}
    assert run.data.tags["team"] == "modelship"
    assert run.data.tags["mlflow.runName"] == "train"
    assert run.data.metrics["loss"] == pytest.approx(1.0 / 30)
    assert run.data.metrics["accuracy"] > 0.9

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(30)]

    with tempfile.TemporaryDirectory() as d:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes", dst_path=d)
        assert (Path(local) / "notes.txt").read_text() == "trained on synthetic data\n"

    models = client.search_logged_models([exp.experiment_id])
    assert [m.name for m in models] == ["model"]
    assert str(models[0].status).endswith("READY")
    assert [o.model_id for o in run.outputs.model_outputs] == [models[0].model_id]

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    X = np.random.default_rng(0).normal(size=(50, 4))
    predicted = model.predict(X)
    assert list(predicted) == list((X[:, 0] + X[:, 1] > 0).astype(int)) or (
        np.mean(predicted == (X[:, 0] + X[:, 1] > 0)) > 0.9
    )


def test_training_script_logs_and_reads_back(tracking_server: Proc, tracking_sidecar: Proc) -> None:
    # The same script twice at once: straight to the server, and through the sidecar.
    suffix = uuid.uuid4().hex[:6]
    targets = {"server": tracking_server.url, "sidecar": tracking_sidecar.url}
    scripts = {name: start_script(TRAIN_SCRIPT, uri, f"train-{name}-{suffix}", "30") for name, uri in targets.items()}
    run_ids = {name: run_id_of(finish_script(proc)) for name, proc in scripts.items()}
    # A read through the sidecar waits until its earlier writes reached the server.
    r = httpx.get(f"{tracking_sidecar.url}/api/2.0/mlflow/runs/get", params={"run_id": run_ids["sidecar"]}, timeout=60)
    assert r.json()["run"]["info"]["status"] == "FINISHED"
    # Then everything is read back from the server, for both runs.
    for name, run_id in run_ids.items():
        read_back(tracking_server.url, f"train-{name}-{suffix}", run_id)
