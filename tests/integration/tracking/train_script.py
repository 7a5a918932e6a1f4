"""An ordinary MLflow training script: nothing in it knows about Modelship.

Run as ``python train_script.py EXPERIMENT STEPS [PAUSE_FILE]``; MLFLOW_TRACKING_URI says
where to log. With PAUSE_FILE, the script waits at step STEPS//2 until that file is
removed (the fault test stops the server meanwhile). Prints ``RUN_ID=<id>`` at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LogisticRegression


def main() -> None:
    experiment, steps = sys.argv[1], int(sys.argv[2])
    pause_file = sys.argv[3] if len(sys.argv) > 3 else None
    X = np.random.default_rng(0).normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="train") as run:
        C, max_iter = 0.5, 200
        mlflow.log_params({"C": C, "max_iter": max_iter, "solver": "lbfgs"})
        model = LogisticRegression(C=C, max_iter=max_iter).fit(X, y)
        for step in range(steps):
            if pause_file and step == steps // 2:
                print("PAUSED", flush=True)
                while os.path.exists(pause_file):
                    time.sleep(0.05)
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("accuracy", float(model.score(X, y)))
        mlflow.set_tag("team", "modelship")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "notes.txt")
            with open(path, "w") as f:
                f.write("trained on synthetic data\n")
            mlflow.log_artifact(path, artifact_path="notes")
        if mlflow.__version__.startswith("2."):
            mlflow.sklearn.log_model(model, artifact_path="model", input_example=X[:2])
        else:
            mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
    print(f"RUN_ID={run.info.run_id}", flush=True)


if __name__ == "__main__":
    main()
