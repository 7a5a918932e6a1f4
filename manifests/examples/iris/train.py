"""Train a logistic regression on the iris data that scikit-learn ships, and track it.

Plain MLflow client code: run by `mlflow run`, `modelship run` or an Experiment's trial,
it logs into the run named by MLFLOW_RUN_ID (mlflow.start_run() picks it up); run by hand,
it starts a new run. Training goes in STEPS chunks of max_iter / STEPS iterations with
warm_start, and logs `accuracy` and `log_loss` on the held-out split after each chunk, so
early stopping has a curve to look at. The last step's `accuracy` is the final one.
"""

from __future__ import annotations

import argparse
import math
import warnings

import mlflow
import mlflow.sklearn
import pandas
import sklearn
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

STEPS = 10
SEED = 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--solver", default="lbfgs", help="lbfgs, newton-cg, sag or saga")
    parser.add_argument("--max-iter", type=int, default=200, help="iterations in all")
    args = parser.parse_args()

    features, target = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, stratify=target, random_state=SEED
    )
    scaler = StandardScaler().fit(x_train)
    train_scaled, test_scaled = scaler.transform(x_train), scaler.transform(x_test)
    chunk = max(1, math.ceil(args.max_iter / STEPS))
    classifier = LogisticRegression(C=args.C, solver=args.solver, max_iter=chunk, warm_start=True, random_state=SEED)

    with mlflow.start_run():
        # Same text as `modelship run` logs for these values, so the two never disagree.
        mlflow.log_params({"C": args.C, "solver": args.solver, "max_iter": args.max_iter})
        mlflow.log_params({"test_size": 0.3, "steps": STEPS})
        accuracy = 0.0
        for step in range(1, STEPS + 1):
            with warnings.catch_warnings():
                # Each chunk stops before convergence on purpose.
                warnings.simplefilter("ignore", ConvergenceWarning)
                classifier.fit(train_scaled, y_train)
            accuracy = accuracy_score(y_test, classifier.predict(test_scaled))
            mlflow.log_metrics(
                {
                    "accuracy": accuracy,
                    "log_loss": log_loss(y_test, classifier.predict_proba(test_scaled)),
                    "train_accuracy": accuracy_score(y_train, classifier.predict(train_scaled)),
                },
                step=step,
            )
        print(f"accuracy on the held-out split: {accuracy:.4f}")

        model = Pipeline([("scale", scaler), ("classifier", classifier)])
        # Requirements named here rather than inferred: inference re-imports the model in
        # a subprocess, which costs more than the whole training. skops, not (cloud)pickle:
        # a model server loads it without running code of the model's author, so it needs
        # no --allow-pickle.
        mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            input_example=x_test.head(5),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"pandas=={pandas.__version__}"],
        )


if __name__ == "__main__":
    main()
