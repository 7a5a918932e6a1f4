"""Metric names, the JSON report, permutation importance, the plots and the data reader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelship.evaluation import data, plots
from modelship.evaluation import importance as imp
from modelship.evaluation import metrics as m
from modelship.evaluation import report as rep
from modelship.evaluation.fairness import GroupFairness


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("sex", "sex"),
        ("age band", "age band"),
        ("a/b.c-d_e", "a/b.c-d_e"),
        ("é?x", "__x"),
        ("", "_"),
        (3, "3"),
    ],
)
def test_key_part(name: object, part: str) -> None:
    assert rep.key_part(name) == part


def test_a_long_name_is_cut_keeps_a_hash_and_stays_distinct() -> None:
    a, b = rep.key_part("x" * 300 + "a"), rep.key_part("x" * 300 + "b")
    assert len(a) == len(b) == rep.MAX_PART and a != b
    assert a.startswith("x" * 39 + "_") and rep.key_part("x" * 300 + "a") == a
    assert rep.key_part("y" * rep.MAX_PART) == "y" * rep.MAX_PART


def test_metric_keys() -> None:
    fair = GroupFairness(
        "sex", {"f": {"accuracy": 0.9}, "m:x": {"accuracy": 0.7}}, {"demographic_parity_difference": 0.2}
    )
    keys = rep.metric_keys(
        {"accuracy": 0.8},
        [fair],
        [imp.Importance("x1", 0.3, 0.01)],
        {"x1": 0.12},
    )
    assert keys == {
        "eval.accuracy": 0.8,
        "eval.fairness.sex.demographic_parity_difference": 0.2,
        "eval.fairness.sex.group.f.accuracy": 0.9,
        "eval.fairness.sex.group.m_x.accuracy": 0.7,
        "eval.importance.x1": 0.3,
        "eval.shap.x1": 0.12,
    }


def test_report_is_json_without_nan() -> None:
    result = m.classifier_metrics(np.array([0, 1]), np.array([0, 1]))
    fair = GroupFairness("g", {"a": {"selection_rate": 0.0}}, {"demographic_parity_ratio": math.nan})
    report = rep.build_report(
        model_uri="runs:/r/model",
        data="d.csv",
        model_type="classifier",
        targets="y",
        rows=2,
        metrics={"eval.fairness.g.demographic_parity_ratio": math.nan, "eval.accuracy": 1.0},
        classifier=result,
        fairness=[fair],
        artifacts=["eval/report.json"],
    )
    text = json.dumps(report, allow_nan=False)  # raises on NaN
    back = json.loads(text)
    assert back["metrics"] == {"eval.accuracy": 1.0, "eval.fairness.g.demographic_parity_ratio": None}
    assert back["labels"] == [0, 1] and back["pos_label"] == 1
    assert back["confusion_matrix"] == [[1, 0], [0, 1]]
    assert back["fairness"]["g"]["demographic_parity_ratio"] is None


def test_permutation_importance_of_an_unused_feature_is_zero() -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"used": rng.normal(size=300), "unused": rng.normal(size=300)})
    y = pd.Series((x["used"] > 0).astype(int))
    got = imp.permutation_importances(lambda df: (df["used"] > 0).astype(int), x, y, model_type="classifier")
    assert [i.feature for i in got] == ["used", "unused"]
    assert got[1].mean == 0.0 and got[1].std == 0.0
    assert got[0].mean > 0.3  # shuffling a perfect predictor's input costs about half the accuracy


def test_permutation_importance_samples_at_most_max_rows() -> None:
    x = pd.DataFrame({"a": np.arange(50.0)})
    seen: list[int] = []

    def predict(df: pd.DataFrame) -> np.ndarray:
        seen.append(len(df))
        return df["a"].to_numpy()

    imp.permutation_importances(predict, x, pd.Series(np.arange(50.0)), model_type="regressor", max_rows=20)
    assert set(seen) == {20}


def test_plots_are_deterministic_pngs() -> None:
    cal = m.calibrate(np.array([0, 1, 1]), np.array([0.2, 0.6, 0.9]), 5)
    made = [
        lambda: plots.confusion_matrix_png([[3, 1], [0, 4]], ["no", "yes"]),
        lambda: plots.calibration_png(cal),
        lambda: plots.importance_png([imp.Importance("a", 0.3, 0.1), imp.Importance("b", 0.0, 0.0)]),
    ]
    for make in made:
        first = make()
        assert first.startswith(b"\x89PNG\r\n\x1a\n")
        assert make() == first


@pytest.mark.parametrize(
    ("name", "given", "fmt"),
    [("a.csv", None, "csv"), ("a.PARQUET", None, "parquet"), ("s3://b/k.pq", None, "parquet"), ("a.txt", "csv", "csv")],
)
def test_data_format(name: str, given: str | None, fmt: str) -> None:
    assert data.data_format(name, given) == fmt


def test_data_format_refuses_unknown() -> None:
    with pytest.raises(data.DataError, match="--data-format"):
        data.data_format("a.txt")


def test_load_local_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    pd.testing.assert_frame_equal(data.load_data(str(tmp_path / "d.csv")), frame)
    pd.testing.assert_frame_equal(data.load_data(f"file://{tmp_path}/d.parquet"), frame)


@pytest.mark.parametrize(
    ("uri", "message"),
    [("/nonexistent/d.csv", "does not exist"), ("models:/iris/1.csv", "names a model"), ("ftp://h/d.csv", "scheme")],
)
def test_load_refusals(uri: str, message: str) -> None:
    with pytest.raises(data.DataError, match=message):
        data.load_data(uri)
