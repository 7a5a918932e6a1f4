"""Save models with the real mlflow package and record what MLflow predicts on them.

Run as a script (``python make_models.py OUT``) so the user classes live in ``__main__``
and are pickled by value, as a user's training script would do. Writes OUT/expected.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class Scaler(mlflow.pyfunc.PythonModel):
    """Multiplies its input by a factor set in load_context and a ``k`` param."""

    def load_context(self, context):
        self.factor = 2

    def predict(self, context, model_input, params=None):
        k = (params or {}).get("k", 1)
        if (model_input["a"] < 0).any():
            raise ValueError("negative a is not allowed")
        return model_input * self.factor * k


class Slow(mlflow.pyfunc.PythonModel):
    """Sleeps ``seconds`` after touching a marker file (for the graceful-drain test)."""

    def predict(self, context, model_input, params=None):
        marker = Path(str(model_input["marker"].iloc[0]))
        marker.write_text("started")
        time.sleep(float(model_input["seconds"].iloc[0]))
        return model_input["seconds"]


# Given, so MLflow does not infer them by importing the model in a subprocess (slow).
REQS = ["mlflow", "pandas", "cloudpickle"]


def main(out: Path) -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    sig = mlflow.models.infer_signature(X, model.predict(X))
    mlflow.sklearn.save_model(model, out / "wine", signature=sig, input_example=X.head(3))
    mlflow.sklearn.save_model(
        model,
        out / "wine_proba",
        signature=mlflow.models.infer_signature(X, model.predict_proba(X)),
        input_example=X.head(3),
        serialization_format="cloudpickle",
        pyfunc_predict_fn="predict_proba",
    )
    ex = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    mlflow.pyfunc.save_model(
        out / "scaler",
        python_model=Scaler(),
        signature=mlflow.models.infer_signature(ex, params={"k": 1}),
        input_example=ex,
        pip_requirements=REQS,
    )
    slow_ex = pd.DataFrame({"seconds": [0.0], "marker": ["/dev/null"]})
    mlflow.pyfunc.save_model(
        out / "slow",
        python_model=Slow(),
        signature=mlflow.models.infer_signature(slow_ex),
        pip_requirements=REQS,
    )

    expected = {}
    sample = X.iloc[[0, 5, 60, 61, 130, 177]]
    for name in ("wine", "wine_proba"):
        pred = mlflow.pyfunc.load_model(str(out / name)).predict(sample)
        expected[name] = np.asarray(pred).tolist()
    scaler = mlflow.pyfunc.load_model(str(out / "scaler"))
    expected["scaler"] = scaler.predict(ex).to_dict(orient="records")
    expected["scaler_k3"] = scaler.predict(ex, params={"k": 3}).to_dict(orient="records")
    expected["sample"] = sample.to_dict(orient="split", index=False)
    expected["mlflow_version"] = mlflow.__version__
    (out / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
