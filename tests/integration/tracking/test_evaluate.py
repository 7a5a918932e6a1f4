"""``modelship evaluate`` against the real tracking server on loopback: a model logged by
real MLflow code (the fairness example), evaluated from its run, and the metrics, report
and plots read back with the real ``mlflow`` client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from modelship.evaluation import evaluate
from modelship.tracking.client import TrackingClient

from .conftest import Proc, finish_script, run_id_of, start_script

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[3] / "manifests" / "examples" / "fairness"


def train(url: str, bias: float) -> str:
    return run_id_of(finish_script(start_script(EXAMPLE / "train.py", url, "--bias", str(bias), "--rows", "1200")))


def cli_evaluate(url: str, run_id: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=url, MODELSHIP_MODEL_CACHE=str(tmp_path / "cache"))
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run(
        [sys.executable, "-m", "modelship", "evaluate", "-m", f"runs:/{run_id}/model", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_unfair_and_fair_models_logged_and_read_back_with_mlflow(tracking_server: Proc, tmp_path: Path) -> None:
    url = tracking_server.url
    figures = {}
    for bias in (0.8, 0.0):
        run_id = train(url, bias)
        args = ("-d", f"runs:/{run_id}/data/test.csv", "-t", "approved", "--model-type", "classifier", "-s", "sex")
        done = cli_evaluate(url, run_id, tmp_path, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"logged to run {run_id}" in done.stdout

        client = MlflowClient(url)
        metrics = client.get_run(run_id).data.metrics
        for key in (
            "accuracy",  # the trainer's own, untouched
            "eval.accuracy",
            "eval.precision",
            "eval.recall",
            "eval.f1",
            "eval.roc_auc",
            "eval.log_loss",
            "eval.brier_score",
            "eval.calibration_error",
            "eval.fairness.sex.demographic_parity_difference",
            "eval.fairness.sex.demographic_parity_ratio",
            "eval.fairness.sex.equalized_odds_difference",
            "eval.fairness.sex.group.female.selection_rate",
            "eval.fairness.sex.group.male.selection_rate",
            "eval.importance.income",
            "eval.importance.debt",
            "eval.importance.sex_male",
        ):
            assert key in metrics, key
        assert metrics["eval.accuracy"] == pytest.approx(metrics["accuracy"])  # same split, same model
        files = {f.path for f in client.list_artifacts(run_id, "eval")}
        assert files == {"eval/report.json", "eval/confusion_matrix.png", "eval/calibration.png", "eval/importance.png"}
        local = Path(client.download_artifacts(run_id, "eval", str(tmp_path / f"dl-{bias}")))
        report = json.loads((local / "report.json").read_text())
        assert report["model_uri"] == f"runs:/{run_id}/model" and report["rows"] == 360
        assert report["metrics"] == pytest.approx(
            {k: v for k, v in metrics.items() if k.startswith("eval.")}, nan_ok=True
        )
        assert report["labels"] == [0, 1] and sum(map(sum, report["confusion_matrix"])) == 360
        assert set(report["fairness"]["sex"]["by_group"]) == {"female", "male"}
        assert (local / "importance.png").read_bytes().startswith(b"\x89PNG")
        # What the run page's artifact browser fetches to preview the report and a plot.
        for path, start in (("eval/report.json", b"{"), ("eval/confusion_matrix.png", b"\x89PNG")):
            got = httpx.get(
                f"{url}/api/2.0/modelship/artifacts/preview",
                params={"run_id": run_id, "path": path, "max_bytes": 1 << 20},
                timeout=30,
            )
            assert got.status_code == 200 and got.content.startswith(start), (path, got.status_code)
            assert got.headers.get("X-Modelship-Truncated") != "true"
        tags = client.get_run(run_id).data.tags
        assert tags["modelship.io/evaluated-model"] == f"runs:/{run_id}/model"
        figures[bias] = metrics["eval.fairness.sex.demographic_parity_difference"]
    print(f"demographic parity difference: bias 0.8 -> {figures[0.8]:.3f}, bias 0 -> {figures[0.0]:.3f}")
    assert figures[0.8] > 0.3  # the model learnt to refuse women
    assert figures[0.0] < 0.1


def test_python_api_regressor_into_a_new_run(tracking_server: Proc, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from modelship.models.save import save_model

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    y = 2 * x["a"] + 1
    save_model(tmp_path / "model", LinearRegression().fit(x, y), input_example=x.head(2))
    frame = x.assign(y=y + [0.5, -0.5, 0, 0, 0, 0], region=["n", "n", "n", "s", "s", "s"])
    with TrackingClient(url := tracking_server.url) as client:
        result = evaluate(
            str(tmp_path / "model"),
            frame,
            targets="y",
            model_type="regressor",
            sensitive_features=["region"],
            client=client,
        )
    assert result.run_id is not None
    # errors 0.5, -0.5 in region n, none in s
    assert result.metrics["eval.mae"] == pytest.approx(1 / 6)
    assert result.metrics["eval.fairness.region.mae_difference"] == pytest.approx(1 / 3)
    run = MlflowClient(url).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["eval.rmse"] == pytest.approx((0.5 / 6) ** 0.5)
    assert {f.path for f in MlflowClient(url).list_artifacts(result.run_id, "eval")} == {
        "eval/report.json",
        "eval/importance.png",
    }


def test_missing_column_is_named(tracking_server: Proc, tmp_path: Path) -> None:
    run_id = train(tracking_server.url, 0.0)
    done = cli_evaluate(
        tracking_server.url,
        run_id,
        tmp_path,
        *("-d", f"runs:/{run_id}/data/test.csv", "-t", "approved", "--model-type", "classifier", "-s", "gender"),
    )
    assert done.returncode == 1
    assert "has no column 'gender'" in done.stderr and "sex" in done.stderr
