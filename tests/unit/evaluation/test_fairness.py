"""Fairness by group (fairlearn underneath), against rates counted by hand."""

from __future__ import annotations

import math

import pytest

from modelship.evaluation import fairness as f

#            a a a a  b b b b
Y_TRUE = [1, 0, 1, 0, 1, 0, 1, 0]
Y_PRED = [1, 1, 1, 0, 0, 0, 1, 0]
GROUPS = ["a"] * 4 + ["b"] * 4
# a: selection 3/4, TPR 2/2, FPR 1/2, accuracy 3/4; b: selection 1/4, TPR 1/2, FPR 0/2, accuracy 3/4


def test_binary_groups_and_gaps() -> None:
    got = f.classifier_fairness("g", Y_TRUE, Y_PRED, GROUPS, pos_label=1)
    assert got.by_group["a"] == pytest.approx(
        {"count": 4, "accuracy": 0.75, "selection_rate": 0.75, "true_positive_rate": 1.0, "false_positive_rate": 0.5}
    )
    assert got.by_group["b"] == pytest.approx(
        {"count": 4, "accuracy": 0.75, "selection_rate": 0.25, "true_positive_rate": 0.5, "false_positive_rate": 0.0}
    )
    assert got.summary == pytest.approx(
        {
            "demographic_parity_difference": 0.5,  # 3/4 - 1/4
            "demographic_parity_ratio": 1 / 3,  # (1/4) / (3/4)
            "equalized_odds_difference": 0.5,  # max(|1 - 1/2|, |1/2 - 0|)
            "accuracy_difference": 0.0,
        }
    )


@pytest.mark.parametrize(
    ("y_true", "y_pred", "pos_label", "dpd", "dpr"),
    [
        # text labels, positive "yes": the same rates as above
        (["yes" if y else "no" for y in Y_TRUE], ["yes" if y else "no" for y in Y_PRED], "yes", 0.5, 1 / 3),
        # positive 0 instead: selection of 0 is a 1/4, b 3/4
        (Y_TRUE, Y_PRED, 0, 0.5, 1 / 3),
        # everyone predicted positive: parity holds
        (Y_TRUE, [1] * 8, 1, 0.0, 1.0),
    ],
)
def test_demographic_parity_follows_the_positive_label(
    y_true: list[object], y_pred: list[object], pos_label: object, dpd: float, dpr: float
) -> None:
    got = f.classifier_fairness("g", y_true, y_pred, GROUPS, pos_label=pos_label)
    assert got.summary["demographic_parity_difference"] == pytest.approx(dpd)
    assert got.summary["demographic_parity_ratio"] == pytest.approx(dpr)


def test_nobody_selected_gives_a_nan_ratio() -> None:
    got = f.classifier_fairness("g", Y_TRUE, [0] * 8, GROUPS, pos_label=1)
    assert got.summary["demographic_parity_difference"] == 0.0
    assert math.isnan(got.summary["demographic_parity_ratio"])


def test_multiclass_has_accuracy_by_group_only() -> None:
    # a: 2/2 right; b: 1/2 right
    got = f.classifier_fairness("g", [0, 1, 2, 2], [0, 1, 2, 0], ["a", "a", "b", "b"], pos_label=None)
    assert got.by_group == {"a": {"count": 2.0, "accuracy": 1.0}, "b": {"count": 2.0, "accuracy": 0.5}}
    assert got.summary == {"accuracy_difference": 0.5}


def test_group_values_are_text_and_missing_is_named() -> None:
    got = f.classifier_fairness("g", [1, 0, 1], [1, 0, 0], [1, 2, None], pos_label=1)
    assert sorted(got.by_group) == ["1", "2", "missing"]


def test_regressor_groups() -> None:
    # a: errors 0, 0; b: errors 2, 0 -> RMSE sqrt(2), MAE 1
    got = f.regressor_fairness("g", [1, 2, 3, 4], [1, 2, 5, 4], ["a", "a", "b", "b"])
    assert got.by_group["a"] == pytest.approx({"count": 2, "rmse": 0.0, "mae": 0.0})
    assert got.by_group["b"] == pytest.approx({"count": 2, "rmse": 2**0.5, "mae": 1.0})
    assert got.summary == pytest.approx({"rmse_difference": 2**0.5, "mae_difference": 1.0})
