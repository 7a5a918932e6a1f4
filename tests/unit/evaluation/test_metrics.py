"""The pure arithmetic of ``modelship evaluate``, against values worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from modelship.evaluation import metrics as m

# y_true, y_pred, pos_label, {metric: value} -- each value counted by hand in the comment.
CLASSIFIER_CASES: list[tuple[str, list[Any], list[Any], Any, dict[str, float]]] = [
    (
        # TP 3 (0, 2, 7), FN 1 (1), FP 1 (4), TN 3 (3, 5, 6)
        "binary 0/1",
        [1, 1, 1, 0, 0, 0, 0, 1],
        [1, 0, 1, 0, 1, 0, 0, 1],
        None,
        {
            "accuracy": 6 / 8,
            "precision": 3 / 4,
            "recall": 3 / 4,
            "f1": 3 / 4,
            "true_positives": 3,
            "false_positives": 1,
            "true_negatives": 3,
            "false_negatives": 1,
        },
    ),
    (
        # positive "yes" (the greater label): TP 1, FP 1, TN 2, FN 0
        "binary text, greater label positive",
        ["yes", "no", "no", "no"],
        ["yes", "yes", "no", "no"],
        None,
        {"accuracy": 3 / 4, "precision": 1 / 2, "recall": 1.0, "f1": 2 / 3, "false_positives": 1},
    ),
    (
        # positive "no": TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 0.8
        "binary text, pos_label given",
        ["yes", "no", "no", "no"],
        ["yes", "yes", "no", "no"],
        "no",
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "true_positives": 2, "false_negatives": 1},
    ),
    (
        # per class P/R/F1: 0: 1/2, 1/2, 1/2; 1: 2/3, 1, 4/5; 2: 1, 1/2, 2/3 -> macro averages
        "multiclass macro",
        [0, 0, 1, 1, 2, 2],
        [0, 1, 1, 1, 2, 0],
        None,
        {"accuracy": 4 / 6, "precision": 13 / 18, "recall": 2 / 3, "f1": 59 / 90},
    ),
]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "pos_label", "expected"),
    [c[1:] for c in CLASSIFIER_CASES],
    ids=[c[0] for c in CLASSIFIER_CASES],
)
def test_classifier_metrics(y_true: list[Any], y_pred: list[Any], pos_label: Any, expected: dict[str, float]) -> None:
    got = m.classifier_metrics(y_true, y_pred, pos_label=pos_label).metrics
    for name, value in expected.items():
        assert got[name] == pytest.approx(value), name
    assert "roc_auc" not in got and "log_loss" not in got  # no probabilities given


def test_multiclass_confusion_matrix_rows_true_columns_predicted() -> None:
    result = m.classifier_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    assert result.labels == [0, 1, 2]
    assert result.confusion_matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert result.pos_label is None and result.average == "macro"
    assert "true_positives" not in result.metrics


def test_binary_probabilities_give_auc_log_loss_brier_and_calibration() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    proba = np.column_stack([1 - scores, scores])
    result = m.classifier_metrics([0, 0, 1, 1], [0, 0, 0, 1], proba=proba, proba_classes=[0, 1])
    got = result.metrics
    # pairs (pos, neg) ranked right: (0.35, 0.1), (0.8, 0.1), (0.8, 0.4); wrong: (0.35, 0.4) -> 3/4
    assert got["roc_auc"] == pytest.approx(0.75)
    assert got["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    # (0.1² + 0.4² + 0.65² + 0.2²) / 4
    assert got["brier_score"] == pytest.approx(0.158125)
    # one score per bin: |gaps| 0.1, 0.65, 0.4, 0.2 -> 1.35 / 4
    assert got["calibration_error"] == pytest.approx(0.3375)
    assert result.calibration is not None
    assert result.calibration.mean_predicted == pytest.approx([0.1, 0.35, 0.4, 0.8])
    assert result.calibration.fraction_positive == [0.0, 1.0, 0.0, 1.0]
    assert result.calibration.counts == [1, 1, 1, 1]


CALIBRATION_CASES = [
    # truth, score, bins, mean_predicted, fraction_positive, counts, calibration_error
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 2, [0.85 / 3, 0.8], [1 / 3, 1.0], [3, 1], (3 * 0.05 + 0.2) / 4),
    ([1], [1.0], 2, [1.0], [1.0], [1], 0.0),  # a score of exactly 1 is in the last bin
    ([0, 1], [0.0, 0.0], 10, [0.0], [0.5], [2], 0.5),
]


@pytest.mark.parametrize(("truth", "score", "bins", "mean_pred", "frac", "counts", "ece"), CALIBRATION_CASES)
def test_calibrate(
    truth: list[int],
    score: list[float],
    bins: int,
    mean_pred: list[float],
    frac: list[float],
    counts: list[int],
    ece: float,
) -> None:
    got = m.calibrate(np.array(truth), np.array(score), bins)
    assert got.mean_predicted == pytest.approx(mean_pred)
    assert got.fraction_positive == pytest.approx(frac)
    assert got.counts == counts
    assert got.calibration_error == pytest.approx(ece)


def test_multiclass_probabilities_give_ovr_auc_and_log_loss_but_no_calibration() -> None:
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    result = m.classifier_metrics([0, 1, 2], [0, 1, 2], proba=proba, proba_classes=[0, 1, 2])
    assert result.metrics["roc_auc"] == pytest.approx(1.0)  # every class ranked first by its own column
    assert result.metrics["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.7)) / 3)
    assert result.calibration is None and "brier_score" not in result.metrics


REGRESSION_CASES = [
    # errors 0.5, -0.5, 0, -1: MSE 1.5/4; MAE 2/4; R² 1 - 1.5/29.1875 (mean 2.875)
    ([3, -0.5, 2, 7], [2.5, 0, 2, 8], {"mse": 0.375, "rmse": 0.375**0.5, "mae": 0.5, "r2": 1 - 1.5 / 29.1875}),
    ([1, 2, 3], [1, 2, 3], {"mse": 0.0, "rmse": 0.0, "mae": 0.0, "r2": 1.0}),
    ([5, 5], [4, 7], {"mse": 2.5, "rmse": 2.5**0.5, "mae": 1.5}),  # constant target: no R²
]


@pytest.mark.parametrize(("y_true", "y_pred", "expected"), REGRESSION_CASES)
def test_regressor_metrics(y_true: list[float], y_pred: list[float], expected: dict[str, float]) -> None:
    got = m.regressor_metrics(y_true, y_pred)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: m.classifier_metrics([1, 0], [1]), "one length"),
        (lambda: m.classifier_metrics([], []), "non-empty"),
        (lambda: m.classifier_metrics([1, 0], [1, 0], pos_label=2), "pos_label 2"),
        (lambda: m.classifier_metrics([1, 0], [1, 0], proba=np.ones((2, 3)), proba_classes=[0, 1]), "shape"),
        (lambda: m.regressor_metrics([1.0], [1.0, 2.0]), "one length"),
    ],
)
def test_refusals_say_what_is_wrong(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
