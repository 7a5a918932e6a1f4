"""Train a logistic regression on synthetic credit data with a sensitive column, and track it.

Plain MLflow client code. Each applicant has two numeric features (``income``, ``debt``),
a sensitive ``sex`` (female / male, half each) and its one-hot copy ``sex_male`` that the
model is given. The true label depends on income and debt only. The training labels are
the true ones, but for ``--bias`` of the positive women, turned negative: the model learns
that bias, and ``modelship evaluate`` on the held-out split (true labels) shows it as a
demographic parity difference. Logs the model at ``model`` and the held-out split at
``data/test.csv`` (what ``spec.evaluate.dataArtifact`` names).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

SEED = 7
FEATURES = ["income", "debt", "sex_male"]


def make_data(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    sex = rng.choice(["female", "male"], size=rows)
    income = rng.normal(size=rows)
    debt = rng.normal(size=rows)
    label = ((income - 0.5 * debt + rng.normal(scale=0.5, size=rows)) > 0).astype(int)
    return pd.DataFrame(
        {"income": income, "debt": debt, "sex_male": (sex == "male").astype(int), "sex": sex, "approved": label}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bias", type=float, default=0.0, help="share of positive women labelled negative")
    parser.add_argument("--rows", type=int, default=2000, help="applicants in all (70 %% train)")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    data = make_data(args.rows, rng)
    cut = int(0.7 * len(data))
    train, test = data.iloc[:cut].copy(), data.iloc[cut:]
    flip = (train["sex"] == "female") & (train["approved"] == 1) & (rng.random(len(train)) < args.bias)
    train.loc[flip, "approved"] = 0
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["approved"])
    with mlflow.start_run():
        mlflow.log_params({"bias": args.bias, "rows": args.rows})
        accuracy = accuracy_score(test["approved"], model.predict(test[FEATURES]))
        mlflow.log_metric("accuracy", accuracy)
        print(f"accuracy on the held-out split: {accuracy:.4f}")
        mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            input_example=test[FEATURES].head(5),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"],
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "test.csv")
            test.to_csv(path, index=False)
            mlflow.log_artifact(path, artifact_path="data")
        print(f"RUN_ID={mlflow.active_run().info.run_id}")


if __name__ == "__main__":
    main()
