"""``GET /drift`` and the ``modelship_drift_*`` gauges of the in-process server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tests.conftest import wait

from modelship.models import save_model
from modelship.models.profile import PROFILE_FILE


def _body(frame: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


def test_the_saved_profile_holds_the_training_predictions(wine_dir: Path) -> None:
    profile = json.loads((wine_dir / PROFILE_FILE).read_text())
    assert profile["prediction"]["type"] == "categorical"
    assert set(profile["prediction"]["frequencies"]) == {"0", "1", "2"}
    assert len(profile["features"]["alcohol"]["percentiles"]) == 101


def test_drift_report_and_gauges(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, model_name="wine", model_version="3", variant="blue", drift_min_samples=100)
    for i in range(0, 170, 17):
        assert client.post("/invocations", json=_body(wine.iloc[i : i + 17])).status_code == 200

    def report() -> dict[str, Any] | None:
        r = client.get("/drift").json()
        return r if r["rows"] == 170 else None

    r = wait(report, 10, "170 rows in the drift window")
    assert r["enabled"] and (r["model"], r["version"], r["variant"]) == ("wine", "3", "blue")
    alcohol = r["features"]["alcohol"]
    assert alcohol["samples"] == 170 and alcohol["verdict"] == "stable" and alcohol["psi"] < 0.1
    assert {"psi", "ks", "p_value", "samples", "verdict"} <= set(alcohol)
    assert r["prediction"]["verdict"] == "stable" and "chi2" in r["prediction"]
    assert r["drifting"] == []

    shifted = wine.copy()
    shifted["alcohol"] += 3 * wine["alcohol"].std()
    for i in range(0, 170, 17):
        client.post("/invocations", json=_body(shifted.iloc[i : i + 17]))
    r = wait(lambda: (x := client.get("/drift").json()) and x["rows"] == 340 and x, 10, "340 rows")
    assert r["drifting"] == ["alcohol"]
    assert r["features"]["alcohol"]["psi"] > 0.25

    text = client.get("/metrics").text
    labels = 'feature="alcohol",model="wine",variant="blue",version="3"'
    assert f"modelship_drift_verdict{{{labels}}} 2.0" in text
    assert f"modelship_drift_samples{{{labels}}} 340.0" in text
    assert f"modelship_drift_psi{{{labels}}}" in text and f"modelship_drift_ks{{{labels}}}" in text
    assert 'modelship_drift_chi2{feature="__prediction__"' in text


def test_v2_tensor_inputs_are_watched_too(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, model_name="wine", drift_min_samples=10)
    body = {
        "inputs": [
            {"name": "input-0", "shape": [20, 13], "datatype": "FP64", "data": wine.head(20).values.ravel().tolist()}
        ]
    }
    assert client.post("/v2/models/wine/infer", json=body).status_code == 200
    r = wait(lambda: (x := client.get("/drift").json()) and x["rows"] == 20 and x, 10, "20 rows")
    assert r["features"]["alcohol"]["samples"] == 20


def test_drift_off_and_models_without_a_profile_say_why(
    serve: Any, wine_dir: Path, tmp_path: Path, wine: pd.DataFrame
) -> None:
    off = serve(wine_dir, drift=False).get("/drift").json()
    assert off["enabled"] is False and "--no-drift" in off["reason"]
    from sklearn.linear_model import LinearRegression

    bare = tmp_path / "bare"
    save_model(bare, LinearRegression().fit(wine, np.arange(len(wine))), input_example=wine.head(2))
    client = serve(bare)
    r = client.get("/drift").json()
    assert r["enabled"] is False and "training_data=X" in r["reason"]
    assert "modelship_drift_psi" not in client.get("/metrics").text


def test_a_failing_drift_report_leaves_the_other_series_scrapable() -> None:
    from modelship.serving.metrics import Metrics

    metrics = Metrics("m", "1", "a")

    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    metrics.watch_drift(broken)
    text = metrics.render().decode()
    assert "modelship_model_ready" in text and "modelship_drift_psi{" not in text


def test_unbatched_predictions_are_watched_too(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, batching=False, drift_min_samples=10)
    assert client.core.batcher is None
    assert client.post("/invocations", json=_body(wine.head(30))).status_code == 200
    r = wait(lambda: (x := client.get("/drift").json()) and x["rows"] == 30 and x, 10, "30 rows")
    assert r["features"]["alcohol"]["samples"] == 30 and r["prediction"]["samples"] == 30
