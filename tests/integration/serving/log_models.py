"""Log and register a model on a tracking server with the real mlflow client.

``python log_models.py`` with MLFLOW_TRACKING_URI set; prints JSON: the run id, the
registered model name and MLflow's own predictions on a sample.
"""

from __future__ import annotations

import json

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    mlflow.set_experiment("uris")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="wine-uri",
            signature=mlflow.models.infer_signature(X, model.predict(X)),
            # given, so MLflow does not infer them (slow); no input example to validate
            pip_requirements=["scikit-learn", "skops"],
        )
    client = MlflowClient()
    client.set_registered_model_alias("wine-uri", "champion", "1")
    sample = X.iloc[[0, 70, 150]]
    print(
        json.dumps(
            {
                "run_id": run.info.run_id,
                "model_uri": info.model_uri,
                "sample": sample.to_dict(orient="split", index=False),
                "expected": model.predict(sample).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
