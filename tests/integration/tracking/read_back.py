"""Read a training run back through the real mlflow client and print one JSON summary.

Run as ``python read_back.py EXPERIMENT RUN_ID``.
"""

from __future__ import annotations

import json
import sys
import tempfile

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow import MlflowClient


def main() -> None:
    experiment, run_id = sys.argv[1], sys.argv[2]
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs(
        [exp.experiment_id],
        filter_string="metrics.accuracy > 0.5 AND params.solver = 'lbfgs' AND tags.team = 'modelship'",
        order_by=["metrics.accuracy DESC"],
    )
    missed = client.search_runs([exp.experiment_id], filter_string="metrics.accuracy > 1.5")
    run = client.get_run(run_id)
    history = client.get_metric_history(run_id, "loss")
    with tempfile.TemporaryDirectory() as d:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes", dst_path=d)
        with open(f"{local}/notes.txt") as f:
            notes = f.read()
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    X = np.random.default_rng(0).normal(size=(5, 4))
    prediction = [int(p) for p in model.predict(X)]
    logged = client.search_logged_models([exp.experiment_id])
    print(
        json.dumps(
            {
                "found": [r.info.run_id for r in found],
                "missed": [r.info.run_id for r in missed],
                "params": run.data.params,
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
                "status": run.info.status,
                "metrics": run.data.metrics,
                "history": [(m.step, m.value) for m in history],
                "notes": notes,
                "prediction": prediction,
                "logged_models": [
                    (m.name, m.status.to_proto() if hasattr(m.status, "to_proto") else str(m.status)) for m in logged
                ],
                "model_outputs": [o.model_id for o in (run.outputs.model_outputs if run.outputs else [])],
            }
        )
    )


if __name__ == "__main__":
    main()
