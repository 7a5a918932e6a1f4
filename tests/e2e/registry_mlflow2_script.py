"""Run by the mlflow 2.x client's own Python (tests/e2e/test_registry_writes.py): register,
alias, promote and load a model through the registry write API, as a 2.x training script does.

argv: model name. Prints the final facts as one JSON line for the test to check.
"""

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

name = sys.argv[1]
X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.set_experiment("registry-mlflow2-e2e")
with mlflow.start_run() as run:
    mlflow.log_metric("accuracy", 0.96)
    mlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(X, y), "model", registered_model_name=name)
client = MlflowClient()
client.set_registered_model_alias(name, "champion", "1")
staged = client.transition_model_version_stage(name, "1", "Staging")
by_alias = client.get_model_version_by_alias(name, "champion")
predicted = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(X.head(2))
print(
    json.dumps(
        {
            "run_id": run.info.run_id,
            "version": by_alias.version,
            "stage": staged.current_stage,
            "predicted": [int(p) for p in predicted],
            "mlflow": mlflow.__version__,
        }
    )
)
