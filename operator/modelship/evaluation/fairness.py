"""Fairness by group, with fairlearn: per-group metrics and the gaps between groups.

Pure: labels, predictions and one sensitive column in, numbers out. For each sensitive
column on its own:

* classifiers: per group ``count``, ``accuracy``, ``selection_rate`` (share predicted
  positive), ``true_positive_rate`` and ``false_positive_rate``; and, for a binary task,
  ``demographic_parity_difference`` (largest minus smallest selection rate),
  ``demographic_parity_ratio`` (smallest over largest), ``equalized_odds_difference`` (the
  larger of the TPR and FPR gaps) and ``accuracy_difference``. A multiclass task gets the
  per-group ``count`` and ``accuracy`` and ``accuracy_difference`` only: demographic parity
  and equalized odds are defined for a positive class.
* regressors: per group ``count``, ``rmse`` and ``mae``, and ``rmse_difference``,
  ``mae_difference``.

A ratio whose largest rate is 0 is NaN (fairlearn's answer), logged as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error


@dataclass(frozen=True)
class GroupFairness:
    column: str
    by_group: dict[str, dict[str, float]]
    """Group value (as text) -> metric -> value."""
    summary: dict[str, float]
    """The between-group figures: demographic_parity_difference, ..."""

    def as_dict(self) -> dict[str, Any]:
        return {"by_group": self.by_group, **self.summary}


def _rmse(y_true: Any, y_pred: Any) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)) ** 2)))


def classifier_fairness(
    column: str,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    *,
    pos_label: Any | None,
) -> GroupFairness:
    """``pos_label`` names the positive class of a binary task; None for multiclass."""
    yt, yp, g = np.asarray(y_true), np.asarray(y_pred), _groups(groups)
    if pos_label is None:
        frame = MetricFrame(
            metrics={"count": count, "accuracy": accuracy_score}, y_true=yt, y_pred=yp, sensitive_features=g
        )
        return GroupFairness(column, _by_group(frame), {"accuracy_difference": _difference(frame, "accuracy")})
    bt, bp = (yt == pos_label).astype(int), (yp == pos_label).astype(int)
    with warnings.catch_warnings():
        # A group with no positives (or negatives) has an undefined rate: fairlearn warns, we report 0 as sklearn.
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics={
                "count": count,
                "accuracy": accuracy_score,
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            },
            y_true=bt,
            y_pred=bp,
            sensitive_features=g,
        )
        summary = {
            "demographic_parity_difference": float(demographic_parity_difference(bt, bp, sensitive_features=g)),
            "demographic_parity_ratio": float(demographic_parity_ratio(bt, bp, sensitive_features=g)),
            "equalized_odds_difference": float(equalized_odds_difference(bt, bp, sensitive_features=g)),
            "accuracy_difference": _difference(frame, "accuracy"),
        }
    return GroupFairness(column, _by_group(frame), summary)


def regressor_fairness(
    column: str,
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
) -> GroupFairness:
    yt, yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    frame = MetricFrame(
        metrics={"count": count, "rmse": _rmse, "mae": mean_absolute_error},
        y_true=yt,
        y_pred=yp,
        sensitive_features=_groups(groups),
    )
    summary = {"rmse_difference": _difference(frame, "rmse"), "mae_difference": _difference(frame, "mae")}
    return GroupFairness(column, _by_group(frame), summary)


def _groups(groups: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Group values as text: one spelling per group in the report and in metric names."""
    values = pd.Series(np.asarray(groups, dtype=object))
    if values.isna().any():
        values = values.where(values.notna(), "missing")
    out: np.ndarray = values.astype(str).to_numpy()
    return out


def _by_group(frame: MetricFrame) -> dict[str, dict[str, float]]:
    table = frame.by_group
    return {str(group): {str(k): float(v) for k, v in row.items()} for group, row in table.iterrows()}


def _difference(frame: MetricFrame, metric: str) -> float:
    return float(frame.difference(method="between_groups")[metric])
