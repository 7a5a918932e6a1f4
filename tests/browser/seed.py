"""Runs logged by the real ``mlflow`` client for the browser tests and the screenshots.

``seed(url)`` makes one experiment of ``RUNS`` runs with params, metric histories, tags,
a dataset input and artifacts of every kind the preview handles, including hostile ones:
a run named ``<script>alert(1)</script>``, an HTML and an SVG artifact with scripts.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXPERIMENT = "ui-demo"
RUNS = 12
STEPS = 120
HOSTILE = "<script>alert(1)</script>"
MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.2
  sklearn:
    serialization_format: skops
    sklearn_version: 1.5.0
mlflow_version: 3.17.2
model_uuid: 6f1b1c5a3d8e4f6a9b0c1d2e3f4a5b6c
signature:
  inputs: '[{"type": "double", "name": "sepal_length", "required": true}, {"type": "double",
    "name": "petal_width", "required": true}]'
  outputs: '[{"type": "long", "name": "species", "required": true}]'
"""


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """run id -> run name"""

    @property
    def hostile_run(self) -> str:
        return next(i for i, n in self.names.items() if n == HOSTILE)


def seed(url: str, experiment: str = EXPERIMENT) -> Seeded:
    import mlflow
    import numpy as np
    from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag

    client = mlflow.MlflowClient(url)
    eid = client.create_experiment(experiment, tags={"mlflow.note.content": "Runs for the web UI's tests"})
    out = Seeded(eid)
    for i in range(RUNS):
        name = HOSTILE if i == 3 else f"run-{i:02d}"
        lr = [0.001, 0.01, 0.1][i % 3]
        depth = 2 + i % 4
        t0 = 1_700_000_000_000 + i * 1000
        run = client.create_run(
            eid, run_name=name, start_time=t0, tags={"team": "vision" if i % 2 else "nlp", "note": HOSTILE}
        )
        rid = run.info.run_id
        metrics = []
        for s in range(STEPS):
            loss = 2.0 * math.exp(-lr * 30 * s / STEPS * (1 + depth / 4)) + 0.05 * i
            metrics.append(Metric("loss", loss, t0 + s * 500, s))
            metrics.append(Metric("accuracy", 1 - loss / 3, t0 + s * 500, s))
        if i == 5:  # one spike that the reduced history must keep
            metrics.append(Metric("loss", 40.0, t0 + 60 * 500 + 1, 60))
        params = [Param("lr", str(lr)), Param("depth", str(depth)), Param("model", "tree" if i % 2 else "linear")]
        for start in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[start : start + 1000], params=params if start == 0 else [])
        client.log_batch(rid, tags=[RunTag("index", str(i))])
        if i < 3:
            dataset = mlflow.data.from_numpy(np.arange(12, dtype=float).reshape(6, 2), name="iris-train")
            context = [InputTag("mlflow.data.context", "training")]
            client.log_inputs(rid, [DatasetInput(dataset._to_mlflow_entity(), tags=context)])
            client.log_text(rid, "epoch 1 done\nepoch 2 done\n", "logs/train.txt")
            client.log_text(rid, json.dumps({"lr": lr, "layers": [4, 8, 4]}), "config.json")
            client.log_text(rid, "lr: 0.01\nbatch: 32\n", "config.yaml")
            client.log_text(rid, MLMODEL, "model/MLmodel")
            client.log_text(rid, f"<html><body>{HOSTILE}<img src=x onerror=alert(2)></body></html>", "report.html")
            client.log_text(rid, '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(3)</script></svg>', "plot.svg")
            image = np.zeros((32, 48, 3), dtype=np.uint8)
            image[:, :24] = (220, 40, 40)
            image[:, 24:] = (40, 90, 220)
            client.log_image(rid, image, "images/sample.png")
        client.set_terminated(rid, end_time=t0 + STEPS * 500)
        out.run_ids.append(rid)
        out.names[rid] = name
    return out
