"""``modelship evaluate --no-log`` on a model directory: the whole path but the tracking server
(tests/integration/tracking/test_evaluate.py logs to a real one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from modelship.cli import main
from modelship.models.save import save_model


@pytest.fixture
def iris_like(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    y = np.where(x["a"] > 0.5, "virginica", np.where(x["a"] < -0.5, "setosa", "versicolor"))
    frame = x.assign(species=y, site=rng.choice(["north", "south"], size=150))
    frame.to_csv(tmp_path / "data.csv", index=False)
    return tmp_path, frame


def test_multiclass_no_log_writes_the_report(
    iris_like: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    root, frame = iris_like
    save_model(root / "model", LogisticRegression(max_iter=500).fit(frame[["a", "b"]], frame["species"]))
    out = root / "report.json"
    argv = ["evaluate", "-m", str(root / "model"), "-d", str(root / "data.csv"), "-t", "species"]
    code = main([*argv, "--model-type", "classifier", "-s", "site", "--no-log", "--no-plots", "-o", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["labels"] == ["setosa", "versicolor", "virginica"] and report["average"] == "macro"
    assert report["pos_label"] is None and "calibration" not in report
    assert set(report["fairness"]["site"]) == {"by_group", "accuracy_difference"}
    assert {"eval.roc_auc", "eval.log_loss", "eval.importance.a", "eval.importance.b"} <= set(report["metrics"])
    assert report["artifacts"] == ["eval/report.json"]
    printed = capsys.readouterr().out
    assert "eval.accuracy" in printed and "logged to run" not in printed


def test_a_model_without_predict_proba_gets_a_note(iris_like: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    root, frame = iris_like
    binary = frame.assign(label=(frame["a"] > 0).astype(int))
    binary.to_csv(root / "binary.csv", index=False)
    save_model(root / "svc", LinearSVC().fit(binary[["a", "b"]], binary["label"]))
    out = root / "svc.json"
    argv = ["evaluate", "-m", str(root / "svc"), "-d", str(root / "binary.csv"), "-t", "label"]
    assert main([*argv, "--model-type", "classifier", "--no-log", "--no-importance", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "eval.roc_auc" not in report["metrics"] and "eval.f1" in report["metrics"]
    assert report["notes"] == ["the model has no predict_proba: no ROC AUC, log loss or calibration"]


def test_a_missing_target_column_fails_with_its_name(
    iris_like: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    root, frame = iris_like
    save_model(root / "model", LogisticRegression().fit(frame[["a", "b"]], frame["species"]))
    argv = ["evaluate", "-m", str(root / "model"), "-d", str(root / "data.csv"), "-t", "label"]
    assert main([*argv, "--model-type", "classifier", "--no-log"]) == 1
    assert "has no column 'label'" in capsys.readouterr().err
