"""Task metrics from labels and predictions: classifiers and regressors.

Pure: arrays in, plain numbers and lists out (JSON-ready). Names are the bare ones
(``accuracy``, ``roc_auc``...); ``report`` adds the ``eval.`` prefix.

Classifiers: ``accuracy``; ``precision``, ``recall`` and ``f1`` of the positive class for a
binary task (``pos_label``: the greater of the two labels unless told), their macro average
over the classes for a multiclass one; ``roc_auc`` and ``log_loss`` when class
probabilities are given (one-vs-rest macro ROC AUC for multiclass); for a binary task also
``brier_score``, ``calibration_error`` (expected calibration error over equal-width bins)
and the reliability curve. Regressors: ``rmse``, ``mse``, ``mae``, ``r2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """The reliability curve of a binary classifier: per non-empty bin of the predicted
    probability of the positive class, its mean prediction, the observed positive rate and
    the count."""

    mean_predicted: list[float]
    fraction_positive: list[float]
    counts: list[int]
    brier_score: float
    calibration_error: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean_predicted": self.mean_predicted,
            "fraction_positive": self.fraction_positive,
            "counts": self.counts,
            "brier_score": self.brier_score,
            "calibration_error": self.calibration_error,
        }


@dataclass(frozen=True)
class ClassifierResult:
    labels: list[Any]
    """The classes, in the confusion matrix's order."""
    pos_label: Any | None
    """The positive class of a binary task; None for multiclass."""
    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    """Rows: true class; columns: predicted class; both in ``labels`` order."""
    calibration: Calibration | None = None
    average: str = field(default="binary")
    """How precision, recall and F1 were averaged: binary or macro."""


def class_labels(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray) -> list[Any]:
    """Every label seen in either array, sorted (numbers numerically, else as text)."""
    seen = set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist())
    try:
        return sorted(seen)
    except TypeError:
        return sorted(seen, key=str)


def classifier_metrics(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    *,
    proba: np.ndarray | None = None,
    proba_classes: Sequence[Any] | None = None,
    pos_label: Any | None = None,
    bins: int = CALIBRATION_BINS,
) -> ClassifierResult:
    """The metrics of a classifier.

    ``proba`` has one column per class of ``proba_classes`` (a model's ``classes_``);
    without it, ROC AUC, log loss and calibration are left out.
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if len(yt) != len(yp) or len(yt) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of one length, got {len(yt)} and {len(yp)}")
    labels = class_labels(yt, yp) if proba_classes is None else _union(proba_classes, class_labels(yt, yp))
    binary = len(labels) == 2
    if pos_label is not None and pos_label not in labels:
        raise ValueError(f"pos_label {pos_label!r} is none of the labels {labels}")
    positive = (pos_label if pos_label is not None else labels[-1]) if binary else None
    out: dict[str, float] = {"accuracy": float(skm.accuracy_score(yt, yp))}
    average = "binary" if binary else "macro"
    kwargs: dict[str, Any] = {"average": average, "zero_division": 0, "labels": labels}
    if binary:
        kwargs = {"average": "binary", "zero_division": 0, "pos_label": positive}
    out["precision"] = float(skm.precision_score(yt, yp, **kwargs))
    out["recall"] = float(skm.recall_score(yt, yp, **kwargs))
    out["f1"] = float(skm.f1_score(yt, yp, **kwargs))
    matrix = skm.confusion_matrix(yt, yp, labels=labels)
    if binary:
        neg = labels[0] if positive == labels[1] else labels[1]
        i_pos, i_neg = labels.index(positive), labels.index(neg)
        out["true_positives"] = float(matrix[i_pos, i_pos])
        out["false_positives"] = float(matrix[i_neg, i_pos])
        out["true_negatives"] = float(matrix[i_neg, i_neg])
        out["false_negatives"] = float(matrix[i_pos, i_neg])
    calibration = None
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        classes = list(proba_classes) if proba_classes is not None else labels
        if p.ndim != 2 or p.shape != (len(yt), len(classes)):
            raise ValueError(f"proba must have shape ({len(yt)}, {len(classes)}), got {list(p.shape)}")
        present = set(yt.tolist())
        if binary and len(classes) == 2:
            score = p[:, classes.index(positive)]
            truth = (yt == positive).astype(int)
            if len(present) == 2:
                out["roc_auc"] = float(skm.roc_auc_score(truth, score))
            calibration = calibrate(truth, score, bins)
            out["brier_score"] = calibration.brier_score
            out["calibration_error"] = calibration.calibration_error
        elif len(present) == len(classes) and len(classes) > 2:
            out["roc_auc"] = float(skm.roc_auc_score(yt, p, multi_class="ovr", average="macro", labels=classes))
        out["log_loss"] = float(skm.log_loss(yt, np.clip(p, 1e-15, 1.0), labels=classes))
    return ClassifierResult(
        labels=labels,
        pos_label=positive,
        metrics=out,
        confusion_matrix=matrix.astype(int).tolist(),
        calibration=calibration,
        average=average,
    )


def calibrate(truth: np.ndarray, score: np.ndarray, bins: int = CALIBRATION_BINS) -> Calibration:
    """Brier score and the reliability curve over ``bins`` equal-width bins of [0, 1]
    (a score of exactly 1 falls in the last bin); the expected calibration error is the
    count-weighted mean gap between a bin's mean prediction and its positive rate."""
    t, s = np.asarray(truth, dtype=float), np.asarray(score, dtype=float)
    index = np.minimum((s * bins).astype(int), bins - 1)
    mean_pred: list[float] = []
    frac_pos: list[float] = []
    counts: list[int] = []
    gap = 0.0
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        if n == 0:
            continue
        mp, fp = float(s[mask].mean()), float(t[mask].mean())
        mean_pred.append(mp)
        frac_pos.append(fp)
        counts.append(n)
        gap += n * abs(mp - fp)
    return Calibration(
        mean_predicted=mean_pred,
        fraction_positive=frac_pos,
        counts=counts,
        brier_score=float(np.mean((s - t) ** 2)),
        calibration_error=gap / len(t),
    )


def regressor_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> dict[str, float]:
    yt, yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if len(yt) != len(yp) or len(yt) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of one length, got {len(yt)} and {len(yp)}")
    mse = float(np.mean((yt - yp) ** 2))
    out = {"rmse": mse**0.5, "mse": mse, "mae": float(np.mean(np.abs(yt - yp)))}
    # R² is undefined for a constant target (sklearn says 0 or 1 with a warning): leave it out.
    if len(yt) > 1 and float(np.var(yt)) > 0:
        out["r2"] = float(skm.r2_score(yt, yp))
    return out


def _union(first: Sequence[Any], then: Sequence[Any]) -> list[Any]:
    out = list(first)
    out += [x for x in then if x not in out]
    return out
