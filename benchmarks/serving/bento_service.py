"""The BentoML peer: a service around the same fitted pipeline (``model.joblib``), as a
Python team would write it, answering the same bodies as Modelship on the same paths
(``/invocations`` with ``dataframe_split``; the Open Inference Protocol's infer with one
``[N, 13]`` tensor or one input per column). Run by ``bench.py`` in a venv of its own:

    WINE_MODEL=.../model.joblib bentoml serve bento_service:Wine --port 3000
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import numpy as np
import pandas as pd


# access logging off, as in the other servers (each line costs throughput)
@bentoml.service(workers=1, traffic={"timeout": 60}, logging={"access": {"enabled": False}})
class Wine:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["WINE_MODEL"])
        self.columns = list(self.model.feature_names_in_)

    @bentoml.api(route="/invocations")
    def invocations(self, dataframe_split: dict[str, Any]) -> dict[str, Any]:
        df = pd.DataFrame(dataframe_split["data"], columns=dataframe_split.get("columns"))
        return {"predictions": self.model.predict(df[self.columns]).tolist()}

    @bentoml.api(route="/v2/models/wine/infer")
    def infer(
        self, inputs: list[dict[str, Any]], parameters: dict[str, Any] | None = None, id: str | None = None
    ) -> dict[str, Any]:
        if len(inputs) == 1:  # one [N, 13] tensor, columns in training order
            t = inputs[0]
            df = pd.DataFrame(np.asarray(t["data"], dtype=np.float64).reshape(t["shape"]), columns=self.columns)
        else:  # one input per column (the pandas codec)
            df = pd.DataFrame({t["name"]: np.asarray(t["data"], dtype=np.float64).reshape(-1) for t in inputs})
        pred = self.model.predict(df[self.columns])
        out = {
            "model_name": "wine",
            "outputs": [{"name": "predict", "shape": [len(pred)], "datatype": "INT64", "data": pred.tolist()}],
        }
        if id is not None:
            out["id"] = id
        return out
