"""Interpretability: permutation importance per feature, and SHAP when it is installed.

Pure but for the model it is handed: ``predict`` is any function from a DataFrame of the
features to predictions (the loaded model's, with its signature enforced). Permutation
importance is scikit-learn's (``sklearn.inspection.permutation_importance``): how much the
score drops when one column is shuffled, ``repeats`` times, seeded. The score is accuracy
for a classifier and R² for a regressor, so a positive importance means the model needs
the feature. At most ``max_rows`` rows are used (a seeded sample): the cost is
``features × repeats`` predictions of that many rows.

SHAP (``shap``) is optional and not a dependency: :func:`shap_importance` returns None
when it is not importable, else the mean absolute SHAP value per feature of a
model-agnostic explainer over a small background sample.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, r2_score

Predict = Callable[[pd.DataFrame], Any]
MAX_ROWS = 2000
REPEATS = 5
SEED = 0


@dataclass(frozen=True)
class Importance:
    feature: str
    mean: float
    std: float


class _Scored:
    """What ``permutation_importance`` needs of an estimator: ``predict`` (it never fits)."""

    def __init__(self, predict: Predict) -> None:
        self.predict_fn = predict

    def fit(self, *_: Any) -> _Scored:  # pragma: no cover - never called; sklearn's API shape
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predict_fn(x)).reshape(len(x), -1)[:, 0] if len(x) else np.asarray([])


def sample(frame: pd.DataFrame, target: pd.Series, max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``max_rows`` rows, a seeded sample, in their original order."""
    if len(frame) <= max_rows:
        return frame, target
    index = np.sort(np.random.default_rng(SEED).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[index], target.iloc[index]


def permutation_importances(
    predict: Predict,
    features: pd.DataFrame,
    target: pd.Series,
    *,
    model_type: str,
    repeats: int = REPEATS,
    max_rows: int = MAX_ROWS,
) -> list[Importance]:
    """Each feature's mean and standard deviation of the score drop, most important first."""
    x, y = sample(features, target, max_rows)
    metric = accuracy_score if model_type == "classifier" else r2_score

    def score(estimator: _Scored, xs: pd.DataFrame, ys: Any) -> float:
        return float(metric(ys, estimator.predict(xs)))

    result = permutation_importance(_Scored(predict), x, y, scoring=score, n_repeats=repeats, random_state=SEED)
    found = [
        Importance(str(name), float(m), float(s))
        for name, m, s in zip(x.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(found, key=lambda i: (-i.mean, i.feature))


def shap_available() -> bool:
    return importlib.util.find_spec("shap") is not None


def shap_importance(
    predict: Predict, features: pd.DataFrame, *, background: int = 50, explained: int = 200
) -> dict[str, float] | None:
    """Mean |SHAP value| per feature (permutation explainer), or None without ``shap``."""
    if not shap_available():
        return None
    import shap

    x = features.sample(n=min(explained, len(features)), random_state=SEED)
    masker = features.sample(n=min(background, len(features)), random_state=SEED)

    def f(values: Any) -> np.ndarray:
        frame = pd.DataFrame(values, columns=features.columns).astype(features.dtypes.to_dict())
        return np.asarray(predict(frame), dtype=float).reshape(len(frame), -1)[:, 0]

    explanation = shap.Explainer(f, masker, seed=SEED)(x)
    values = np.abs(np.asarray(explanation.values, dtype=float))
    return {str(c): float(v) for c, v in zip(features.columns, values.mean(axis=0), strict=True)}
