"""Model evaluation: task metrics, fairness by group and interpretability, logged to a run.

Owns ``modelship evaluate`` and :func:`evaluate` (as ``mlflow.evaluate`` for classifiers
and regressors). The arithmetic is pure and has its own modules — ``metrics`` (accuracy,
precision/recall/F1, ROC AUC, log loss, calibration; RMSE, MAE, R²), ``fairness``
(fairlearn: per-group metrics, demographic parity, equalized odds), ``importance``
(permutation importance, SHAP when installed) and ``report`` (metric names, the JSON
report); ``plots`` draws PNGs. I/O lives at the edges only: ``data`` reads the data set,
``core`` loads the model through ``modelship.models`` and logs through the one tracking
client.

Must not: talk to Kubernetes, or reach a tracking server but through
``modelship.tracking.client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelship.evaluation.core import EvaluationResult, evaluate

__all__ = ["EvaluationResult", "evaluate"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the pure modules (and their tests) need no model loading.
    if name in __all__:
        from modelship.evaluation import core

        return getattr(core, name)
    raise AttributeError(name)
